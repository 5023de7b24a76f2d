"""The sweep (finetune_operator.sweep): one job's odd values never stop the TTL and source-wait work on the others.

Jobs stored before the CRD bounded runPolicy's seconds and typed status times as date-time (or written by a
client that skipped validation) still reach the operator, so the sweep must survive them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from finetune_operator import naming, rfc3339, sweep
from finetune_operator.config import Settings
from finetune_operator.reconciler import Reconciler
from finetune_operator.runtime import JobSummary, Runtime

NOW = datetime(2026, 11, 23, 16, 0, 0, tzinfo=UTC)


class DeletingKube:
    """Records deletes and accepts the report pacing; there is no peering object (a standalone operator)."""

    def __init__(self, failing: set[str] | None = None) -> None:
        self.deleted: list[str] = []
        self.failing = failing or set()

    def create(self, body: Mapping[str, Any]) -> bool:
        return True

    def get_path(self, path: str) -> Mapping[str, Any] | None:
        return None

    def delete(self, kind: str, namespace: str, name: str) -> None:
        if name in self.failing:
            raise RuntimeError(f"the API server refused to delete {name}")
        self.deleted.append(name)


def summary(name: str, completion_time: str | None, ttl: Any, reason: str = "ModelRegistered") -> JobSummary:
    body = {
        "metadata": {"namespace": "ml", "name": name},
        "spec": {"runPolicy": {"ttlSecondsAfterFinished": ttl}},
        "status": {"phase": "Completed", "completionTime": completion_time, "reason": reason},
    }
    return JobSummary.of(body)


def sweep_jobs(jobs: dict[str, JobSummary], kube: DeletingKube) -> Runtime:
    runtime = Runtime(Reconciler(kube, Settings(), clock=lambda: NOW), Settings())  # type: ignore[arg-type]
    runtime.jobs.update(jobs)
    asyncio.run(sweep.sweep_once(runtime))
    return runtime


def test_a_huge_ttl_and_an_unparsable_completion_time_do_not_stop_the_other_jobs() -> None:
    kube = DeletingKube()
    sweep_jobs(
        {
            "a": summary("huge-ttl", "2026-11-23T15:00:00Z", 1_000_000_000_000),
            "b": summary("bad-time", "yesterday at noon", 3),
            "c": summary("due", "2026-11-23T15:59:00.5+00:00", 3),
        },
        kube,
    )
    assert kube.deleted == ["due"]


def test_an_api_error_on_one_job_does_not_stop_the_others() -> None:
    kube = DeletingKube(failing={"first"})
    sweep_jobs(
        {"a": summary("first", "2026-11-23T15:00:00Z", 3), "b": summary("second", "2026-11-23T15:00:00Z", 3)}, kube
    )
    assert kube.deleted == ["second"]


@pytest.mark.parametrize(
    ("completion", "ttl", "expired"),
    [
        ("2026-11-23T15:59:57Z", 3, True),
        ("2026-11-23T15:59:58Z", 3, False),
        ("2026-11-23T17:59:57+02:00", 3, True),  # the same instant as 15:59:57Z
        ("2026-11-23T15:59:57.999999999Z", 2, True),
        ("2026-11-23T15:59:57Z", 10**12, False),  # past year 9999: never
        ("2026-11-23T15:59:57Z", "3", False),  # not an integer
        ("2026-11-23T15:59:57Z", True, False),
        ("2026-11-23T15:59:57Z", None, False),
        ("", 0, False),
        (None, 0, False),
        ("2026-11-23 15:59:57", 0, False),  # not RFC 3339
    ],
)
def test_ttl_expired(completion: str | None, ttl: Any, expired: bool) -> None:
    assert sweep.ttl_expired(summary("j", completion, ttl), NOW) is expired


@pytest.mark.parametrize(
    ("phase", "reason", "queued"),
    [
        ("Pending", "SourceNotFound", True),
        ("Evaluating", "ModelStoreNotFound", True),  # trained; the store claim appears later: no event says so
        ("Evaluating", "Publishing", False),
        ("Failed", "SourceNotFound", False),
        ("Pending", "QuotaExceeded", True),  # freed quota sends the job no event
        ("Pending", "CurationStarting", True),  # a refusal of its pods is only an Event
        ("Pending", "CurationFailed", False),
    ],
)
def test_jobs_waiting_for_an_object_that_is_not_theirs_are_reconciled_again(
    phase: str, reason: str, queued: bool
) -> None:
    body = {"metadata": {"namespace": "ml", "name": "j"}, "spec": {}, "status": {"phase": phase, "reason": reason}}
    runtime = sweep_jobs({"u": JobSummary.of(body)}, DeletingKube())
    assert (len(runtime.queue) == 1) is queued


def test_a_job_whose_model_copy_failed_is_never_deleted_by_its_ttl() -> None:
    """Its model exists only in the workspace, which retainPolicy Delete would remove with the job."""
    failed = summary("copy-failed", "2026-11-23T15:00:00Z", 3, reason="ModelCopyFailed")
    assert not sweep.ttl_expired(failed, NOW)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-11-23T16:00:00Z", NOW),
        ("2026-11-23t16:00:00z", NOW),
        ("2026-11-23T17:30:00+01:30", NOW),
        ("2026-11-23T14:00:00-02:00", NOW),
        ("2026-11-23T16:00:00.25Z", NOW.replace(microsecond=250000)),
        ("2026-11-23T16:00:00.123456789Z", NOW.replace(microsecond=123456)),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),  # a leap second
    ],
)
def test_rfc3339_parses_fractions_offsets_and_case(text: str, moment: datetime) -> None:
    assert rfc3339.parse(text) == moment


@pytest.mark.parametrize(
    "text",
    ["", "2026-11-23", "2026-11-23T16:00:00", "2026-13-01T00:00:00Z", "2026-11-23T16:00Z", "now", 12, None],
)
def test_rfc3339_rejects_what_is_not_a_date_time(text: Any) -> None:
    assert rfc3339.parse(text) is None


def test_rfc3339_renders_whole_seconds_in_utc() -> None:
    assert rfc3339.render(NOW.replace(microsecond=5)) == "2026-11-23T16:00:00Z"
    assert rfc3339.parse(rfc3339.render(NOW)) == NOW


def training_job(suspend: bool) -> dict[str, Any]:
    labels = {naming.LABEL_COMPONENT: "training", naming.LABEL_JOB_UID: "u"}
    return {"metadata": {"name": "j-train", "uid": "t1", "labels": labels}, "spec": {"suspend": suspend}}


@pytest.mark.parametrize(
    ("reason", "suspend", "kueue_workloads", "queued"),
    [
        pytest.param("WaitingForAdmission", True, [], True, id="no-kueue-workload-yet"),
        pytest.param("WaitingForAdmission", True, [{"status": {}}], False, id="kueue-has-it-its-events-tell"),
        pytest.param("WaitingForAdmission", False, [], False, id="admitted"),
        pytest.param("NoKueueWorkload", True, [], False, id="already-said"),
    ],
)
def test_a_job_queued_for_kueue_is_redecided_only_while_its_training_job_has_no_workload(
    reason: str, suspend: bool, kueue_workloads: list[Any], queued: bool
) -> None:
    """NoKueueWorkload comes with time alone; the check reads the watch indexes, never the API server."""
    body = {"metadata": {"namespace": "ml", "name": "j"}, "spec": {}, "status": {"phase": "Queued", "reason": reason}}
    runtime = Runtime(Reconciler(DeletingKube(), Settings(), clock=lambda: NOW), Settings())  # type: ignore[arg-type]
    runtime.indexes = {"workloads_by_uid": {"u": [training_job(suspend)]}, "kueue_workloads_by_job_uid": {}}
    if kueue_workloads:
        runtime.indexes["kueue_workloads_by_job_uid"]["t1"] = kueue_workloads
    runtime.jobs["u"] = JobSummary.of(body)
    asyncio.run(sweep.sweep_once(runtime))
    assert (len(runtime.queue) == 1) is queued
