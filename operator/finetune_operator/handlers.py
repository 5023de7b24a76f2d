"""Kopf wiring: watch FineTuningJobs and their children, reconcile on every relevant change.

Only `on.event` handlers and indexes are used: no change-detection handlers, timers or daemons, so Kopf adds no
finalizers and no bookkeeping annotations (deleting a job never waits for the operator, and each job costs few
API writes). Children are watched by the `finetune.dev/job-uid` label; an event on any of them reconciles the
parent from the in-memory indexes. Time-based transitions (a dataset source that never appears, TTL after
finished) are handled by a sweep that re-reads everything fresh from the API before acting.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import kopf

from finetune_operator import metrics, naming
from finetune_operator.api import GROUP, VERSION, Phase
from finetune_operator.api.finetuningjob import PLURAL
from finetune_operator.config import Settings
from finetune_operator.kube import ApiError, Kube
from finetune_operator.lifecycle import TERMINAL_PHASES
from finetune_operator.peering import outranked
from finetune_operator.reconciler import JobView, Outcome, Reconciler, parse_time
from finetune_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)

FTJ = (GROUP, VERSION, PLURAL)
MV = (GROUP, VERSION, "modelversions")
CHILDREN = {naming.LABEL_JOB_UID: kopf.PRESENT}
TERMINAL = {p.value for p in TERMINAL_PHASES}


@dataclass(frozen=True)
class JobSummary:
    """What the sweep needs to know of a job, kept from its latest watch event."""

    namespace: str
    name: str
    phase: str | None
    reason: str | None
    completion_time: str | None
    ttl_seconds: int | None

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> JobSummary:
        status = body.get("status") or {}
        run_policy = (body.get("spec") or {}).get("runPolicy") or {}
        return cls(
            namespace=body["metadata"]["namespace"],
            name=body["metadata"]["name"],
            phase=status.get("phase"),
            reason=status.get("reason"),
            completion_time=status.get("completionTime"),
            ttl_seconds=run_policy.get("ttlSecondsAfterFinished"),
        )


class Runtime:
    """Process-wide state of the operator: the reconciler, the reconcile queue and what the watches told."""

    def __init__(self, reconciler: Reconciler, settings: Settings, priority: int = 0) -> None:
        self.reconciler = reconciler
        self.settings = settings
        self.priority = priority  # this replica's Kopf peering priority
        self.queue: WorkQueue[str] = WorkQueue(settings.reconcile_workers, settings.reconcile_delay_ms / 1000)
        self.indexes: Mapping[str, Any] = {}  # Kopf's index objects (the same ones on every call), by name
        self.jobs: dict[str, JobSummary] = {}  # uid -> latest summary, for the sweep and the phase gauge
        # What of each job's latest watch event the reconciler reads: events that change nothing of it (the
        # trainer's progress reports, our own status write echoed) queue no reconciliation.
        self.fingerprints: dict[str, str] = {}
        # The job as our own last status write returned it: newer than the watch index until the watch
        # event arrives, so a burst of events does not recompute (and re-post) the same transition.
        self.written: dict[str, Mapping[str, Any]] = {}

    def caught_up(self, uid: str, body: Mapping[str, Any]) -> bool:
        """Drop our written copy of the job once the watch has it (`body` as new or newer): one copy is enough.
        True when `body` is that very write coming back."""
        written = self.written.get(uid)
        if written is None or _resource_version(written) > _resource_version(body):
            return False
        del self.written[uid]
        return _resource_version(written) == _resource_version(body)

    def forget(self, uid: str) -> None:
        self.jobs.pop(uid, None)
        self.fingerprints.pop(uid, None)
        self.written.pop(uid, None)


RUNTIME: Runtime | None = None


def install(runtime: Runtime) -> None:
    global RUNTIME
    RUNTIME = runtime


def _runtime() -> Runtime:
    assert RUNTIME is not None, "finetune_operator.handlers.install() was not called"
    return RUNTIME


# ------------------------------------------------------------------------------------------ indexes


def _plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the reconciler reads of an object. Without metadata.managedFields: never read, about half of every
    object, and ~70 MB of the indexes at 1,000 jobs (bench/scale/run.py)."""
    plain = {key: body[key] for key in ("metadata", "spec", "status") if key in body}
    if "metadata" in plain:
        plain["metadata"] = {k: v for k, v in plain["metadata"].items() if k != "managedFields"}
    return plain


