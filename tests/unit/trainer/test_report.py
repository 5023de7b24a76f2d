from datetime import UTC, datetime

import pytest

from finetune_trainer import report


@pytest.mark.parametrize(
    ("now", "last_sent", "last_stage", "stage", "due"),
    [
        (0.0, None, None, "Training", True),  # first update
        (5.0, 0.0, "Training", "Training", False),  # throttled
        (9.99, 0.0, "Training", "Training", False),
        (10.0, 0.0, "Training", "Training", True),  # interval elapsed
        (1.0, 0.0, "Training", "Evaluating", True),  # stage change goes out at once
    ],
)
def test_is_due(now: float, last_sent: float | None, last_stage: str | None, stage: str, due: bool) -> None:
    assert report.is_due(now, last_sent, last_stage, stage, interval=10.0) is due


def test_reporter_sends_at_most_one_update_per_interval_plus_stage_changes() -> None:
    sent: list[dict[str, object]] = []
    reporter = report.Reporter(send=sent.append, interval=10.0)
    for second in range(0, 35):  # a step per second
        reporter.report({"step": second}, "Training", float(second))
    reporter.report({"step": 35}, "Evaluating", 35.5)
    reporter.report({"step": 36}, "Evaluating", 36.0, force=True)
    assert [patch["step"] for patch in sent] == [0, 10, 20, 30, 35, 36]


def test_on_a_busy_cluster_the_first_report_waits_for_a_random_moment_within_the_paced_interval() -> None:
    sent: list[dict[str, object]] = []
    reporter = report.Reporter(send=sent.append, read_pacing=lambda: 100.0)
    reporter.hold_first_report(1000.0, jitter=lambda: 0.25)
    assert reporter.interval == reporter.floor == 100.0 and reporter.first_at == 1025.0
    assert reporter.report({"step": 1}, "Training", 1024.9) is False
    assert reporter.report({"step": 2}, "Training", 1025.0) is True
    assert reporter.report({"step": 3}, "Training", 1100.0) is False  # then paced as before
    assert reporter.report({"step": 4}, "Evaluating", 1100.0) is True  # stage changes still go at once
    assert [patch["step"] for patch in sent] == [2, 4]


def test_a_forced_report_is_not_held_and_a_quiet_cluster_reports_at_once() -> None:
    sent: list[dict[str, object]] = []
    busy = report.Reporter(send=sent.append, read_pacing=lambda: 100.0)
    busy.hold_first_report(0.0, jitter=lambda: 0.5)
    assert busy.report({"final": True}, "Curating", 1.0, force=True) is True
    quiet = report.Reporter(send=sent.append, read_pacing=lambda: 10.0)
    quiet.hold_first_report(0.0, jitter=lambda: 0.5)
    assert quiet.first_at is None and quiet.report({"step": 1}, "Training", 0.0) is True
    unpublished = report.Reporter(send=sent.append, read_pacing=lambda: None)
    unpublished.hold_first_report(0.0, jitter=lambda: 0.5)
    assert unpublished.report({"step": 1}, "Training", 0.0) is True
    assert len(sent) == 3


def test_the_final_report_sends_status_and_curve_on_a_quiet_cluster_and_only_the_curve_on_a_busy_one() -> None:
    def reporter_on(pacing: float) -> tuple[report.Reporter, list[str]]:
        writes: list[str] = []
        reporter = report.Reporter(
            send=lambda patch: writes.append("status"),
            send_history=lambda body: writes.append("history"),
            read_pacing=lambda: pacing,
        )
        reporter.hold_first_report(0.0, jitter=lambda: 0.5)
        return reporter, writes

    def curve() -> dict[str, object]:
        return {"series": {}}

    quiet, quiet_writes = reporter_on(10.0)
    assert quiet.report({"status": {"metrics": {"evalLoss": 1.0}}}, "Evaluating", 5.0, history=curve, final=True)
    busy, busy_writes = reporter_on(100.0)
    assert busy.report({"status": {"metrics": {"evalLoss": 1.0}}}, "Evaluating", 5.0, history=curve, final=True)
    assert (quiet_writes, busy_writes) == (["status", "history"], ["history"])
    # a final report without a curve (curation's, a download's) writes nothing on a busy cluster
    assert busy.report({"status": {"progress": {"percent": 100}}}, "Curating", 6.0, final=True) is False
    assert busy_writes == ["history"]


