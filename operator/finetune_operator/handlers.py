"""Kopf wiring: watch FineTuningJobs and their children, reconcile on every relevant change.

Only `on.event` handlers and indexes are used: no change-detection handlers, timers or daemons, so Kopf adds no
finalizers and no bookkeeping annotations (deleting a job never waits for the operator, and each job costs few
API writes). Children are watched by the `finetune.dev/job-uid` label; an event on any of them reconciles the
parent from the in-memory indexes. Time-based transitions (a dataset source that never appears, TTL after
finished) are handled by a sweep that re-reads everything fresh from the API before acting.
"""

from __future__ import annotations

import asyncio
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
    """Process-wide state of the operator: the reconciler and the per-job serialisation."""

    def __init__(self, reconciler: Reconciler, settings: Settings, priority: int = 0) -> None:
        self.reconciler = reconciler
        self.settings = settings
        self.priority = priority  # this replica's Kopf peering priority
        self.jobs: dict[str, JobSummary] = {}  # uid -> latest summary, for the sweep and the phase gauge
        # The job as our own last status write returned it: newer than the watch index until the watch
        # event arrives, so a burst of events does not recompute (and re-post) the same transition.
        self.written: dict[str, Mapping[str, Any]] = {}
        self._running: dict[str, asyncio.Event] = {}
        self._dirty: set[str] = set()

    async def run_once_at_a_time(self, uid: str, reconcile: Any) -> None:
        """Serialise reconciliations of one job and coalesce bursts of events into one extra run."""
        if uid in self._running:
            self._dirty.add(uid)
            return
        self._running[uid] = asyncio.Event()
        try:
            while True:
                self._dirty.discard(uid)
                await reconcile()
                if uid not in self._dirty:
                    break
        finally:
            self._running.pop(uid).set()


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
    body = bodies[-1]
    written = _runtime().written.get(uid)
    if written is not None and _resource_version(written) > _resource_version(body):
        body = written
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


async def _reconcile(uid: str, make_view: Callable[[], JobView | None], fresh: bool = False) -> None:
    """Reconcile one job; `fresh` views do blocking reads, so they are built in a worker thread."""
    runtime = _runtime()

    async def once() -> None:
        view = await asyncio.to_thread(make_view) if fresh else make_view()
        if view is None:
            return
        with metrics.RECONCILE_DURATION.time():
            try:
                outcome = await asyncio.to_thread(runtime.reconciler.reconcile, view)
            except Exception:
                metrics.RECONCILE_ERRORS.inc()
                log.exception("reconciling %s/%s failed; the next event retries", view.namespace, view.name)
                return
        if outcome.written is not None:
            runtime.written[uid] = _plain(outcome.written)
        _report(view, outcome)

    await runtime.run_once_at_a_time(uid, once)


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
        runtime.jobs.pop(uid, None)
        runtime.written.pop(uid, None)
        return
    runtime.jobs[uid] = JobSummary.of(body)
    await _reconcile(uid, lambda: view_from_indexes(uid, kwargs))


@kopf.on.event("batch", "v1", "jobs", labels=CHILDREN)
@kopf.on.event("", "v1", "pods", labels=CHILDREN)
@kopf.on.event("", "v1", "persistentvolumeclaims", labels=CHILDREN)
async def child_event(labels: Mapping[str, str], **kwargs: Any) -> None:
    uid = labels[naming.LABEL_JOB_UID]
    if uid in _runtime().jobs:
        await _reconcile(uid, lambda: view_from_indexes(uid, kwargs))


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
            await _reconcile(uid, lambda j=job: view_from_api(kube, j.namespace, j.name), fresh=True)  # type: ignore[misc]
    for phase, count in phase_counts(runtime.jobs.values()).items():
        metrics.JOBS.labels(phase).set(count)


async def sweep_forever(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(runtime.settings.sweep_seconds)
        try:
            await sweep_once(runtime)
        except Exception:
            log.exception("sweep failed; retrying in %ss", runtime.settings.sweep_seconds)
