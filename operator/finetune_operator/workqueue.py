"""A level-triggered work queue of job uids, with client-go's workqueue guarantees.

- A key waits in the queue at most once, however many events name it: a burst of events on a job and its
  children becomes one reconciliation, which reads the latest state when its turn comes.
- A key is never processed by two workers at once; a key named again while it is being processed runs once
  more afterwards, so the last event is never lost.
- Urgent keys (a job nobody has acted on yet) skip the delay and go before the others, so a new job gets its
  first children at once even while a backlog of older jobs' changes is being worked through.
- Each key carries the latest `work` given for it (the sweep hands in a fresh-read view, watch events an
  index view); the queue keeps no event bodies, only keys and callables, so memory grows with the number of
  jobs, not with the event rate.

Watch handlers only `add()` and return: Kopf's per-object workers (each holding its event's body) finish at
once instead of waiting behind a backlog of reconciliations.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Work = Callable[[], Awaitable[None]]

log = logging.getLogger(__name__)


class WorkQueue(Generic[Key]):
    def __init__(self, workers: int, delay: float = 0.0) -> None:
        """`delay`: how long a newly queued key waits before it can be taken, so that the events of one change
        (a Job's status, its pod's, the PVC's) are reconciled together."""
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self._workers = workers
        self._delay = delay
        self._ready: asyncio.PriorityQueue[tuple[int, int, Key]] = asyncio.PriorityQueue()
        self._order = itertools.count()  # FIFO within a priority; keys themselves need not be comparable
        self._work: dict[Key, Work] = {}  # queued or re-queued keys -> their latest work
        self._queued: set[Key] = set()
        self._processing: set[Key] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()

    def add(self, key: Key, work: Work, urgent: bool = False) -> None:
        self._work[key] = work
        self._idle.clear()
        if key in self._queued or key in self._processing:
            return
        self._queued.add(key)
        if self._delay > 0 and not urgent:
            asyncio.get_running_loop().call_later(self._delay, self._put, key, urgent)
        else:
            self._put(key, urgent)

    def _put(self, key: Key, urgent: bool) -> None:
        self._ready.put_nowait((0 if urgent else 1, next(self._order), key))

    def __len__(self) -> int:
        """Keys waiting (not those being processed)."""
        return len(self._queued)

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._worker(), name=f"reconcile-{i}") for i in range(self._workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def join(self) -> None:
        """Wait until nothing is queued or being processed (tests, shutdown)."""
        await self._idle.wait()

    async def _worker(self) -> None:
        while True:
            _, _, key = await self._ready.get()
            self._queued.discard(key)
            work = self._work.pop(key)
            self._processing.add(key)
            try:
                await work()
            except Exception:
                # `work` reports its own failures; this only keeps the worker alive for the other keys.
                log.exception("work for %s failed", key)
            finally:
                self._processing.discard(key)
            if key in self._work:  # named again while it was being processed
                self._queued.add(key)
                self._put(key, urgent=False)
            elif not self._queued and not self._processing:
                self._idle.set()
