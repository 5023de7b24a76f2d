"""A job and what exists around it (`JobView`), from the watch indexes or from fresh API reads.

Both sources hand the same lists to one builder (`assemble`), so the reconciler cannot see a job differently
depending on where the view came from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from finetune_operator import naming
from finetune_operator.backends.batchjob import COMPONENT as TRAINING
from finetune_operator.kube import ApiError, Kube
from finetune_operator.observe import KUEUE_JOB_UID_LABEL
from finetune_operator.reconciler import JobView
from finetune_operator.runtime import Runtime

Obj = Mapping[str, Any]

INDEXES = (
    "ftj_by_uid",
    "workloads_by_uid",
    "active_training_by_namespace",
    "pods_by_uid",
    "pvcs_by_uid",
    "model_versions_by_model",
    "kueue_workloads_by_job_uid",
)


def component(obj: Obj) -> str:
    return str(obj["metadata"].get("labels", {}).get(naming.LABEL_COMPONENT, ""))


def is_active(workload: Obj) -> bool:
    conditions = (workload.get("status") or {}).get("conditions") or []
    return not any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


def model_name(body: Obj) -> str:
    return str(((body.get("spec") or {}).get("output") or {}).get("modelName"))


def assemble(
    body: Obj,
    *,
    workloads: Sequence[Obj],
    pods: Sequence[Obj],
    pvcs: Sequence[Obj],
    model_versions: Sequence[Obj],
    active_training_uids: Sequence[str],
    kueue_workloads: Callable[[str], Sequence[Obj]] = lambda _: (),
) -> JobView:
    """The view of `body` from the objects labelled with its uid and its model's versions."""
    view = JobView(body=body)
    for workload in workloads:
        view.workloads[component(workload)] = workload
    for pod in pods:
        view.pods.setdefault(component(pod), []).append(pod)
    view.pvc = pvcs[-1] if pvcs else None
    view.model_versions = list(model_versions)
    uid = body["metadata"]["uid"]
    view.active_training_elsewhere = len([other for other in active_training_uids if other != uid])
    view.admission = _kueue_workload(view.workloads.get(TRAINING), kueue_workloads)
    return view


def _suspended(workload: Obj) -> bool:
    return bool((workload.get("spec") or {}).get("suspend"))


def _kueue_workload(training: Obj | None, kueue_workloads: Callable[[str], Sequence[Obj]]) -> Obj | None:
    """Kueue's Workload of a suspended training Job (looked up only then: only then is it waiting for Kueue)."""
    if training is None or not _suspended(training):
        return None
    found = kueue_workloads(str(training["metadata"]["uid"]))
    return found[-1] if found else None


def _values(index: Any, key: Any) -> list[Any]:
    try:
        return list(index[key])
    except KeyError:
        return []


def from_indexes(uid: str, runtime: Runtime) -> JobView | None:
    """From Kopf's in-memory indexes: cheap, possibly a moment stale (every action is idempotent)."""
    indexes = runtime.indexes
    bodies = _values(indexes["ftj_by_uid"], uid)
    if not bodies:
        return None
    runtime.caught_up(uid, bodies[-1])
    body = runtime.written.get(uid, bodies[-1])  # our own write, while it is newer than the index
    namespace = body["metadata"]["namespace"]
    return assemble(
        body,
        workloads=_values(indexes["workloads_by_uid"], uid),
        pods=_values(indexes["pods_by_uid"], uid),
        pvcs=_values(indexes["pvcs_by_uid"], uid),
        model_versions=_values(indexes["model_versions_by_model"], (namespace, model_name(body))),
        active_training_uids=_values(indexes["active_training_by_namespace"], namespace),
        kueue_workloads=lambda job_uid: _values(indexes["kueue_workloads_by_job_uid"], job_uid),
    )


def lacks_kueue_workload(uid: str, runtime: Runtime) -> bool:
    """Whether the job's training Job is suspended with no Kueue Workload, from the indexes (no API read): only
    such a job changes its reason with time alone (`NoKueueWorkload`)."""
    indexes = runtime.indexes
    training = [w for w in _values(indexes.get("workloads_by_uid", {}), uid) if component(w) == TRAINING]
    if not training or not _suspended(training[-1]):
        return False
    return (
        _kueue_workload(training[-1], lambda job_uid: _values(indexes["kueue_workloads_by_job_uid"], job_uid)) is None
    )


def from_api(kube: Kube, namespace: str, name: str) -> JobView | None:
    """From fresh reads: used by the sweep, where index freshness cannot be assumed."""
    body = kube.get("FineTuningJob", namespace, name)
    if body is None:
        return None
    selector = f"{naming.LABEL_JOB_UID}={body['metadata']['uid']}"
    training = kube.list("Job", namespace, f"{naming.LABEL_COMPONENT}={TRAINING}")
    return assemble(
        body,
        workloads=kube.list("Job", namespace, selector),
        pods=kube.list("Pod", namespace, selector),
        pvcs=kube.list("PersistentVolumeClaim", namespace, selector),
        model_versions=kube.list("ModelVersion", namespace, f"{naming.LABEL_MODEL}={model_name(body)}"),
        active_training_uids=[str(w["metadata"]["labels"].get(naming.LABEL_JOB_UID)) for w in training if is_active(w)],
        kueue_workloads=lambda job_uid: _kueue_workloads(kube, namespace, job_uid),
    )


def _kueue_workloads(kube: Kube, namespace: str, job_uid: str) -> list[Obj]:
    try:
        return list(kube.list("Workload", namespace, f"{KUEUE_JOB_UID_LABEL}={job_uid}"))
    except ApiError as error:
        if error.status in (403, 404):  # Kueue is not installed, or the operator may not read its Workloads
            return []
        raise
