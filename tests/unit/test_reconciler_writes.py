"""API writes of one reconciliation (finetune_operator.reconciler): the job's preparation objects are created
once, not again on every event until curation starts (each repeat was five refused creates, see
bench/scale/run.py), yet a reconciliation interrupted half-way through preparing is completed by the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from finetune_operator.config import Settings
from finetune_operator.reconciler import JobView, Reconciler

Obj = dict[str, Any]
NAMESPACE = "ml"
PREPARED = ["PersistentVolumeClaim", "ConfigMap", "ServiceAccount", "Role", "RoleBinding"]


class RecordingKube:
    """Answers reads from a fixed set of objects and records every write."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.patches: list[Mapping[str, Any]] = []
        self.sessions: Obj = {"kind": "ConfigMap", "data": {"sessions.jsonl": "{}\n"}}

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.sessions if (kind, name) == ("ConfigMap", "sessions") else None

    def list(self, kind: str, namespace: str, label_selector: str | None = None) -> list[Obj]:
        return []

    def create(self, obj: Obj) -> bool:
        self.created.append(obj["kind"])
        return True

    def post(self, obj: Obj) -> None:
        pass

    def delete(self, kind: str, namespace: str, name: str) -> None:
        raise AssertionError(f"unexpected delete of {kind} {name}")

    def patch_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> Obj:
        self.patches.append(status)
        return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": "2"}, "status": dict(status)}


def job(status: Obj | None = None) -> Obj:
    return {
        "metadata": {
            "name": "demo",
            "namespace": NAMESPACE,
            "uid": "6f1c2a9e-1d3b-4c7a-9e0f-2b5d8c4a7e11",
            "generation": 1,
            "creationTimestamp": "2026-11-23T16:00:00Z",
            "resourceVersion": "1",
        },
        "spec": {
            "baseModel": {"name": "tiny", "builtin": "tiny-gpt"},
            "dataset": {"source": {"configMap": {"name": "sessions", "key": "sessions.jsonl"}}},
            "output": {"modelName": "demo-model"},
        },
        "status": status or {},
    }


BOUND_PVC: Obj = {"metadata": {"name": "demo-workspace"}, "status": {"phase": "Bound"}}


def reconcile(view: JobView) -> RecordingKube:
    kube = RecordingKube()
    clock = datetime(2026, 11, 23, 16, 0, 5, tzinfo=UTC)
    Reconciler(kube, Settings(), clock=lambda: clock).reconcile(view)  # type: ignore[arg-type]
    return kube


def test_a_new_job_creates_its_preparation_objects() -> None:
    kube = reconcile(JobView(body=job()))
    assert kube.created == PREPARED
    assert kube.patches and kube.patches[0]["phase"] == "Pending"


def test_a_prepared_job_only_creates_its_curation_job() -> None:
    # The PVC exists and an earlier reconciliation wrote a phase: everything of PREPARE was created then.
    view = JobView(body=job({"phase": "Pending", "reason": "Creating"}), pvc=BOUND_PVC)
    assert reconcile(view).created == ["Job"]


def test_preparation_interrupted_before_the_first_status_write_is_completed() -> None:
    # The PVC was created, then the operator died before the rest and before writing any phase.
    view = JobView(body=job(), pvc=BOUND_PVC)
    assert reconcile(view).created == [*PREPARED, "Job"]
