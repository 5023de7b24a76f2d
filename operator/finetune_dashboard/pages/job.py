"""The job page: timeline, curves, dataset, resolved hyperparameters, checkpoints, attempts and pods, log tail."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from finetune_dashboard import lookups, svg
from finetune_dashboard.markup import Html, age, esc, number, url
from finetune_dashboard.pages.jobs import progress_cell
from finetune_dashboard.pages.layout import definitions, link, table

Obj = dict[str, Any]
CHARTS = (
    ("Loss", (("train loss", "trainLoss"), ("eval loss", "evalLoss"))),
    ("Learning rate", (("learning rate", "learningRate"),)),
    ("Throughput (tokens/s)", (("tokens/s", "tokensPerSecond"),)),
    ("Gradient norm", (("grad norm", "gradNorm"),)),
)
TOOL_CALL_METRICS = ("toolCallAccuracy", "toolCallArgumentsMatch", "toolCallsScored")


def curves(recorded: Obj) -> Html:
    figures = [
        svg.chart(title, [svg.Series(label, lookups.series(recorded, key)) for label, key in wanted])
        for title, wanted in CHARTS
    ]
    return Html(
        '<section aria-labelledby="h-curves"><h2 id="h-curves">Curves</h2><div class="charts">'
        + "".join(figures)
        + "</div></section>"
    )


def timeline(job: Obj, events: list[Obj]) -> Html:
    conditions = job["status"].get("conditions") or []
    condition_rows = (
        [c.get("type"), c.get("status"), c.get("reason"), c.get("message"), c.get("lastTransitionTime")]
        for c in conditions
    )
    event_rows = (
        [e.get("time"), e.get("type"), e.get("reason"), e.get("message"), str(e.get("count") or 1)] for e in events
    )
    return Html(
        '<section aria-labelledby="h-timeline"><h2 id="h-timeline">Lifecycle</h2>'
        + table("Conditions", ("Type", "Status", "Reason", "Message", "Since"), condition_rows, id_="conditions")
        + table(f"Events ({len(events)})", ("Time", "Type", "Reason", "Message", "Count"), event_rows, id_="events")
        + "</section>"
    )


def dataset(status: Obj) -> Html:
    data = status.get("dataset") or {}
    if not data:
        return Html('<section><h2>Dataset</h2><p class="muted">not curated yet</p></section>')
    rejected = data.get("rejected") or {}
    pairs: list[tuple[str, Html | str]] = [
        ("source files", number(data.get("sourceFiles"))),
        ("records read", number(data.get("sourceRecords"))),
        ("samples kept", number(data.get("samples"))),
        ("train / eval", f"{number(data.get('trainSamples'))} / {number(data.get('evalSamples'))}"),
        ("rejected", ", ".join(f"{k} {number(v)}" for k, v in rejected.items()) or "none"),
        ("redactions", number(data.get("redactions"))),
        ("sha256", str(data.get("sha256") or "-")),
    ]
    return Html(
        '<section aria-labelledby="h-dataset"><h2 id="h-dataset">Dataset</h2>' + definitions(pairs) + "</section>"
    )


def hyperparameters(job: Obj, recorded: Obj, version: Obj | None) -> Html:
    """The trainer's resolved values (defaults included) when it has reported them, else what the spec set."""
    resolved = recorded.get("hyperparameters") or (version or {}).get("spec", {}).get("hyperparameters")
    source = "resolved by the trainer (defaults included)"
    if not resolved:
        resolved, source = (
            job["spec"].get("training") or {},
            "as set in spec.training (the trainer has not reported yet)",
        )
    pairs = [(str(k), json.dumps(v) if isinstance(v, dict | list) else str(v)) for k, v in sorted(resolved.items())]
    return Html(
        '<section aria-labelledby="h-hyper"><h2 id="h-hyper">Hyperparameters</h2>'
        f'<p class="muted">{esc(source)}</p>' + definitions(pairs) + "</section>"
    )


def checkpoints_and_pods(job: Obj, recorded: Obj, pods: list[Obj]) -> Html:
    status = job["status"]
    saved = recorded.get("checkpoints") or ([status["checkpoint"]] if status.get("checkpoint") else [])
    checkpoint_rows = ([str(c.get("step", "-")), str(c.get("path", "-")), str(c.get("evalLoss", ""))] for c in saved)
    pod_rows = (
        [
            p["metadata"]["name"],
            (p["metadata"].get("labels") or {}).get("app.kubernetes.io/component", ""),
            p.get("phase") or "",
            p.get("node") or "",
            p.get("startTime") or "",
            "; ".join(
                f"{c['name']}: {c['state']}"
                + (f" {c['reason']}" if c.get("reason") else "")
                + (f" exit {c['exitCode']}" if c.get("exitCode") is not None else "")
                + (f", {c['restarts']} restarts" if c.get("restarts") else "")
                for c in p.get("containers") or []
            ),
        ]
        for p in pods
    )
    metrics = status.get("metrics") or {}
    best = metrics.get("bestEvalLoss")
    return Html(
        '<section aria-labelledby="h-attempts"><h2 id="h-attempts">Checkpoints, attempts and pods</h2>'
        + definitions(
            [("attempts", str(status.get("attempts") or 0))]
            + (
                [("best eval loss", f"{number(best)} at step {number(metrics.get('bestEvalStep'))}")]
                if best is not None
                else []
            )
        )
        + table("Checkpoints", ("Step", "Path", "Eval loss"), checkpoint_rows, id_="checkpoints")
        + table("Pods", ("Pod", "Step", "Phase", "Node", "Started", "Containers"), pod_rows, id_="pods")
        + "</section>"
    )


