"""Kopf wiring: watch FineTuningJobs and their children, queue a reconciliation on every relevant change.

Only `on.event` handlers and indexes are used: no change-detection handlers, timers or daemons, so Kopf adds no
finalizers and no bookkeeping annotations (deleting a job never waits for the operator, and each job costs few
API writes). Children are watched by the `finetune.dev/job-uid` label; an event on any of them reconciles the
parent from the in-memory indexes (`views.from_indexes`). Handlers only queue work (`runtime.Runtime.enqueue`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from finetune_operator import naming, views
from finetune_operator.api import GROUP, VERSION
from finetune_operator.api.finetuningjob import PLURAL
from finetune_operator.backends.batchjob import COMPONENT as TRAINING
from finetune_operator.observe import KUEUE_JOB_UID_LABEL
from finetune_operator.runtime import JobSummary, current, fingerprint, plain

FTJ = (GROUP, VERSION, PLURAL)
MV = (GROUP, VERSION, "modelversions")
RM = (GROUP, VERSION, "registeredmodels")
CHILDREN = {naming.LABEL_JOB_UID: kopf.PRESENT}
# Kueue's Workloads, in whichever version the cluster prefers (both versions carry the same conditions). Without
# Kueue installed Kopf serves nothing for them, and starts to when its CRDs appear.
KUEUE_GROUP, KUEUE_WORKLOADS = "kueue.x-k8s.io", "workloads"
KUEUE_LABELS = {KUEUE_JOB_UID_LABEL: kopf.PRESENT}


@kopf.index(*FTJ)
def ftj_by_uid(body: kopf.Body, uid: str, **_: Any) -> dict[str, Any]:
    return {uid: plain(body)}


@kopf.index("batch", "v1", "jobs", labels=CHILDREN)
def workloads_by_uid(body: kopf.Body, labels: Mapping[str, str], **_: Any) -> dict[str, Any]:
    # Of a batch Job's spec the reconciler reads `suspend` and `parallelism` (the pods a multi-node group must
    # have) only; the pod template is most of the rest.
    workload = plain(body)
    spec = workload.get("spec") or {}
    workload["spec"] = {key: spec[key] for key in ("suspend", "parallelism") if key in spec}
    return {labels[naming.LABEL_JOB_UID]: workload}


@kopf.index("batch", "v1", "jobs", labels={naming.LABEL_COMPONENT: TRAINING, naming.LABEL_JOB_UID: kopf.PRESENT})
def job_of_training_uid(uid: str, labels: Mapping[str, str], **_: Any) -> dict[str, str]:
    """The FineTuningJob of each training Job, by the training Job's UID (Kueue names its Workloads by it)."""
    return {uid: labels[naming.LABEL_JOB_UID]}


@kopf.index(group=KUEUE_GROUP, plural=KUEUE_WORKLOADS, labels=KUEUE_LABELS)
def kueue_workloads_by_job_uid(body: kopf.Body, labels: Mapping[str, str], **_: Any) -> dict[str, Any]:
    # Only the conditions: the rest of a Workload (its pod sets) is large and says nothing about admission.
    conditions = (body.get("status") or {}).get("conditions") or []
    return {labels[KUEUE_JOB_UID_LABEL]: {"status": {"conditions": [dict(c) for c in conditions]}}}


@kopf.index("batch", "v1", "jobs", labels={naming.LABEL_COMPONENT: TRAINING, naming.LABEL_JOB_UID: kopf.PRESENT})
def active_training_by_namespace(
    body: kopf.Body, namespace: str | None, labels: Mapping[str, str], **_: Any
) -> dict[str | None, str] | None:
    return {namespace: labels[naming.LABEL_JOB_UID]} if views.is_active(body) else None


@kopf.index("", "v1", "pods", labels=CHILDREN)
def pods_by_uid(body: kopf.Body, labels: Mapping[str, str], **_: Any) -> dict[str, Any]:
    status = body.get("status") or {}
    return {
        labels[naming.LABEL_JOB_UID]: {
            "metadata": {"name": body["metadata"]["name"], "labels": dict(labels)},
            "status": {
                key: status[key]
                for key in ("phase", "conditions", "containerStatuses", "initContainerStatuses")
                if key in status
            },
        }
    }


@kopf.index("", "v1", "persistentvolumeclaims", labels=CHILDREN)
def pvcs_by_uid(body: kopf.Body, labels: Mapping[str, str], **_: Any) -> dict[str, Any]:
    return {labels[naming.LABEL_JOB_UID]: plain(body)}


@kopf.index(*MV)
def model_versions_by_model(body: kopf.Body, namespace: str | None, **_: Any) -> dict[tuple[str | None, str], Any]:
    return {(namespace, str((body.get("spec") or {}).get("modelName"))): plain(body)}


def _remember_indexes(kwargs: Mapping[str, Any]) -> None:
    # Kopf passes its index objects to every handler; keep them, not the event (its body would stay alive
    # for as long as the job waits in the queue).
    runtime = current()
    if not runtime.indexes:
        runtime.indexes = {name: kwargs[name] for name in views.INDEXES}


def _from_indexes(uid: str) -> Any:
    return lambda: views.from_indexes(uid, current())


@kopf.on.event(*FTJ)
async def job_event(type: str, uid: str, body: kopf.Body, **kwargs: Any) -> None:
    runtime = current()
    if type == "DELETED":
        runtime.forget(uid)
        return
    _remember_indexes(kwargs)
    runtime.jobs[uid] = JobSummary.of(body)
    await runtime.note_progress(uid, body)
    seen = fingerprint(body)
    if runtime.fingerprints.get(uid) == seen:
        return
    runtime.fingerprints[uid] = seen
    if runtime.caught_up(uid, body):
        return  # our own status write coming back: computed from what the indexes held, nothing new
    runtime.enqueue(uid, _from_indexes(uid), urgent=not (body.get("status") or {}).get("phase"))


@kopf.on.event(group=KUEUE_GROUP, plural=KUEUE_WORKLOADS, labels=KUEUE_LABELS)
async def kueue_workload_event(labels: Mapping[str, str], **kwargs: Any) -> None:
    """Kueue admitted, evicted or could not admit a training Job: its job's status says so at once."""
    owners = list(kwargs["job_of_training_uid"].get(labels[KUEUE_JOB_UID_LABEL], []))
    if owners and owners[-1] in current().jobs:
        _remember_indexes(kwargs)
        current().enqueue(owners[-1], _from_indexes(owners[-1]))


@kopf.on.event("batch", "v1", "jobs", labels=CHILDREN)
@kopf.on.event("", "v1", "pods", labels=CHILDREN)
@kopf.on.event("", "v1", "persistentvolumeclaims", labels=CHILDREN)
async def child_event(labels: Mapping[str, str], **kwargs: Any) -> None:
    uid = labels[naming.LABEL_JOB_UID]
    if uid in current().jobs:
        _remember_indexes(kwargs)
        current().enqueue(uid, _from_indexes(uid))


@kopf.on.event(*MV)
async def model_version_event(namespace: str | None, body: kopf.Body, **_: Any) -> None:
    model = (body.get("spec") or {}).get("modelName")
    if namespace and model:
        current().enqueue_model(namespace, str(model))


@kopf.on.event(*RM)
async def registered_model_event(type: str, namespace: str | None, name: str | None, **_: Any) -> None:
    if namespace and name and type != "DELETED":
        current().enqueue_model(namespace, name)
