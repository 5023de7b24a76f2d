"""Which watch events queue a reconciliation (finetune_operator.handlers): a burst is one reconciliation; the
trainer's progress reports and our own status write coming back queue none; a spec change, a stage change and
any event after a failed reconciliation do. At 1,000 live jobs the trainers' reports alone were ~23,000
reconciliations that could change nothing (bench/scale/run.py)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from finetune_operator import handlers, naming, runtime, views
from finetune_operator.config import Settings
from finetune_operator.kube import ApiError
from finetune_operator.reconciler import Reconciler

Obj = dict[str, Any]
UID = "6f1c2a9e-1d3b-4c7a-9e0f-2b5d8c4a7e11"
CLOCK = datetime(2026, 11, 23, 16, 0, 5, tzinfo=UTC)


class RecordingKube:
    def __init__(self) -> None:
        self.patches: list[Mapping[str, Any]] = []
        self.failures = 0  # status writes to refuse before accepting
        self.resource_version = 1

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return {"kind": "ConfigMap", "data": {"sessions.jsonl": "{}\n"}} if kind == "ConfigMap" else None

    def list(self, kind: str, namespace: str, label_selector: str | None = None) -> list[Obj]:
        return []

    def create(self, obj: Obj) -> bool:
        return True

    def post(self, obj: Obj) -> None:
        pass

    def delete(self, kind: str, namespace: str, name: str) -> None:
        raise AssertionError("unexpected delete")

    def patch_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> Obj:
        if self.failures:
            self.failures -= 1
            raise ApiError(500, "etcdserver: request timed out")
        self.patches.append(status)
        self.resource_version += 1
        written = job(status=dict(status))
        written["metadata"]["resourceVersion"] = str(self.resource_version)
        return written


def job(status: Obj | None = None, generation: int = 1, resource_version: int = 1) -> Obj:
    return {
        "metadata": {
            "name": "demo",
            "namespace": "ml",
            "uid": UID,
            "generation": generation,
            "creationTimestamp": "2026-11-23T16:00:00Z",
            "resourceVersion": str(resource_version),
        },
        "spec": {
            "baseModel": {"name": "tiny", "builtin": "tiny-gpt"},
            "dataset": {"source": {"configMap": {"name": "sessions", "key": "sessions.jsonl"}}},
            "output": {"modelName": "demo-model"},
        },
        "status": status or {},
    }


class Cluster:
    """The operator's runtime with its queue not started, and Kopf's indexes as plain mappings."""

    def __init__(self) -> None:
        self.kube = RecordingKube()
        settings = Settings(reconcile_delay_ms=0)
        self.runtime = runtime.Runtime(Reconciler(self.kube, settings, clock=lambda: CLOCK), settings)  # type: ignore[arg-type]
        runtime.install(self.runtime)
        self.indexes: dict[str, dict[Any, list[Obj]]] = {name: {} for name in views.INDEXES}

    async def job_event(self, body: Obj, type: str = "MODIFIED") -> None:
        self.indexes["ftj_by_uid"][UID] = [copy.deepcopy(body)]
        await handlers.job_event(type=type, uid=UID, body=body, **self.indexes)  # type: ignore[arg-type]

    async def child_event(self) -> None:
        await handlers.child_event(labels={"finetune.dev/job-uid": UID}, **self.indexes)

    async def drain(self) -> None:
        self.runtime.queue.start()
        await self.runtime.queue.join()
        await self.runtime.queue.stop()


def scenario(test: Any) -> None:
    asyncio.run(asyncio.wait_for(test(Cluster()), timeout=10))


RUNNING: Obj = {"phase": "Running", "reason": "Training", "progress": {"stage": "Training", "step": 1}}


def test_a_burst_of_events_is_one_reconciliation() -> None:
    async def test(cluster: Cluster) -> None:
        await cluster.job_event(job(), type="ADDED")
        for _ in range(20):
            await cluster.child_event()
        assert len(cluster.runtime.queue) == 1
        await cluster.drain()
        assert len(cluster.kube.patches) == 1

    scenario(test)


def test_progress_reports_queue_nothing_but_a_stage_change_does() -> None:
    async def test(cluster: Cluster) -> None:
        await cluster.job_event(job(RUNNING))
        await cluster.drain()
        for step in range(2, 30):
            report = {**RUNNING, "progress": {"stage": "Training", "step": step}, "metrics": {"loss": 3.0 / step}}
            await cluster.job_event(job(report, resource_version=step))
            assert len(cluster.runtime.queue) == 0
        evaluating = {**RUNNING, "progress": {"stage": "Evaluating", "step": 30}}
        await cluster.job_event(job(evaluating, resource_version=31))
        assert len(cluster.runtime.queue) == 1

    scenario(test)


@pytest.mark.parametrize(
    "change",
    [
        {"generation": 2},  # spec changed, e.g. spec.cancel
        {"status": {**RUNNING, "phase": "Queued"}},  # somebody else wrote the status
    ],
)
def test_a_change_the_reconciler_reads_queues_a_reconciliation(change: Obj) -> None:
    async def test(cluster: Cluster) -> None:
        await cluster.job_event(job(RUNNING))
        await cluster.drain()
        await cluster.job_event(job(**{"status": RUNNING, "resource_version": 10, **change}))
        assert len(cluster.runtime.queue) == 1

    scenario(test)


def test_our_own_status_write_coming_back_queues_nothing_and_is_not_kept_twice() -> None:
    async def test(cluster: Cluster) -> None:
        await cluster.job_event(job(), type="ADDED")
        await cluster.drain()
        written = cluster.runtime.written[UID]
        echo = job(dict(written["status"]), resource_version=int(written["metadata"]["resourceVersion"]))
        await cluster.job_event(echo)
        assert len(cluster.runtime.queue) == 0
        assert UID not in cluster.runtime.written

    scenario(test)


def test_after_a_failed_reconciliation_the_same_event_retries() -> None:
    async def test(cluster: Cluster) -> None:
        cluster.kube.failures = 1
        await cluster.job_event(job(RUNNING))
        await cluster.drain()
        assert cluster.kube.patches == []
        await cluster.job_event(job(RUNNING))  # nothing the reconciler reads changed, yet it must run again
        assert len(cluster.runtime.queue) == 1
        await cluster.drain()
        assert len(cluster.kube.patches) == 1

    scenario(test)


def test_a_deleted_job_is_forgotten() -> None:
    async def test(cluster: Cluster) -> None:
        await cluster.job_event(job(RUNNING))
        await cluster.drain()
        await cluster.job_event(job(RUNNING), type="DELETED")
        runtime = cluster.runtime
        assert UID not in runtime.jobs and UID not in runtime.fingerprints and UID not in runtime.written

    scenario(test)


def test_a_kueue_workload_event_queues_the_job_of_its_training_job() -> None:
    async def test(cluster: Cluster) -> None:
        await cluster.job_event(job(RUNNING))
        await cluster.drain()
        owners = {"job_of_training_uid": {"train-uid": [UID]}}
        kueue_label = "kueue.x-k8s.io/job-uid"
        await handlers.kueue_workload_event(labels={kueue_label: "other-uid"}, **cluster.indexes, **owners)
        assert len(cluster.runtime.queue) == 0  # a Workload of somebody else's Job
        await handlers.kueue_workload_event(labels={kueue_label: "train-uid"}, **cluster.indexes, **owners)
        assert len(cluster.runtime.queue) == 1

    scenario(test)


def training_job(suspend: bool) -> Obj:
    labels = {naming.LABEL_JOB_UID: UID, naming.LABEL_COMPONENT: "training"}
    return {"metadata": {"name": "demo-train", "uid": "train-uid", "labels": labels}, "spec": {"suspend": suspend}}


@pytest.mark.parametrize("suspend", [True, False])
def test_the_view_holds_kueues_workload_only_while_the_training_job_is_suspended(suspend: bool) -> None:
    workload = {"status": {"conditions": [{"type": "QuotaReserved", "status": "False", "message": "no quota"}]}}
    asked: list[str] = []

    def kueue_workloads(job_uid: str) -> list[Obj]:
        asked.append(job_uid)
        return [workload]

    view = views.assemble(
        job(RUNNING),
        workloads=[training_job(suspend)],
        pods=[],
        pvcs=[],
        model_versions=[],
        active_training_uids=[],
        kueue_workloads=kueue_workloads,
    )
    assert view.admission == (workload if suspend else None)
    assert asked == (["train-uid"] if suspend else [])


@pytest.mark.parametrize("status", [403, 404])
def test_fresh_reads_without_kueue_or_without_access_to_it_see_no_workload(status: int) -> None:
    class NoKueue(RecordingKube):
        def get(self, kind: str, namespace: str, name: str) -> Obj | None:
            return job(RUNNING) if kind == "FineTuningJob" else None

        def list(self, kind: str, namespace: str, label_selector: str | None = None) -> list[Obj]:
            if kind == "Workload":
                raise ApiError(status, "the server could not find the requested resource")
            return [training_job(suspend=True)] if kind == "Job" else []

    view = views.from_api(NoKueue(), "ml", "demo")  # type: ignore[arg-type]
    assert view is not None and view.admission is None
    assert view.workloads["training"]["spec"]["suspend"] is True
