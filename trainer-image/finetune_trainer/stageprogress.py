"""One stage's progress in the job's status (curation, a download), paced by the job's Reporter.

Both call it per block or per piece, far more often than the Reporter sends: the patch is built only when the
Reporter is due, so the common call costs one comparison. `finish` forces the final figures out and waits a
bounded time for the background write, before the next stage reports or the process ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from finetune_trainer import report
from finetune_trainer.background import BackgroundSend, run_write

Patch = dict[str, object]


def stage_patch(
    stage: str, figures: Mapping[str, object], *, percent: int, seconds_left: int | None, now: datetime
) -> Patch:
    """A `status.progress` merge patch: the stage, its own figures, its percentage, the time left and when."""
    progress: dict[str, object] = {
        "stage": stage,
        **figures,
        "percent": percent,
        "estimatedSecondsRemaining": seconds_left,
        "updatedAt": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return {"status": {"progress": progress}}


def seconds_left(*, elapsed: float, done: int, total: int, paced: int) -> int | None:
    """The rest of `total` at the pace of the `paced` bytes of `done` that took `elapsed` seconds; None before any."""
    if paced > 0 and elapsed > 0 and done <= total:
        return round(elapsed * (total - done) / paced)
    return None


class StageProgress:
    def __init__(self, reporter: report.Reporter, stage: str) -> None:
        self.reporter = reporter
        self.stage = stage

    def __call__(self, now: float, build: Callable[[], Patch]) -> None:
        if not self.reporter.is_due(now, self.stage):
            return  # the common case: no patch built
        self.reporter.report(build(), self.stage, now)

    def finish(self, now: float, build: Callable[[], Patch]) -> None:
        """The stage's final figures; none on a busy cluster, where the operator's status for the finished stage
        (the dataset's summary, the next stage) replaces them (Reporter.report's `final`)."""
        self.reporter.report(build(), self.stage, now, final=True)
        if isinstance(self.reporter.handoff, BackgroundSend):
            self.reporter.handoff.flush(2 * report.REQUEST_TIMEOUT_SECONDS)


def job_reporter(name: str, namespace: str, environ: Mapping[str, str] | None = None) -> report.Reporter:
    """The job's status reporter, writing from a background thread (outside a cluster it only logs)."""
    reporter = report.from_environment(name, namespace, environ)
    send_in_background(reporter)
    return reporter


def send_in_background(reporter: report.Reporter) -> None:
    """From here on, `reporter` writes from a background thread (see `background`), its first report held on a
    busy cluster (Reporter.hold_first_report)."""
    reporter.handoff = BackgroundSend(run_write)
    reporter.hold_first_report(time.monotonic())
