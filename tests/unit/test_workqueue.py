"""The reconcile queue (finetune_operator.workqueue): one queued entry per job however many events name it, never
two reconciliations of one job at once, and no event lost while its job is being reconciled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from finetune_operator.workqueue import WorkQueue


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=10))


def recorder(log: list[str], label: str, gate: asyncio.Event | None = None) -> Callable[[], Awaitable[None]]:
    async def work() -> None:
        log.append(f"start {label}")
        if gate is not None:
            await gate.wait()
        log.append(f"end {label}")

    return work


def test_a_burst_for_one_key_runs_once_with_the_latest_work() -> None:
    async def scenario() -> None:
        log: list[str] = []
        queue: WorkQueue[str] = WorkQueue(workers=2)
        for i in range(50):
            queue.add("job-a", recorder(log, f"a{i}"))
        assert len(queue) == 1
        queue.start()
        await queue.join()
        await queue.stop()
        assert log == ["start a49", "end a49"]

    run(scenario)


def test_a_burst_within_the_delay_is_one_run() -> None:
    async def scenario() -> None:
        log: list[str] = []
        queue: WorkQueue[str] = WorkQueue(workers=1, delay=0.05)
        queue.start()
        queue.add("job-a", recorder(log, "first"))
        await asyncio.sleep(0)  # the worker is free, yet the key waits out its delay
        queue.add("job-a", recorder(log, "second"))
        await queue.join()
        await queue.stop()
        assert log == ["start second", "end second"]

    run(scenario)


def test_a_key_named_while_it_runs_runs_again_after_never_alongside() -> None:
    async def scenario() -> None:
        log: list[str] = []
        gate = asyncio.Event()
        queue: WorkQueue[str] = WorkQueue(workers=4)
        queue.start()
        queue.add("job-a", recorder(log, "first", gate))
        while log != ["start first"]:
            await asyncio.sleep(0)
        for i in range(3):
            queue.add("job-a", recorder(log, f"again{i}"))
        await asyncio.sleep(0.01)
        assert log == ["start first"]  # three free workers, yet none started job-a a second time
        gate.set()
        await queue.join()
        await queue.stop()
        assert log == ["start first", "end first", "start again2", "end again2"]

    run(scenario)


def test_different_keys_run_concurrently_up_to_the_worker_count() -> None:
    async def scenario() -> None:
        log: list[str] = []
        gate = asyncio.Event()
        queue: WorkQueue[str] = WorkQueue(workers=2)
        queue.start()
        for key in ("a", "b", "c"):
            queue.add(key, recorder(log, key, gate))
        await asyncio.sleep(0.01)
        assert log == ["start a", "start b"]
        gate.set()
        await queue.join()
        await queue.stop()
        assert sorted(log) == sorted(f"{edge} {key}" for key in "abc" for edge in ("start", "end"))

    run(scenario)


def test_a_failing_work_does_not_stop_its_worker() -> None:
    async def scenario() -> None:
        log: list[str] = []

        async def broken() -> None:
            raise RuntimeError("boom")

        queue: WorkQueue[str] = WorkQueue(workers=1)
        queue.start()
        queue.add("a", broken)
        queue.add("b", recorder(log, "b"))
        await queue.join()
        await queue.stop()
        assert log == ["start b", "end b"]

    run(scenario)


def test_at_least_one_worker() -> None:
    with pytest.raises(ValueError, match="workers"):
        WorkQueue(workers=0)


def test_urgent_keys_go_first_and_skip_the_delay() -> None:
    async def scenario() -> None:
        log: list[str] = []
        gate = asyncio.Event()
        queue: WorkQueue[str] = WorkQueue(workers=1, delay=3600)  # only urgent keys can run within the test
        queue.start()
        queue.add("busy", recorder(log, "busy", gate), urgent=True)
        while log != ["start busy"]:
            await asyncio.sleep(0)
        queue.add("old", recorder(log, "old"))
        queue.add("new", recorder(log, "new"), urgent=True)
        gate.set()
        while log[-1:] != ["end new"]:
            await asyncio.sleep(0.001)
        assert log == ["start busy", "end busy", "start new", "end new"]
        assert len(queue) == 1  # "old" still waits out its delay
        await queue.stop()

    run(scenario)
