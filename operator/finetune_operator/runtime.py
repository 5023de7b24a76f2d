"""Process-wide state of the operator: the reconciler, the reconcile queue, and what the watches told.

The Kopf handlers only queue work here (`Runtime.enqueue`); a backlog holds job uids, never event bodies, and
one job is never reconciled twice at once (`workqueue`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from finetune_operator import epochs, metrics, pacing, rfc3339
from finetune_operator.api import Phase
from finetune_operator.config import Settings
from finetune_operator.kube import ApiError, event_for
from finetune_operator.reconciler import JobView, Outcome, Reconciler
from finetune_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)
RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 300.0


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


def plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the reconciler reads of an object. Without metadata.managedFields: never read, about half of every
    object, and ~70 MB of the indexes at 1,000 jobs (bench/scale/run.py)."""
    kept = {key: body[key] for key in ("metadata", "spec", "status") if key in body}
    if "metadata" in kept:
        kept["metadata"] = {k: v for k, v in kept["metadata"].items() if k != "managedFields"}
    return kept


def resource_version(body: Mapping[str, Any] | None) -> int:
    try:
        return int((body or {}).get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def fingerprint(body: Mapping[str, Any]) -> str:
    """What the reconciler reads of a job's own object: spec (by generation), deletion and status, of
    `progress` only the stage; not the trainer's live numbers, which change every few seconds."""
    metadata = body.get("metadata") or {}
    status = dict(body.get("status") or {})
    status.pop("metrics", None)
    status["progress"] = (status.get("progress") or {}).get("stage")
    text = json.dumps(
        [metadata.get("generation"), metadata.get("deletionTimestamp"), status], sort_keys=True, default=str
    )
    # A digest, not the text: one copy of every job's status is enough (runtime memory per job).
    return hashlib.sha256(text.encode()).hexdigest()


class Runtime:
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
        self.pacer = pacing.Pacer(reconciler.kube)  # the trainers' report interval, published by the sweep
        self.epochs = epochs.EpochEvents()
        self.failures: dict[str, int] = {}  # uid -> consecutive failed reconciliations, for the retry back-off

    def caught_up(self, uid: str, body: Mapping[str, Any]) -> bool:
        """Drop our written copy of the job once the watch has it (`body` as new or newer): one copy is enough.
        True when `body` is that very write coming back."""
        written = self.written.get(uid)
        if written is None or resource_version(written) > resource_version(body):
            return False
        del self.written[uid]
        return resource_version(written) == resource_version(body)

    def forget(self, uid: str) -> None:
        self.failures.pop(uid, None)
        self.epochs.forget(uid)
        self.jobs.pop(uid, None)
        self.fingerprints.pop(uid, None)
        self.written.pop(uid, None)

    async def note_progress(self, uid: str, body: Mapping[str, Any]) -> None:
        """Posts the Event of an epoch the trainer's latest report finished, if any (best effort)."""
        message = self.epochs.observe(uid, body)
        if message is None:
            return
        now = self.reconciler.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            await asyncio.to_thread(self.reconciler.kube.post, event_for(body, "Normal", epochs.REASON, message, now))
        except ApiError as error:
            log.warning("could not post %s on %s: %s", epochs.REASON, body["metadata"].get("name"), error)

    def enqueue(
        self, uid: str, make_view: Callable[[], JobView | None], fresh: bool = False, urgent: bool = False
    ) -> None:
        """Queue one reconciliation of a job; `fresh` views do blocking reads, so they are built in a thread;
        `urgent` ones (a job not acted on yet) go first."""

        async def once() -> None:
            metrics.QUEUE_DEPTH.set(len(self.queue))
            view = await asyncio.to_thread(make_view) if fresh else make_view()
            if view is None:
                return
            with metrics.RECONCILE_DURATION.time():
                try:
                    outcome = await asyncio.to_thread(self.reconciler.reconcile, view)
                except Exception:
                    metrics.RECONCILE_ERRORS.inc()
                    # The next event on the job must retry, even one that changes nothing the reconciler reads.
                    self.fingerprints.pop(uid, None)
                    delay = self._retry_later(uid, make_view, fresh)
                    log.exception("reconciling %s/%s failed; retrying in %.0f s", view.namespace, view.name, delay)
                    return
            self.failures.pop(uid, None)
            if outcome.written is not None:
                self.written[uid] = plain(outcome.written)
            self.report(view, outcome)

        self.queue.add(uid, once, urgent=urgent)
        metrics.QUEUE_DEPTH.set(len(self.queue))

    def _retry_later(self, uid: str, make_view: Callable[[], JobView | None], fresh: bool) -> float:
        """Retry a failed reconciliation by itself, backing off exponentially (1 s doubling to 5 min): a job whose
        only event failed (a refused write, an API server restart) would otherwise wait for an unrelated event."""
        failures = self.failures[uid] = self.failures.get(uid, 0) + 1
        delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2.0 ** (failures - 1))
        asyncio.get_running_loop().call_later(delay, self.enqueue, uid, make_view, fresh)
        return delay

    def enqueue_model(self, namespace: str, model_name: str) -> None:
        """Queue one sync of a RegisteredModel's status and its versions' alias annotations."""

        async def once() -> None:
            try:
                await asyncio.to_thread(self.reconciler.registrar.sync, namespace, model_name)
            except Exception:
                metrics.RECONCILE_ERRORS.inc()
                log.exception("syncing RegisteredModel %s/%s failed; its next event retries", namespace, model_name)

        self.queue.add(f"model/{namespace}/{model_name}", once)

    def report(self, view: JobView, outcome: Outcome) -> None:
        if outcome.created:
            log.info("%s/%s: created %s", view.namespace, view.name, ", ".join(outcome.created))
        if outcome.registered:
            metrics.MODEL_VERSIONS.inc()
        if outcome.previous_phase == outcome.phase:
            return
        metrics.TRANSITIONS.labels(outcome.previous_phase or "New", outcome.phase).inc()
        if outcome.phase == Phase.RUNNING.value:
            created = rfc3339.parse(view.body["metadata"].get("creationTimestamp"))
            if created is not None:
                elapsed = self.reconciler.clock() - created
                metrics.TIME_TO_RUNNING.observe(max(elapsed.total_seconds(), 0.0))
        log.info("%s/%s: %s -> %s", view.namespace, view.name, outcome.previous_phase, outcome.phase)


_CURRENT: Runtime | None = None


def install(runtime: Runtime) -> None:
    global _CURRENT
    _CURRENT = runtime


def current() -> Runtime:
    assert _CURRENT is not None, "finetune_operator.runtime.install() was not called"
    return _CURRENT
