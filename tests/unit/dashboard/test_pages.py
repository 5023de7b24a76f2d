"""The pages render what the cache holds, escape everything that came from the API, and link both ways."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from finetune_dashboard import lookups, slim
from finetune_dashboard.pages import job as job_page
from finetune_dashboard.pages import jobs as jobs_page
from finetune_dashboard.pages import registry as registry_page
from finetune_dashboard.pages.layout import page

from .objects import Obj, job, metrics_map, version

NOW = datetime(2026, 12, 3, 9, 10, tzinfo=UTC)
HOSTILE = '<script>alert("owned")</script><img src=x onerror=alert(1)>'
HISTORY = {
    "series": {
        "trainLoss": [[1, 5.0], [2, 4.0], [3, 2.5]],
        "evalLoss": [[2, 4.5], [3, 3.0]],
        "learningRate": [[1, 0.001], [2, 0.0008], [3, 0.0005]],
    },
    "hyperparameters": {"learningRate": 0.001, "warmupRatio": 0.03, "note": HOSTILE},
}


def assert_inert(markup: str) -> None:
    """No markup from data: the hostile text appears only escaped."""
    assert "<script>" not in markup and "<img src=x" not in markup
    assert "&lt;script&gt;" in markup


def test_jobs_page_filters_and_shows_progress_eta_sparkline_and_model() -> None:
    running = job(
        "run", progress={"stage": "Training", "percent": 40, "estimatedSecondsRemaining": 125}, phase="Running"
    )
    done = job(
        "done",
        namespace="team-b",
        phase="Completed",
        progress={"percent": 100},
        model={"name": "quick-model", "version": "0.0.1", "modelVersion": "quick-model-v0.0.1"},
    )
    jobs = {("team-a", "run"): running, ("team-b", "done"): done}
    metrics = {("team-a", "run-metrics"): metrics_map("run", "team-a", HISTORY)}
    everything = jobs_page.render(jobs, metrics, jobs_page.Filters(), NOW)
    assert "2 of 2 FineTuningJobs" in everything
    assert 'href="/jobs/team-a/run"' in everything and 'href="/jobs/team-b/done"' in everything
    assert '<progress max="100" value="40"' in everything and "ETA 2m05s" in everything
    assert 'class="spark"' in everything
    assert "#mv-team-b-quick-model-v0.0.1" in everything
    assert '<label for="f-namespace">Namespace</label>' in everything
    only_b = jobs_page.render(jobs, metrics, jobs_page.Filters(namespace="team-b"), NOW)
    assert "1 of 2" in only_b and "/jobs/team-a/run" not in only_b
    only_running = jobs_page.render(jobs, metrics, jobs_page.Filters.from_query({"phase": "Running"}), NOW)
    assert "/jobs/team-a/run" in only_running and "/jobs/team-b/done" not in only_running


def test_job_page_draws_the_recorded_points_and_the_resolved_hyperparameters() -> None:
    subject = job("run", phase="Running", dataset={"sourceRecords": 120, "samples": 100, "sha256": "c" * 64,
                                                      "rejected": {"lowSuccess": 20}})  # fmt: skip
    stored = slim.metrics({"metadata": {"name": "run-metrics"}, "data": {slim.HISTORY_KEY: json.dumps(HISTORY)}})
    markup = job_page.render(subject, recorded=stored["history"], events=[], pods=[], version=None, log="", now=NOW)
    assert 'data-series="train loss" data-points="3"' in markup
    assert 'data-series="eval loss" data-points="2"' in markup
    assert 'data-series="learning rate" data-points="3"' in markup
    assert "resolved by the trainer" in markup and "warmupRatio" in markup
    assert "c" * 64 in markup and "lowSuccess 20" in markup


def test_job_page_falls_back_to_the_spec_until_the_trainer_reports() -> None:
    markup = job_page.render(job("run"), recorded={}, events=[], pods=[], version=None, log="", now=NOW)
    assert "as set in spec.training" in markup and "no points yet" in markup


def test_hostile_text_from_labels_messages_events_and_logs_renders_as_text() -> None:
    subject = job(
        "run", phase="Failed", message=HOSTILE, conditions=[{"type": "Failed", "status": "True", "message": HOSTILE}]
    )
    subject["metadata"]["labels"] = {"team": HOSTILE}
    event = slim.event({"metadata": {"name": "e1", "namespace": "team-a"}, "involvedObject": {"uid": "uid-run"},
                        "reason": "Curating", "message": HOSTILE, "lastTimestamp": "2026-12-03T09:01:00Z"})  # fmt: skip
    terminated = {"name": "t", "state": {"terminated": {"reason": HOSTILE, "exitCode": 1}}}
    pod = slim.pod({"metadata": {"name": "run-train-x", "namespace": "team-a"},
                    "status": {"phase": "Failed", "containerStatuses": [terminated]}})  # fmt: skip
    markup = job_page.render(
        subject, recorded=HISTORY, events=[event], pods=[pod], version=None, log=f"line 1\n{HOSTILE}\n", now=NOW
    )
    assert_inert(markup)
    assert markup.count("&lt;script&gt;") >= 6
    whole = page(HOSTILE, markup, active="/", errors=[HOSTILE])
    assert_inert(whole)
    assert "<title>&lt;script&gt;" in whole


def test_registry_page_puts_versions_side_by_side_and_links_back_to_the_job() -> None:
    alive = job("train-1")
    versions = {
        ("team-a", "m-v0.0.2"): version("m-v0.0.2", "team-a", "m", "0.0.2", "train-1", "uid-train-1", evalLoss=1.5),
        ("team-a", "m-v0.0.10"): version("m-v0.0.10", "team-a", "m", "0.0.10", "gone", "uid-gone", evalLoss=1.2),
        ("team-a", "m-v0.0.1"): version("m-v0.0.1", "team-a", "m", "0.0.1", "train-1", "older-uid", evalLoss=2.0),
    }
    markup = registry_page.render(versions, {("team-a", "train-1"): alive}, {})
    # semver order, newest first (0.0.10 above 0.0.2, not below it as text would sort)
    assert markup.index(">0.0.10<") < markup.index(">0.0.2<") < markup.index(">0.0.1<")
    assert markup.count('href="/jobs/team-a/train-1"') == 1  # only the version whose job uid matches
    assert "(deleted)" in markup
    assert 'id="mv-team-a-m-v0.0.2"' in markup
    assert "1.2" in markup and "1.5" in markup and "abababababab" in markup


def test_registry_escapes_model_names_from_the_api() -> None:
    versions = {("ns", "x"): version("x", "ns", HOSTILE, "0.0.1", "j", "u")}
    assert_inert(registry_page.render(versions, {}, {}))


def test_lookups_join_a_job_to_its_pods_events_and_version() -> None:
    subject = job("run", model={"modelVersion": "m-v1"})
    pods = {
        ("team-a", "run-train-1"): slim.pod({"metadata": {"name": "run-train-1", "namespace": "team-a",
            "labels": {"finetune.dev/job": "run"}, "creationTimestamp": "2026-12-03T09:02:00Z"}}),
        ("team-a", "run-curate-1"): slim.pod({"metadata": {"name": "run-curate-1", "namespace": "team-a",
            "labels": {"finetune.dev/job": "run"}, "creationTimestamp": "2026-12-03T09:01:00Z"}}),
        ("team-b", "run-train-1"): slim.pod({"metadata": {"name": "run-train-1", "namespace": "team-b",
            "labels": {"finetune.dev/job": "run"}}}),
    }  # fmt: skip
    assert [p["metadata"]["name"] for p in lookups.pods_of(pods, subject)] == ["run-curate-1", "run-train-1"]
    versions = {("team-a", "m-v1"): version("m-v1", "team-a", "m", "1.0.0", "run", "uid-run")}
    assert lookups.version_of(versions, subject) is versions[("team-a", "m-v1")]
    assert lookups.series({"series": {"trainLoss": [[1, 2.0], "bad", [2], [3, 1.0]]}}, "trainLoss") == [
        (1.0, 2.0),
        (3.0, 1.0),
    ]


def test_a_curating_job_shows_the_records_read_beside_its_byte_percentage_and_eta() -> None:
    curating = job(
        "big",
        phase="Running",
        progress={"stage": "Curating", "percent": 25, "recordsRead": 1_200_000, "estimatedSecondsRemaining": 90},
    )
    page = jobs_page.render({("team-a", "big"): curating}, {}, jobs_page.Filters(), NOW)
    assert '<progress max="100" value="25" aria-label="Curating 25%, about 1m30s left">' in page
    assert "curating: 1,200,000 records read · 25% · ETA 1m30s" in page


def test_a_downloading_job_shows_what_it_downloads_and_how_much_beside_its_percentage() -> None:
    progress = {
        "stage": "Downloading",
        "downloading": "baseModel.s3",
        "downloadedBytes": 3 << 30,
        "downloadBytes": 12 << 30,
        "percent": 25,
        "estimatedSecondsRemaining": 90,
    }
    page = jobs_page.render(
        {("team-a", "big"): job("big", phase="Running", progress=progress)}, {}, jobs_page.Filters(), NOW
    )
    assert '<progress max="100" value="25" aria-label="Downloading 25%, about 1m30s left">' in page
    assert "downloading baseModel.s3: 3,072 of 12,288 MiB · 25% · ETA 1m30s" in page


def registered(name: str, namespace: str, **fields: Any) -> Obj:
    return slim.registered_model({"metadata": {"name": name, "namespace": namespace}, **fields})


def test_registry_shows_the_registered_models_aliases_and_each_versions_state() -> None:
    versions = {
        ("team-a", "m-v1.0.0"): version("m-v1.0.0", "team-a", "m", "1.0.0", "j1", "u1"),
        ("team-a", "m-v1.1.0"): version("m-v1.1.0", "team-a", "m", "1.1.0", "j2", "u2"),
    }
    models = {
        ("team-a", "m"): registered(
            "m",
            "team-a",
            spec={"description": "the support bot", "aliases": {"champion": "1.0.0"}, "archived": ["1.1.0"]},
            status={
                "versions": [
                    {"version": "1.1.0", "modelVersion": "m-v1.1.0", "state": "Archived"},
                    {"version": "1.0.0", "modelVersion": "m-v1.0.0", "state": "Active", "aliases": ["champion"]},
                ],
                "aliases": {"champion": {"version": "1.0.0", "modelVersion": "m-v1.0.0"}},
                "conditions": [{"type": "AliasesResolved", "status": "True"}],
            },
        ),
        ("team-a", "orphan"): registered("orphan", "team-a", status={"versions": []}),
    }
    markup = registry_page.render(versions, {}, {}, models)
    assert "<p>the support bot</p>" in markup
    assert '<li>champion &rarr; <a href="#mv-team-a-m-v1.0.0">1.0.0</a></li>' in markup
    newer, older = markup.split('id="mv-team-a-m-v1.1.0"')[1].split('id="mv-team-a-m-v1.0.0"')
    assert "<td>Archived</td>" in newer and "<td>Active</td><td>champion</td>" in older
    assert "orphan" in markup and "0 versions" in markup  # a model whose versions are all gone still shows
    assert "conditions" not in str(models[("team-a", "m")])  # slimmed: the page does not show them


def test_registry_escapes_descriptions_and_aliases_from_the_api() -> None:
    models = {
        ("ns", "m"): registered(
            "m", "ns", spec={"description": HOSTILE}, status={"aliases": {HOSTILE: {"version": HOSTILE}}}
        )
    }
    assert_inert(registry_page.render({}, {}, {}, models))


def test_job_page_shows_the_tool_call_scores_beside_the_gate() -> None:
    scored = job("chat", phase="Completed",
                 metrics={"trainLoss": 1.5, "toolCallAccuracy": 0.75, "toolCallArgumentsMatch": 0.5,
                          "toolCallsScored": 12})  # fmt: skip
    scored["spec"]["evaluation"] = {"minToolCallAccuracy": 0.6}
    markup = job_page.render(scored, recorded={}, events=[], pods=[], version=None, log="", now=NOW)
    section = markup.split('<h2 id="h-tool-calls">Tool-call evaluation</h2>')[1].split("</section>")[0]
    assert "<dt>held-out tool calls scored</dt><dd>12</dd>" in section
    assert "<dt>right function (toolCallAccuracy)</dt><dd>0.75</dd>" in section
    assert "<dt>exact arguments (toolCallArgumentsMatch)</dt><dd>0.5</dd>" in section
    assert "<dt>gate (minToolCallAccuracy)</dt><dd>at least 0.6</dd>" in section
    assert markup.count("toolCallAccuracy") == 1  # in its section, not again among the header's metrics
    assert "<dt>trainLoss</dt><dd>1.5</dd>" in markup


def test_a_gated_job_that_scored_nothing_says_so_and_an_ungated_unscored_one_has_no_section() -> None:
    gated = job("chat", phase="Failed")
    gated["spec"]["evaluation"] = {"minToolCallAccuracy": 1.0}
    markup = job_page.render(gated, recorded={}, events=[], pods=[], version=None, log="", now=NOW)
    assert "<dt>held-out tool calls scored</dt><dd>not scored</dd>" in markup
    plain = job_page.render(job("run"), recorded={}, events=[], pods=[], version=None, log="", now=NOW)
    assert "Tool-call evaluation" not in plain


def test_registry_compares_tool_call_scores_only_for_models_that_have_them() -> None:
    versions = {
        ("a", "chat-v1"): version("chat-v1", "a", "chat", "0.0.1", "j1", "u1", toolCallAccuracy=0.25,
                                  toolCallArgumentsMatch=0.125, toolCallsScored=8),
        ("a", "chat-v2"): version("chat-v2", "a", "chat", "0.0.2", "j2", "u2", toolCallAccuracy=0.875,
                                  toolCallArgumentsMatch=0.75, toolCallsScored=8),
        ("a", "plain-v1"): version("plain-v1", "a", "plain", "0.0.1", "j3", "u3", evalLoss=2.0),
    }  # fmt: skip
    markup = registry_page.render(versions, {}, {})
    chat, plain = markup.split("<h2>plain ")
    assert '<th scope="col">Tool-call accuracy</th><th scope="col">Tool-call arguments</th>' in chat
    newer, older = chat.split('id="mv-a-chat-v2"')[1].split('id="mv-a-chat-v1"')
    assert "<td>0.875</td><td>0.75</td><td>8</td>" in newer
    assert "<td>0.25</td><td>0.125</td><td>8</td>" in older
    assert "Tool-call" not in plain


def test_tool_call_figures_from_the_api_render_as_text() -> None:
    hostile = job("chat", metrics={"toolCallAccuracy": HOSTILE, "toolCallsScored": HOSTILE})
    assert_inert(job_page.render(hostile, recorded={}, events=[], pods=[], version=None, log="", now=NOW))
    versions = {("a", "x"): version("x", "a", "chat", "0.0.1", "j", "u", toolCallAccuracy=HOSTILE)}  # type: ignore[arg-type]
    assert_inert(registry_page.render(versions, {}, {}))
