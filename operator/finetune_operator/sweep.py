"""Time-based work the watches cannot trigger: TTL after a job finished, a dataset source that never appears.

Candidates come from the watch summaries; every decision is taken from fresh reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import timedelta

from finetune_operator import metrics, pacing, views
from finetune_operator.api import Phase
from finetune_operator.config import Settings
from finetune_operator.kube import ApiError
from finetune_operator.lifecycle import TERMINAL_PHASES
from finetune_operator.peering import outranked
from finetune_operator.reconciler import parse_time
from finetune_operator.runtime import JobSummary, Runtime

log = logging.getLogger(__name__)

TERMINAL = {p.value for p in TERMINAL_PHASES}


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
            runtime.enqueue(uid, lambda j=job: views.from_api(kube, j.namespace, j.name), fresh=True)  # type: ignore[misc]
    for phase, count in phase_counts(runtime.jobs.values()).items():
        metrics.JOBS.labels(phase).set(count)
    running = pacing.running_by_namespace((job.namespace, job.phase) for job in runtime.jobs.values())
    await asyncio.to_thread(runtime.pacer.publish, running)


async def sweep_forever(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(runtime.settings.sweep_seconds)
        try:
            await sweep_once(runtime)
        except Exception:
            log.exception("sweep failed; retrying in %ss", runtime.settings.sweep_seconds)
