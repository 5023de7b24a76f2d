"""Report pacing (finetune_operator.pacing): the interval keeps the cluster's progress writes within budget."""

from __future__ import annotations

from typing import Any

import pytest

from finetune_operator import pacing
from finetune_operator.kube import ApiError


@pytest.mark.parametrize(("running", "interval"), [(0, 10.0), (1, 10.0), (100, 10.0), (1000, 100.0), (10**6, 600.0)])
def test_report_interval(running: int, interval: float) -> None:
    assert pacing.report_interval(running) == interval


@pytest.mark.parametrize("running", [1, 50, 100, 101, 333, 1000, 4000])
def test_the_budget_holds_at_any_count_up_to_the_ceiling(running: int) -> None:
    writes_per_second = running * pacing.WRITES_PER_REPORT / pacing.report_interval(running)
    assert writes_per_second <= max(pacing.WRITES_PER_SECOND, running * pacing.WRITES_PER_REPORT / 10.0)
    if running >= 100:
        assert writes_per_second <= pacing.WRITES_PER_SECOND + 1e-9


def test_hysteresis() -> None:
    assert pacing.worth_writing(None, 10.0)
    assert not pacing.worth_writing(10.0, 12.0)
    assert pacing.worth_writing(10.0, 12.5)
    assert pacing.worth_writing(100.0, 80.0)
    assert not pacing.worth_writing(100.0, 81.0)


class RecordingKube:
    """Records the writes the Pacer makes (the real Kube is exercised by the integration tests)."""

    def __init__(self, existing: set[str] | None = None, refuse: bool = False) -> None:
        self.existing = existing or set()
        self.refuse = refuse
        self.writes: list[tuple[str, str, Any]] = []

    def create(self, obj: dict[str, Any]) -> bool:
        if self.refuse:
            raise ApiError(403, "forbidden")
        namespace = obj["metadata"]["namespace"]
        self.writes.append(("create", namespace, obj["data"]))
        if namespace in self.existing:
            return False
        self.existing.add(namespace)
        return True

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.writes.append(("patch", namespace, patch["data"]))


def test_pacer_writes_each_namespace_once_then_only_on_real_changes() -> None:
    kube = RecordingKube(existing={"b"})
    pacer = pacing.Pacer(kube)  # type: ignore[arg-type]
    assert pacer.publish({"a": 3, "b": 2, "idle": 0}) == ["a", "b"]
    assert [w[:2] for w in kube.writes] == [("create", "a"), ("create", "b"), ("patch", "b")]
    assert kube.writes[0][2] == {"reportIntervalSeconds": "10.0", "reportingJobs": "5"}
    assert pacer.publish({"a": 60, "b": 40}) == []  # 100 running: still 10 s
    assert pacer.publish({"a": 600, "b": 400}) == ["a", "b"]  # 1,000 running: 100 s
    assert pacer.written == {"a": 100.0, "b": 100.0}


def test_pacer_survives_a_refused_write() -> None:
    pacer = pacing.Pacer(RecordingKube(refuse=True))  # type: ignore[arg-type]
    assert pacer.publish({"a": 1}) == []
    assert pacer.written == {}


def test_reporting_by_namespace_counts_the_jobs_about_to_run_but_not_the_queued() -> None:
    phases = [("a", "Running"), ("a", "Pending"), ("b", "Completed"), ("a", "Evaluating"), ("c", None), ("c", "Queued")]
    assert pacing.reporting_by_namespace(phases) == {"a": 3, "b": 0, "c": 0}
