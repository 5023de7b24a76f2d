"""The trainer's view of experiment tracking: one object that never raises.

Each backend (MLflow, W&B) is driven through `Tracker`, which catches every error a backend raises, records
the first one as `degraded` (reported on the job as the `TrackingDegraded` condition and Event, and in the
termination message), and keeps going. While a backend is failing, per-step metrics wait in a bounded buffer
and calls are retried at most every `retry_seconds`, so an unreachable server costs training one timeout per
interval instead of one per step.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from finetune_operator.api.status import bounded
from finetune_operator.api.tracking import DEGRADED_LIMIT

log = logging.getLogger(__name__)

MAX_BUFFERED_STEPS = 20_000
RETRY_SECONDS = 30.0


class Backend(Protocol):
    name: str

    def start(self, hyperparameters: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        """Open the job's run (or continue it) with the resolved hyperparameters and the tags naming the job."""
        ...

    def log_metrics(self, points: list[tuple[int, dict[str, float]]]) -> None: ...

    def log_artifact(self, local: Path, name: str) -> None: ...

    def finish(self, succeeded: bool) -> None: ...

    def reference(self) -> dict[str, str]:
        """Where the run is: e.g. {"runId": ..., "url": ...}; empty before it exists."""
        ...


@dataclass
class _Channel:
    backend: Backend
    started: bool = False
    pending: deque[tuple[int, dict[str, float]]] = field(default_factory=lambda: deque(maxlen=MAX_BUFFERED_STEPS))
    failing_since: float | None = None
    error: str | None = None
    """The first failure: what the job reports."""
    start_args: tuple[Mapping[str, Any], Mapping[str, str]] | None = None


class Tracker:
    def __init__(
        self, backends: list[Backend], clock: Callable[[], float] = time.monotonic, retry_seconds: float = RETRY_SECONDS
    ) -> None:
        self.channels = [_Channel(backend) for backend in backends]
        self.clock = clock
        self.retry_seconds = retry_seconds

    def _attempt(self, channel: _Channel, what: str, action: Callable[[], None], force: bool = False) -> bool:
        now = self.clock()
        if not force and channel.failing_since is not None and now - channel.failing_since < self.retry_seconds:
            return False
        try:
            if not channel.started and channel.start_args is not None:
                channel.backend.start(*channel.start_args)
                channel.started = True
            action()
        except Exception as error:
            message = f"{channel.backend.name}: {what} failed: {error}"
            if channel.error is None:
                channel.error = message
                log.warning("experiment tracking degraded (training continues): %s", message)
            channel.failing_since = now
            return False
        channel.failing_since = None
        return True

    def start(self, hyperparameters: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        for channel in self.channels:
            channel.start_args = (dict(hyperparameters), dict(tags))
            self._attempt(channel, "starting the run", lambda: None, force=True)

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        for channel in self.channels:
            channel.pending.append((step, dict(metrics)))
            self._flush(channel)

    def _flush(self, channel: _Channel, force: bool = False) -> None:
        if not channel.pending:
            return
        batch = list(channel.pending)
        if self._attempt(channel, "logging metrics", lambda: channel.backend.log_metrics(batch), force):
            channel.pending.clear()

    def log_artifact(self, local: Path, name: str) -> None:
        for channel in self.channels:
            self._attempt(channel, f"uploading {name}", lambda: channel.backend.log_artifact(local, name), force=True)  # noqa: B023

    def finish(self, succeeded: bool) -> None:
        for channel in self.channels:
            self._flush(channel, force=True)
            if channel.started:
                self._attempt(channel, "ending the run", lambda: channel.backend.finish(succeeded), force=True)  # noqa: B023

    def summary(self) -> dict[str, object]:
        """For the termination message and status: each backend's run reference, and what went wrong."""
        out: dict[str, object] = {}
        for channel in self.channels:
            entry: dict[str, object] = dict(channel.backend.reference())
            if channel.error is not None:
                entry["degraded"] = bounded(channel.error, DEGRADED_LIMIT)
            if channel.pending:
                entry["unsentSteps"] = len(channel.pending)
            out[channel.backend.name] = entry
        return out

    def degraded(self) -> list[str]:
        return [channel.error for channel in self.channels if channel.error is not None]
