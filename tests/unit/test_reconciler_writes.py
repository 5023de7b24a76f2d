"""API writes of one reconciliation (finetune_operator.reconciler): the job's preparation objects are created
once, not again on every event until curation starts (each repeat was five refused creates, see
bench/scale/run.py), yet a reconciliation interrupted half-way through preparing is completed by the next one;
and the reads that creating the training Job needs are not repeated.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from finetune_operator.config import Settings
from finetune_operator.reconciler import JobView, Reconciler

Obj = dict[str, Any]
NAMESPACE = "ml"
# The second ConfigMap is <job>-metrics, the trainer's metric history.
PREPARED = ["PersistentVolumeClaim", "ConfigMap", "ConfigMap", "ServiceAccount", "Role", "RoleBinding"]


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


class EventKube(RecordingKube):
    """Also answers for the job's workloads and records Events, named ones as a real API server does (409)."""

    def __init__(self, workloads: dict[str, Obj]) -> None:
        super().__init__()
        self.workloads = workloads
        self.events: list[Obj] = []
        self.event_names: set[str] = set()

    def create(self, obj: Obj) -> bool:
        if obj["kind"] != "Event":
            return super().create(obj)
        if obj["metadata"]["name"] in self.event_names:
            return False
        self.event_names.add(obj["metadata"]["name"])
        self.events.append(obj)
        return True

    def post(self, obj: Obj) -> None:
        self.events.append(obj)


def queued_view(status: Obj, suspended: bool) -> JobView:
    curated = {
        "metadata": {"name": "demo-curate", "labels": {"app.kubernetes.io/component": "curation"}},
        "status": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1},
    }
    training: Obj = {"metadata": {"name": "demo-train"}, "spec": {"suspend": suspended}, "status": {"active": 1}}
    pending = {
        "metadata": {"name": "demo-train-x"},
        "status": {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}
            ],
        },
    }
    view = JobView(body=job(status), pvc=BOUND_PVC)
    view.workloads = {"curation": curated, "training": training}
    view.pods = {"training": [] if suspended else [pending]}
    return view


def test_a_new_waiting_cause_within_a_phase_posts_one_event_per_reason() -> None:
    clock = datetime(2026, 11, 23, 16, 0, 5, tzinfo=UTC)
    kube = EventKube({})
    reconciler = Reconciler(kube, Settings(), clock=lambda: clock)  # type: ignore[arg-type]
    admitted_then_unschedulable = {"phase": "Queued", "reason": "WaitingForAdmission", "message": "..."}
    for _ in range(3):  # the same cause seen again: still one Event
        reconciler.reconcile(queued_view(admitted_then_unschedulable, suspended=False))
    reasons = [event["reason"] for event in kube.events]
    assert reasons == ["WaitingForCapacity"], reasons
    assert kube.events[0]["message"] == "waiting for 1 nvidia.com/gpu: 0/3 nodes"
    routine = {"phase": "Running", "reason": "Curating", "message": "..."}
    kube.events.clear()
    reconciler.reconcile(JobView(body=job(routine), pvc=BOUND_PVC))
    assert all(event["reason"] != "TrainingStarting" for event in kube.events)


class RegistryKube(RecordingKube):
    """Also answers for a RegisteredModel whose champion alias names an adapter, and counts the registry reads."""

    def __init__(self) -> None:
        super().__init__()
        self.registry_reads: list[str] = []
        self.jobs: list[Obj] = []

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        if kind == "RegisteredModel":
            self.registry_reads.append(kind)
            return {"metadata": {"name": name}, "spec": {"aliases": {"champion": "1.4.0"}}}
        return super().get(kind, namespace, name)

    def list(self, kind: str, namespace: str, label_selector: str | None = None) -> list[Obj]:
        if kind != "ModelVersion":
            return super().list(kind, namespace, label_selector)
        self.registry_reads.append(kind)
        artifact = {"pvc": "earlier-workspace", "path": "model", "adapter": True}
        spec = {"version": "1.4.0", "baseModel": "tiny", "artifact": artifact}
        return [{"metadata": {"name": "demo-model-v1.4.0"}, "spec": spec}]

    def create(self, obj: Obj) -> bool:
        self.jobs += [obj] if obj["kind"] == "Job" else []
        return super().create(obj)


def test_the_training_job_compares_against_the_champion_observed_in_the_same_reconciliation() -> None:
    # observe() resolves evaluation.compareTo (ChampionUnavailable if it cannot be compared); creating the
    # training Job uses that resolution instead of reading the registry a second time.
    body = job({"phase": "Running", "reason": "Curating"})
    body["spec"]["evaluation"] = {"compareTo": {"maxRegression": 0.1}}
    curated = {
        "metadata": {"name": "demo-curate", "labels": {"app.kubernetes.io/component": "curation"}},
        "status": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1},
    }
    view = JobView(body=body, pvc=BOUND_PVC)
    view.workloads = {"curation": curated}
    kube = RegistryKube()
    clock = datetime(2026, 11, 23, 16, 0, 5, tzinfo=UTC)
    Reconciler(kube, Settings(), clock=lambda: clock).reconcile(view)  # type: ignore[arg-type]
    assert [job["metadata"]["name"] for job in kube.jobs] == ["demo-train"]
    volumes = kube.jobs[0]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "champion", "persistentVolumeClaim": {"claimName": "earlier-workspace", "readOnly": True}} in (
        volumes
    )
    assert kube.registry_reads == ["RegisteredModel", "ModelVersion"]