@kopf.index(*FTJ)
def ftj_by_uid(body: kopf.Body, uid: str, **_: Any) -> dict[str, Any]:
    return {uid: _plain(body)}


@kopf.index("batch", "v1", "jobs", labels=CHILDREN)
def workloads_by_uid(body: kopf.Body, labels: Mapping[str, str], **_: Any) -> dict[str, Any]:
    # Of a batch Job's spec the reconciler reads `suspend` only; the pod template is most of the rest.
    workload = _plain(body)
    spec = workload.get("spec") or {}
    workload["spec"] = {"suspend": spec["suspend"]} if "suspend" in spec else {}
    return {labels[naming.LABEL_JOB_UID]: workload}


@kopf.index("batch", "v1", "jobs", labels={naming.LABEL_COMPONENT: "training", naming.LABEL_JOB_UID: kopf.PRESENT})
def active_training_by_namespace(
    body: kopf.Body, namespace: str | None, labels: Mapping[str, str], **_: Any
) -> dict[str | None, str] | None:
    return {namespace: labels[naming.LABEL_JOB_UID]} if _is_active(body) else None


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
    return {labels[naming.LABEL_JOB_UID]: _plain(body)}


@kopf.index(*MV)
def model_versions_by_model(body: kopf.Body, namespace: str | None, **_: Any) -> dict[tuple[str | None, str], Any]:
    return {(namespace, str((body.get("spec") or {}).get("modelName"))): _plain(body)}


def _values(index: kopf.Index[Any, Any], key: Any) -> list[Any]:
    try:
        return list(index[key])
    except KeyError:
        return []