def test_carried_fields_ride_on_the_next_report_once() -> None:
    sent: list[dict[str, object]] = []
    reporter = report.Reporter(send=sent.append, interval=10.0)
    reporter.carry({"memoryPlan": {"estimatedGib": 1.5}})
    reporter.report({"status": {"progress": {"step": 1}}}, "Training", 0.0)
    reporter.report({"status": {"progress": {"step": 2}}}, "Training", 10.0)
    assert sent == [
        {"status": {"memoryPlan": {"estimatedGib": 1.5}, "progress": {"step": 1}}},
        {"status": {"progress": {"step": 2}}},
    ]


def test_reporting_failures_are_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    def broken(patch: dict[str, object]) -> None:
        raise RuntimeError("API server unreachable")

    assert report.Reporter(send=broken).report({}, "Training", 0.0) is True
    assert "API server unreachable" in caplog.text


def test_status_patch_shape() -> None:
    patch = report.status_patch(
        stage="Training",
        step=40,
        total_steps=120,
        epoch=1.0,
        metrics={"trainLoss": 2.3},
        now=datetime(2026, 11, 23, 16, 0, tzinfo=UTC),
        checkpoint={"path": "checkpoints/checkpoint-40", "step": 40},
    )
    assert patch == {
        "status": {
            "progress": {
                "stage": "Training",
                "step": 40,
                "totalSteps": 120,
                "epoch": 1.0,
                "percent": 33,
                "updatedAt": "2026-11-23T16:00:00Z",
                "estimatedSecondsRemaining": None,
            },
            "metrics": {"trainLoss": 2.3},
            "checkpoint": {"path": "checkpoints/checkpoint-40", "step": 40},
        }
    }


@pytest.mark.parametrize(
    ("step", "total", "expected"), [(0, 0, 0), (0, 10, 0), (5, 10, 50), (10, 10, 100), (11, 10, 100)]
)
def test_percent(step: int, total: int, expected: int) -> None:
    assert report.percent(step, total) == expected


def test_outside_a_cluster_updates_are_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    reporter = report.from_environment("demo", "ml", environ={})
    reporter.report({"status": {"progress": {"step": 1}}}, "Training", 0.0)
    assert "not in a cluster" in caplog.text


