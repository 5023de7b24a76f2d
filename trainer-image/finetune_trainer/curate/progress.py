"""Curation progress in the job's status, so a 10 GB curation does not look stuck (docs/runtime-contract.md).

The number of records is known only at the end, the size of the source files at the start: the status
shows the records read so far, and the share of the source bytes read gives the percentage and the estimate
of the time left. Reports go through the trainer's Reporter (throttled, load-adaptive, from a background
thread so reading never waits on the API server) with the job's own identity, which may patch only that
job's status; outside a cluster they are only logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from finetune_trainer import report
from finetune_trainer.background import BackgroundSend, run_write
from finetune_trainer.curate.sources import SourceStats

STAGE_CURATING = "Curating"


def status_patch(
    *, records: int, bytes_read: int, total_bytes: int, elapsed: float, now: datetime
) -> dict[str, object]:
    percent = report.percent(bytes_read, total_bytes)
    remaining = None
    if 0 < bytes_read <= total_bytes and elapsed > 0:
        remaining = round(elapsed * (total_bytes - bytes_read) / bytes_read)
    progress: dict[str, object] = {
        "stage": STAGE_CURATING,
        "recordsRead": records,
        "sourceBytesRead": bytes_read,
        "sourceBytes": total_bytes,
        "percent": percent,
        "estimatedSecondsRemaining": remaining,
        "updatedAt": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return {"status": {"progress": progress}}


class CurationProgress:
    """Called by the Curator after each consumed block with the records read so far; reports when due."""

    def __init__(
        self,
        reporter: report.Reporter,
        sources: Sequence[SourceStats],
        total_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reporter = reporter
        self.sources = sources
        self.total_bytes = total_bytes
        self.clock = clock
        self.started = clock()

    def __call__(self, records: int, force: bool = False) -> None:
        now = self.clock()
        reporter = self.reporter
        if not force and not report.is_due(
            now, reporter.last_sent, reporter.last_stage, STAGE_CURATING, reporter.interval
        ):
            return  # the common case, per block: no sum over the sources, no patch built
        bytes_read = sum(stats.bytes for stats in self.sources)
        patch = status_patch(
            records=records,
            bytes_read=bytes_read,
            total_bytes=self.total_bytes,
            elapsed=now - self.started,
            now=datetime.now(UTC),
        )
        reporter.report(patch, STAGE_CURATING, now, force=force)

    def finish(self, records: int) -> None:
        """The final figures (every byte read), out before the process ends (bounded wait)."""
        self(records, force=True)
        if isinstance(self.reporter.handoff, BackgroundSend):
            self.reporter.handoff.flush(2 * report.REQUEST_TIMEOUT_SECONDS)


def in_background(reporter: report.Reporter) -> report.Reporter:
    reporter.handoff = BackgroundSend(run_write)
    return reporter
