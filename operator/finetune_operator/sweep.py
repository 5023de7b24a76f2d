"""Time-based work the watches cannot trigger: TTL after a job finished, a dataset source or model store that does
not exist yet (the job waits for it; the source's wait has a deadline), a queued training Job no Kueue acts on.

Candidates come from the watch summaries; every decision is taken from fresh reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime

from finetune_operator import metrics, pacing, rfc3339, views
from finetune_operator.api import Phase, Reason
from finetune_operator.config import Settings
from finetune_operator.kube import ApiError
from finetune_operator.lifecycle import TERMINAL_PHASES
from finetune_operator.peering import outranked
from finetune_operator.runtime import JobSummary, Runtime

log = logging.getLogger(__name__)

TERMINAL = {p.value for p in TERMINAL_PHASES}
# Jobs waiting for something that is not theirs (no watch event tells when it appears, frees up or goes away):
# re-read from the API every sweep.
WAITING_FOR_AN_OBJECT = frozenset({"SourceNotFound", "ModelStoreNotFound", "QuotaExceeded", "NameCollision"})
# Jobs whose workload is starting: a refusal of its pods is an Event, which no watch delivers. Reconciled from the
# watch indexes (no reads), so the only call is the Events list of a workload that still has no pods.
STARTING = frozenset({"CurationStarting", "TrainingStarting"})
# Jobs waiting for Kueue to admit their training Job: one that never got a Kueue Workload (Kueue not installed or
# not running) is told so after a while, which no event signals. Re-decided from the indexes, and only the jobs
# whose training Job has no Workload there, so a Kueue-queued backlog costs no reads and few reconciliations.
WAITING_FOR_KUEUE = "WaitingForAdmission"


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


def ttl_expired(job: JobSummary, now: datetime) -> bool:
    """Whether a finished job's ttlSecondsAfterFinished has run out. A completionTime that does not parse, or a
    TTL that ends after year 9999, never expires (and never raises); nor does a job whose model copy failed."""
    ttl = job.ttl_seconds
    if job.phase not in TERMINAL or not isinstance(ttl, int) or isinstance(ttl, bool):
        return False
    if job.reason == Reason.MODEL_COPY_FAILED.value:
        return False  # its model exists only in the workspace, which the job's deletion may take with it
    finished = rfc3339.parse(job.completion_time)
    deadline = rfc3339.after(finished, ttl) if finished else None
    return deadline is not None and deadline <= now


async def _sweep_job(runtime: Runtime, uid: str, job: JobSummary, now: datetime) -> None:
    kube = runtime.reconciler.kube
    if ttl_expired(job, now):
        log.info("%s/%s: ttlSecondsAfterFinished elapsed; deleting the job", job.namespace, job.name)
        await asyncio.to_thread(kube.delete, "FineTuningJob", job.namespace, job.name)
    elif job.phase not in TERMINAL and job.reason in WAITING_FOR_AN_OBJECT:
        runtime.enqueue(uid, lambda: views.from_api(kube, job.namespace, job.name), fresh=True)
    elif _redecided_from_indexes(uid, job, runtime):
        runtime.enqueue(uid, lambda: views.from_indexes(uid, runtime))


def _redecided_from_indexes(uid: str, job: JobSummary, runtime: Runtime) -> bool:
    if job.phase in TERMINAL:
        return False
    return job.reason in STARTING or (job.reason == WAITING_FOR_KUEUE and views.lacks_kueue_workload(uid, runtime))


async def sweep_once(runtime: Runtime) -> None:
    now = runtime.reconciler.clock()
    if await asyncio.to_thread(_paused, runtime):
        return
    for uid, job in list(runtime.jobs.items()):
        # One job's failure (an API error, a value no check foresaw) must not starve the jobs after it.
        try:
            await _sweep_job(runtime, uid, job, now)
        except Exception:
            log.exception("%s/%s: sweep failed for this job; the next sweep retries it", job.namespace, job.name)
    for phase, count in phase_counts(runtime.jobs.values()).items():
        metrics.JOBS.labels(phase).set(count)
    reporting = pacing.reporting_by_namespace((job.namespace, job.phase) for job in runtime.jobs.values())
    await asyncio.to_thread(runtime.pacer.publish, reporting)


async def sweep_forever(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(runtime.settings.sweep_seconds)
        try:
            await sweep_once(runtime)
        except Exception:
            log.exception("sweep failed; retrying in %ss", runtime.settings.sweep_seconds)
