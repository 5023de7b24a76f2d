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
from finetune_trainer.curate.sources import SourceStats
from finetune_trainer.stageprogress import StageProgress, seconds_left, stage_patch

STAGE_CURATING = "Curating"


def status_patch(
    *, records: int, bytes_read: int, total_bytes: int, elapsed: float, now: datetime
) -> dict[str, object]:
    figures = {"recordsRead": records, "sourceBytesRead": bytes_read, "sourceBytes": total_bytes}
    return stage_patch(
        STAGE_CURATING,
        figures,
        percent=report.percent(bytes_read, total_bytes),
        seconds_left=seconds_left(elapsed=elapsed, done=bytes_read, total=total_bytes, paced=bytes_read),
        now=now,
    )


class CurationProgress:
    """Called by the Curator after each consumed block with the records read so far; reports when due."""

    def __init__(
        self,
        reporter: report.Reporter,
        sources: Sequence[SourceStats],
        total_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reports = StageProgress(reporter, STAGE_CURATING)
        self.sources = sources
        self.total_bytes = total_bytes
        self.clock = clock
        self.started = clock()

    def __call__(self, records: int) -> None:
        now = self.clock()
        self.reports(now, lambda: self.patch(records, now))

    def finish(self, records: int) -> None:
        """The final figures (every byte read), out before the process ends (bounded wait)."""
        now = self.clock()
        self.reports.finish(now, lambda: self.patch(records, now))

    def patch(self, records: int, now: float) -> dict[str, object]:
        return status_patch(
            records=records,
            bytes_read=sum(stats.bytes for stats in self.sources),
            total_bytes=self.total_bytes,
            elapsed=now - self.started,
            now=datetime.now(UTC),
        )