def tool_calls(job: Obj) -> Html:
    """Chat evaluation: how often the model called the held-out turns' functions, with their exact arguments.

    Shown when the trainer scored tool calls or the spec gates on them (a gated job that failed before
    scoring shows the gate and "not scored").
    """
    metrics = job["status"].get("metrics") or {}
    gate = (job["spec"].get("evaluation") or {}).get("minToolCallAccuracy")
    if gate is None and not any(key in metrics for key in TOOL_CALL_METRICS):
        return Html("")
    scored = metrics.get("toolCallsScored")
    pairs: list[tuple[str, Html | str]] = [
        ("held-out tool calls scored", number(scored) if scored is not None else "not scored"),
        ("right function (toolCallAccuracy)", number(metrics.get("toolCallAccuracy"))),
        ("exact arguments (toolCallArgumentsMatch)", number(metrics.get("toolCallArgumentsMatch"))),
    ]
    if gate is not None:
        pairs.append(("gate (minToolCallAccuracy)", f"at least {number(gate)}"))
    return Html(
        '<section aria-labelledby="h-tool-calls"><h2 id="h-tool-calls">Tool-call evaluation</h2>'
        + definitions(pairs)
        + "</section>"
    )


def log_tail(job: Obj, pods: list[Obj], text: str) -> Html:
    meta = job["metadata"]
    options = "".join(
        f'<option value="{esc(p["metadata"]["name"])}"{" selected" if i == len(pods) - 1 else ""}>'
        f"{esc(p['metadata']['name'])}</option>"
        for i, p in enumerate(pods)
    )
    source = url("jobs", meta.get("namespace", ""), meta["name"], "log")
    return Html(
        '<section aria-labelledby="h-log"><h2 id="h-log">Log tail</h2>'
        f'<label for="log-pod">Pod</label> <select id="log-pod" name="pod">{options}</select> '
        f'<a href="{esc(source)}">plain text</a>'
        f'<pre id="log-lines" tabindex="0" aria-label="log lines" data-src="{esc(source)}">{esc(text)}</pre></section>'
    )


def header(job: Obj, version: Obj | None, now: datetime) -> Html:
    meta, status = job["metadata"], job["status"]
    phase = status.get("phase") or "New"
    pairs: list[tuple[str, Html | str]] = [
        ("namespace", meta.get("namespace", "")),
        ("phase", Html(f'<span class="phase phase-{esc(phase)}">{esc(phase)}</span>')),
        ("reason", status.get("reason") or "-"),
        ("message", status.get("message") or "-"),
        ("progress", progress_cell(status)),
        ("base model", (job["spec"].get("baseModel") or {}).get("name") or "-"),
        ("labels", ", ".join(f"{k}={v}" for k, v in sorted((meta.get("labels") or {}).items())) or "-"),
        ("age", age(meta.get("creationTimestamp"), now)),
    ]
    if version is not None:
        vmeta = version["metadata"]
        pairs.append(
            (
                "model version",
                link(
                    url(
                        "registry",
                        query={"namespace": vmeta.get("namespace", ""), "model": version["spec"].get("modelName", "")},
                        anchor=f"mv-{vmeta.get('namespace', '')}-{vmeta['name']}",
                    ),
                    vmeta["name"],
                ),
            )
        )
    metrics = status.get("metrics") or {}
    pairs += [(k, number(v)) for k, v in sorted(metrics.items()) if k not in TOOL_CALL_METRICS]
    return Html(f"<h1>{esc(meta['name'])}</h1>" + definitions(pairs))


def render(
    job: Obj, *, recorded: Obj, events: list[Obj], pods: list[Obj], version: Obj | None, log: str, now: datetime
) -> Html:
    return Html(
        header(job, version, now)
        + tool_calls(job)
        + curves(recorded)
        + timeline(job, events)
        + dataset(job["status"])
        + hyperparameters(job, recorded, version)
        + checkpoints_and_pods(job, recorded, pods)
        + log_tail(job, pods, log)
    )