def _resource_version(body: Mapping[str, Any] | None) -> int:
    try:
        return int((body or {}).get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def view_from_indexes(uid: str, indexes: Mapping[str, Any]) -> JobView | None:
    bodies = _values(indexes["ftj_by_uid"], uid)
    if not bodies:
        return None
    runtime = _runtime()
    runtime.caught_up(uid, bodies[-1])
    body = runtime.written.get(uid, bodies[-1])  # our own write, while it is newer than the index
    view = JobView(body=body)
    for workload in _values(indexes["workloads_by_uid"], uid):
        view.workloads[_component(workload)] = workload
    for pod in _values(indexes["pods_by_uid"], uid):
        view.pods.setdefault(_component(pod), []).append(pod)
    pvcs = _values(indexes["pvcs_by_uid"], uid)
    view.pvc = pvcs[-1] if pvcs else None
    namespace = body["metadata"]["namespace"]
    model = str(((body.get("spec") or {}).get("output") or {}).get("modelName"))
    view.model_versions = _values(indexes["model_versions_by_model"], (namespace, model))
    active = _values(indexes["active_training_by_namespace"], namespace)
    view.active_training_elsewhere = len([u for u in active if u != uid])
    return view


def view_from_api(kube: Kube, namespace: str, name: str) -> JobView | None:
    """The same view from fresh reads: used by the sweep, where index freshness cannot be assumed."""
    body = kube.get("FineTuningJob", namespace, name)
    if body is None:
        return None
    uid = body["metadata"]["uid"]
    selector = f"{naming.LABEL_JOB_UID}={uid}"
    view = JobView(body=body)
    for workload in kube.list("Job", namespace, selector):
        view.workloads[_component(workload)] = workload
    for pod in kube.list("Pod", namespace, selector):
        view.pods.setdefault(_component(pod), []).append(pod)
    pvcs = kube.list("PersistentVolumeClaim", namespace, selector)
    view.pvc = pvcs[0] if pvcs else None
    model = str(((body.get("spec") or {}).get("output") or {}).get("modelName"))
    view.model_versions = kube.list("ModelVersion", namespace, f"{naming.LABEL_MODEL}={model}")
    training = kube.list("Job", namespace, f"{naming.LABEL_COMPONENT}=training")
    view.active_training_elsewhere = len(
        [w for w in training if _is_active(w) and w["metadata"]["labels"].get(naming.LABEL_JOB_UID) != uid]
    )
    return view


def _component(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"].get("labels", {}).get(naming.LABEL_COMPONENT, ""))


def _is_active(workload: Mapping[str, Any]) -> bool:
    conditions = (workload.get("status") or {}).get("conditions") or []
    return not any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


# ------------------------------------------------------------------------------------------ reconcile


INDEXES = (
    "ftj_by_uid",
    "workloads_by_uid",
    "active_training_by_namespace",
    "pods_by_uid",
    "pvcs_by_uid",
    "model_versions_by_model",
)


def _remember_indexes(kwargs: Mapping[str, Any]) -> None:
    # Kopf passes its index objects to every handler; keep them, not the event (its body would stay alive
    # for as long as the job waits in the queue).
    runtime = _runtime()
    if not runtime.indexes:
        runtime.indexes = {name: kwargs[name] for name in INDEXES}


def enqueue(uid: str, make_view: Callable[[], JobView | None], fresh: bool = False, urgent: bool = False) -> None:
    """Queue one reconciliation of a job; `fresh` views do blocking reads, so they are built in a thread;
    `urgent` ones (a job not acted on yet) go first."""
    runtime = _runtime()

    async def once() -> None:
        metrics.QUEUE_DEPTH.set(len(runtime.queue))
        view = await asyncio.to_thread(make_view) if fresh else make_view()
        if view is None:
            return
        with metrics.RECONCILE_DURATION.time():
            try:
                outcome = await asyncio.to_thread(runtime.reconciler.reconcile, view)
            except Exception:
                metrics.RECONCILE_ERRORS.inc()
                # The next event on the job must retry, even one that changes nothing the reconciler reads.
                runtime.fingerprints.pop(uid, None)
                log.exception("reconciling %s/%s failed; the next event retries", view.namespace, view.name)
                return
        if outcome.written is not None:
            runtime.written[uid] = _plain(outcome.written)
        _report(view, outcome)

    runtime.queue.add(uid, once, urgent=urgent)
    metrics.QUEUE_DEPTH.set(len(runtime.queue))


def _from_indexes(uid: str) -> Callable[[], JobView | None]:
    return lambda: view_from_indexes(uid, _runtime().indexes)


def fingerprint(body: Mapping[str, Any]) -> str:
    """What the reconciler reads of a job's own object: spec (by generation), deletion and status, of
    `progress` only the stage; not the trainer's live numbers, which change every few seconds."""
    metadata = body.get("metadata") or {}
    status = dict(body.get("status") or {})
    status.pop("metrics", None)
    status["progress"] = (status.get("progress") or {}).get("stage")
    return json.dumps(
        [metadata.get("generation"), metadata.get("deletionTimestamp"), status], sort_keys=True, default=str
    )


def _report(view: JobView, outcome: Outcome) -> None:
    if outcome.created:
        log.info("%s/%s: created %s", view.namespace, view.name, ", ".join(outcome.created))
    if outcome.registered:
        metrics.MODEL_VERSIONS.inc()
    if outcome.previous_phase != outcome.phase:
        metrics.TRANSITIONS.labels(outcome.previous_phase or "New", outcome.phase).inc()
        if outcome.phase == Phase.RUNNING.value:
            created = parse_time(view.body["metadata"].get("creationTimestamp"))
            if created is not None:
                elapsed = runtime_now() - created
                metrics.TIME_TO_RUNNING.observe(max(elapsed.total_seconds(), 0.0))
        log.info("%s/%s: %s -> %s", view.namespace, view.name, outcome.previous_phase, outcome.phase)


def runtime_now() -> Any:
    return _runtime().reconciler.clock()


@kopf.on.event(*FTJ)
async def job_event(type: str, uid: str, body: kopf.Body, **kwargs: Any) -> None:
    runtime = _runtime()
    if type == "DELETED":
        runtime.forget(uid)
        return
    _remember_indexes(kwargs)
    runtime.jobs[uid] = JobSummary.of(body)
    seen = fingerprint(body)
    if runtime.fingerprints.get(uid) == seen:
        return
    runtime.fingerprints[uid] = seen
    if runtime.caught_up(uid, body):
        return  # our own status write coming back: computed from what the indexes held, nothing new
    enqueue(uid, _from_indexes(uid), urgent=not (body.get("status") or {}).get("phase"))


@kopf.on.event("batch", "v1", "jobs", labels=CHILDREN)
@kopf.on.event("", "v1", "pods", labels=CHILDREN)
@kopf.on.event("", "v1", "persistentvolumeclaims", labels=CHILDREN)
async def child_event(labels: Mapping[str, str], **kwargs: Any) -> None:
    uid = labels[naming.LABEL_JOB_UID]
    if uid in _runtime().jobs:
        _remember_indexes(kwargs)
        enqueue(uid, _from_indexes(uid))


# ------------------------------------------------------------------------------------------ the sweep


def phase_counts(summaries: Iterable[JobSummary]) -> dict[str, int]:
    counts = {phase.value: 0 for phase in Phase}
    for summary in summaries:
        phase = summary.phase or Phase.PENDING.value
        counts[phase] = counts.get(phase, 0) + 1
    return counts


def _peering_path(settings: Settings) -> str:
    if settings.namespaces:
        return f"/apis/kopf.dev/v1/namespaces/{settings.namespaces[0]}/kopfpeerings/{settings.peering}"
    return f"/apis/kopf.dev/v1/clusterkopfpeerings/{settings.peering}"


def _paused(runtime: Runtime) -> bool:
    """Whether Kopf paused this replica for a higher-priority peer (no peering object: standalone, active)."""
    try:
        peering = runtime.reconciler.kube.get_path(_peering_path(runtime.settings))
    except ApiError as error:
        if error.status == 403:
            return False
        raise
    peers = (peering or {}).get("status") or {}
    return outranked(peers, runtime.priority, runtime.reconciler.clock())


async def sweep_once(runtime: Runtime) -> None:
    """Time-based work only; candidates come from watch summaries, decisions from fresh reads."""
    kube = runtime.reconciler.kube
    now = runtime.reconciler.clock()
    if await asyncio.to_thread(_paused, runtime):
        return
    for uid, job in list(runtime.jobs.items()):
        finished = parse_time(job.completion_time)
        if job.phase in TERMINAL and job.ttl_seconds is not None and finished:
            if finished + timedelta(seconds=job.ttl_seconds) <= now:
                log.info("%s/%s: ttlSecondsAfterFinished elapsed; deleting the job", job.namespace, job.name)
                await asyncio.to_thread(kube.delete, "FineTuningJob", job.namespace, job.name)
        elif job.phase in (None, Phase.PENDING.value) and job.reason == "SourceNotFound":
            enqueue(uid, lambda j=job: view_from_api(kube, j.namespace, j.name), fresh=True)  # type: ignore[misc]
    for phase, count in phase_counts(runtime.jobs.values()).items():
        metrics.JOBS.labels(phase).set(count)


async def sweep_forever(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(runtime.settings.sweep_seconds)
        try:
            await sweep_once(runtime)
        except Exception:
            log.exception("sweep failed; retrying in %ss", runtime.settings.sweep_seconds)