def test_in_a_cluster_the_job_status_its_metrics_and_the_pacing_are_targeted(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: list[str] = []

    def fake_sender(url: str, credentials: object) -> report.Send:
        captured.append(url)
        return lambda patch: None

    def fake_reader(url: str, credentials: object) -> report.Read:
        captured.append(url)
        return lambda: None

    monkeypatch.setattr(report, "https_sender", fake_sender)
    monkeypatch.setattr(report, "pacing_reader", fake_reader)
    report.from_environment(
        "demo", "ml", environ={"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    )
    assert captured == [
        "https://[fd00::1]:6443/apis/finetune.dev/v1alpha1/namespaces/ml/finetuningjobs/demo/status",
        "https://[fd00::1]:6443/api/v1/namespaces/ml/configmaps/demo-metrics",
        "https://[fd00::1]:6443/api/v1/namespaces/ml/configmaps/finetune-report-pacing?resourceVersion=0",
    ]


@pytest.mark.parametrize(
    ("interval", "latency", "code", "retry_after", "expected"),
    [
        (10.0, 0.05, None, None, 10.0),  # quick answers never go below the pacing
        (40.0, 0.05, None, None, 36.0),  # ... and relax back towards it by 10% per answer
        (10.0, 0.05, 429, None, 20.0),  # throttled: twice the interval
        (10.0, 0.05, 429, 120.0, 120.0),  # ... or what Retry-After asks, if longer
        (10.0, 0.05, 503, None, 20.0),
        (10.0, 3.0, None, None, 15.0),  # slow answer
        (500.0, 0.05, 429, None, report.MAX_INTERVAL_SECONDS),
        (10.0, 0.05, 0, None, 10.0),  # a network error is not load
    ],
)
def test_adapt(interval: float, latency: float, code: int | None, retry_after: float | None, expected: float) -> None:
    assert report.adapt(interval, 10.0, latency=latency, code=code, retry_after=retry_after) == expected


def test_reporter_backs_off_on_429_and_recovers_at_the_pacing_floor() -> None:
    answers = iter([report.Refused("throttled", 429), None, None, None, None, None, None, None, None, None])

    def send(patch: dict[str, object]) -> None:
        error = next(answers)
        if error is not None:
            raise error

    reporter = report.Reporter(send=send, interval=10.0)
    assert reporter.report({}, "Training", 0.0)
    assert reporter.interval == 20.0
    assert not reporter.report({}, "Training", 15.0)  # not due under the longer interval
    now, intervals = 0.0, []
    while reporter.interval > 10.0:
        now += reporter.interval + 0.01
        assert reporter.report({}, "Training", now), now
        intervals.append(round(reporter.interval, 2))
    assert intervals == [18.0, 16.2, 14.58, 13.12, 11.81, 10.63, 10.0]


def test_the_operators_pacing_raises_the_floor_and_is_reread_once_a_minute() -> None:
    reads: list[float] = []
    pacing = iter([75.0, 30.0])

    def read() -> float | None:
        value = next(pacing)
        reads.append(value)
        return value

    reporter = report.Reporter(send=lambda patch: None, interval=10.0, read_pacing=read)
    reporter.report({}, "Training", 0.0)
    assert reporter.floor == 75.0 and reporter.interval == 75.0
    assert not reporter.report({}, "Training", 50.0)
    reporter.report({}, "Training", 75.0)
    assert reporter.floor == 30.0 and reads == [75.0, 30.0]
    assert reporter.interval == 67.5  # relaxing towards the lower pacing, 10% per report


def test_the_history_goes_with_every_second_report_and_every_forced_one() -> None:
    statuses: list[dict[str, object]] = []
    histories: list[dict[str, object]] = []
    reporter = report.Reporter(send=statuses.append, send_history=histories.append, interval=10.0)
    for second in range(0, 60, 10):
        reporter.report({"s": second}, "Training", float(second), history=lambda: {"series": {}})
    reporter.report({"s": 60}, "Evaluating", 61.0, force=True, history=lambda: {"series": {"evalLoss": [[6, 1.0]]}})
    assert len(statuses) == 7
    # every second report of the stage (the first adds no curve: not at once) and the forced final one
    assert len(histories) == 4
    assert histories[-1] == {"data": {"history.json": '{"series":{"evalLoss":[[6,1.0]]}}'}}


def test_a_stage_change_sends_the_finished_stages_curve_but_a_first_report_waits_for_one() -> None:
    histories: list[dict[str, object]] = []
    reporter = report.Reporter(send=lambda patch: None, send_history=histories.append, interval=10.0)
    reporter.report({}, "Planning", 0.0, force=True)  # the memory plan: no history
    reporter.report({}, "Training", 1.0, history=lambda: {"series": {}})
    assert histories == []  # a job's first training report: its curve has nothing yet
    reporter.report({}, "Training", 11.0, history=lambda: {"series": {"trainLoss": [[1, 2.0]]}})
    reporter.report({}, "Evaluating", 12.0, history=lambda: {"series": {"trainLoss": [[1, 2.0], [2, 1.5]]}})
    assert len(histories) == 2  # the second report of training, and at once at the change to Evaluating
