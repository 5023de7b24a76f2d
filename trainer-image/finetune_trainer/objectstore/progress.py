"""Download progress: JSON lines in the pod's log and, in a job's pods, the job's status (stage `Downloading`).

A 140 GB base model or a month of sessions takes a while to arrive; the status shows the bytes so far, their share
of the total and the time left at the pace so far, the way curation shows its progress. Bytes a retried pod finds
already downloaded count as downloaded (the percentage is of the folder, not of this pod's transfer), but not
towards the pace. Status reports go through the trainer's Reporter (throttled, load-adaptive, from a background
thread, with the job's own identity, which may patch only that job's `status.progress`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from finetune_trainer import report
from finetune_trainer.stageprogress import StageProgress, seconds_left, stage_patch

STAGE_DOWNLOADING = "Downloading"
LOG_SECONDS = 5.0


def log_event(name: str, **fields: Any) -> None:
    """One JSON line on stderr (stdout carries each entrypoint's result line)."""
    print(json.dumps({"event": name, **fields}), file=sys.stderr, flush=True)


def status_patch(
    *, source: str, done: int, total: int, transferred: int, elapsed: float, now: datetime
) -> dict[str, object]:
    """`transferred` of the `done` bytes came over the network in `elapsed` seconds: the pace of the rest."""
    return stage_patch(
        STAGE_DOWNLOADING,
        {"downloading": source, "downloadedBytes": done, "downloadBytes": total},
        percent=report.percent(done, total) if total else 100,
        seconds_left=seconds_left(elapsed=elapsed, done=done, total=total, paced=transferred),
        now=now,
    )


class DownloadProgress:
    """Handed to the download: `__call__` with each piece's size as it arrives, `present` with the size of what an
    earlier attempt left; logs at most every LOG_SECONDS and reports to the status when the reporter is due."""

    def __init__(
        self,
        uri: str,
        source: str,
        total: int,
        reporter: report.Reporter | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uri, self.source, self.total, self.clock = uri, source, total, clock
        self.reports = None if reporter is None else StageProgress(reporter, STAGE_DOWNLOADING)
        self.transferred = 0
        self.already = 0
        self.started = self.logged = clock()

    @property
    def done(self) -> int:
        return self.transferred + self.already

    def present(self, count: int) -> None:
        self.already += count

    def __call__(self, count: int) -> None:
        self.transferred += count
        now = self.clock()
        if now - self.logged >= LOG_SECONDS:
            self.logged = now
            self.log()
        if self.reports is not None:
            self.reports(now, lambda: self.patch(now))

    def log(self) -> None:
        percent = report.percent(self.done, self.total) if self.total else 100
        log_event("download_progress", uri=self.uri, bytes=self.done, totalBytes=self.total, percent=percent)

    def patch(self, now: float) -> dict[str, object]:
        return status_patch(
            source=self.source,
            done=self.done,
            total=self.total,
            transferred=self.transferred,
            elapsed=now - self.started,
            now=datetime.now(UTC),
        )

    def finish(self) -> None:
        """The final figures, in the log and out to the status before the next stage reports (bounded wait)."""
        self.log()
        if self.reports is not None:
            now = self.clock()
            self.reports.finish(now, lambda: self.patch(now))
