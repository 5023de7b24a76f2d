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


def test_in_a_cluster_the_job_status_url_is_targeted(monkeypatch: pytest.MonkeyPatch) -> None:
    captured: dict[str, object] = {}

    def fake_sender(url: str, credentials: object) -> report.Send:
        captured["url"] = url
        return lambda patch: None

    monkeypatch.setattr(report, "https_sender", fake_sender)
    report.from_environment(
        "demo", "ml", environ={"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    )
    assert (
        captured["url"] == "https://[fd00::1]:6443/apis/finetune.dev/v1alpha1/namespaces/ml/finetuningjobs/demo/status"
    )
