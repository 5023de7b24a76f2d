"""What the operator keeps in memory per child (finetune_operator.handlers indexes): no managedFields, and of a
batch Job only what the reconciler reads (bench/scale/run.py: at 1,000 jobs the full bodies were ~100 MB)."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from typing import Any

from finetune_operator import handlers
from finetune_operator.api import FineTuningJobStatus
from finetune_operator.api import status as status_api
from finetune_operator.observe import workload_state
from finetune_operator.runtime import JobSummary, fingerprint, plain

Obj = dict[str, Any]
UID = "6f1c2a9e-1d3b-4c7a-9e0f-2b5d8c4a7e11"
MANAGED = [{"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:status": {}}}]


def batch_job(suspend: bool | None = None) -> Obj:
    spec: Obj = {"backoffLimit": 3, "template": {"spec": {"containers": [{"name": "train", "image": "x"}]}}}
    if suspend is not None:
        spec["suspend"] = suspend
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "demo-train", "labels": {"finetune.dev/job-uid": UID}, "managedFields": MANAGED},
        "spec": spec,
        "status": {"active": 1},
    }


def test_plain_drops_managed_fields_and_keeps_the_rest() -> None:
    body = {"apiVersion": "v1", "metadata": {"name": "a", "managedFields": MANAGED}, "spec": {"x": 1}, "status": {}}
    assert plain(body) == {"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {}}
    assert "managedFields" in body["metadata"]  # the watched object itself is untouched


def test_workload_index_keeps_status_labels_and_suspend_only() -> None:
    for suspend in (None, True, False):
        job = batch_job(suspend)
        index: Callable[..., dict[str, Obj]] = handlers.workloads_by_uid  # type: ignore[assignment]
        indexed = index(body=job, labels=job["metadata"]["labels"])[UID]
        assert indexed["spec"] == ({} if suspend is None else {"suspend": suspend})
        assert indexed["status"] == {"active": 1}
        assert indexed["metadata"] == {"name": "demo-train", "labels": {"finetune.dev/job-uid": UID}}
        # The reconciler classifies the slim copy exactly as the full object.
        assert workload_state(indexed, []) == workload_state(job, [])


# ------------------------------------------------------------------------- per-job memory at the status bounds


def job_body(status: Obj) -> Obj:
    return {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuningJob",
        "metadata": {"name": "demo", "namespace": "ml", "uid": UID, "generation": 1, "managedFields": MANAGED},
        "spec": {
            "baseModel": {"name": "tiny", "builtin": "tiny-gpt"},
            "dataset": {"source": {"configMap": {"name": "sessions", "key": "sessions.jsonl"}}},
            "output": {"modelName": "chat"},
        },
        "status": status,
    }


def largest_status() -> Obj:
    """A status with every bounded string and list of the CRD at its maximum (whoever wrote it)."""
    condition = {
        "type": "t" * 316,
        "status": "False",
        "reason": "r" * status_api.REASON_LIMIT,
        "message": "m" * status_api.CONDITION_MESSAGE_LIMIT,
        "lastTransitionTime": "2026-11-23T16:00:00Z",
    }
    return {
        "phase": "Failed",
        "reason": "r" * status_api.REASON_LIMIT,
        "message": "m" * status_api.MESSAGE_LIMIT,
        "conditions": [{**condition, "type": f"{i:02d}" + "t" * 314} for i in range(status_api.MAX_CONDITIONS)],
        "trainingPods": ["p" * 253] * status_api.MAX_RECORDED_PODS,
        "model": {"name": "n" * 63, "version": "1" * 128, "modelVersion": "v" * 253, "uri": "u" * 4096},
        "checkpoint": {"path": "c" * 4096, "step": 1},
        "progress": {"stage": "s" * 64, "updatedAt": "2026-11-23T16:00:00Z"},
    }


def kept_per_job(status: Obj, jobs: int = 50) -> float:
    """Bytes the operator keeps per job of what the job's own object holds: the watch index's copy (`plain`),
    the summary and fingerprint of job_event, and our last written copy (`Runtime.written`). Kopf's own watch
    bookkeeping and the child indexes come on top (bench/scale/run.py measures the whole process)."""
    bodies = [json.loads(json.dumps(job_body(status))) for _ in range(jobs)]  # as a watch event decodes them
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [(plain(b), JobSummary.of(b), fingerprint(b), plain(json.loads(json.dumps(b)))) for b in bodies]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(kept) == jobs
    return (after - before) / jobs


def test_memory_per_job_is_bounded_by_the_status_schema() -> None:
    typical = kept_per_job({"phase": "Running", "reason": "Training", "message": "training"})
    largest = kept_per_job(largest_status())
    print(
        f"operator memory per job (job object copies): typical {typical / 1024:.1f} KiB, "
        f"status at the CRD bounds {largest / 1024:.1f} KiB"
    )
    FineTuningJobStatus.model_validate(largest_status())  # the worst case is one the schema admits
    assert largest < 128 * 1024
