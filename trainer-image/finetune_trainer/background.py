"""Status writes done by a background thread, so the training loop never waits on the API server.

A synchronous PATCH (up to a 5 s timeout) on rank 0 stalled rank 0's step, and with it every other rank at
the next collective. Here `__call__` hands the item (a status patch, or the Reporter's whole write: status,
history and pacing read) to a sender thread and returns at once; an item not yet sent is replaced by a newer
one (the status is a snapshot: only the latest matters), and `flush` waits a bounded time for the last one
before the process ends. Failures are logged, as before: a lost progress update never costs a training run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")


class BackgroundSend(Generic[Item]):
    def __init__(self, send: Callable[[Item], None]) -> None:
        self._send = send
        self._pending: Item | None = None
        self._busy = False
        self._changed = threading.Condition()
        threading.Thread(target=self._loop, name="status-updates", daemon=True).start()

    def __call__(self, patch: Item) -> None:
        with self._changed:
            self._pending = patch
            self._changed.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until every handed-over patch is sent (or failed); False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._pending is not None or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def _loop(self) -> None:
        while True:
            with self._changed:
                while self._pending is None:
                    self._changed.wait()
                patch, self._pending, self._busy = self._pending, None, True
            try:
                self._send(patch)
            except Exception as error:
                log.warning("status update failed: %s", error)
            with self._changed:
                self._busy = False
                self._changed.notify_all()


def run_write(write: Callable[[], None]) -> None:
    """The sender behind report.Reporter.handoff: each item is one report's writes."""
    write()
