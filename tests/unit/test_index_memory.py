"""What the operator keeps in memory per child (finetune_operator.handlers indexes): no managedFields, and of a
batch Job only what the reconciler reads (bench/scale/run.py: at 1,000 jobs the full bodies were ~100 MB)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from finetune_operator import handlers
from finetune_operator.observe import workload_state
from finetune_operator.runtime import plain

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
