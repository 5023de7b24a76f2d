"""A failed reconciliation retries by itself with exponential back-off, and stops once the job is gone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from finetune_operator import runtime
from finetune_operator.config import Settings


class FailingReconciler:
    def __init__(self) -> None:
        self.kube = object()
        self.calls = 0

    def reconcile(self, view: Any) -> Any:
        self.calls += 1
        raise RuntimeError("the API server refused the write")


class View:
    namespace, name = "ml", "job"


async def retries(monkeypatch: pytest.MonkeyPatch, view: Any) -> tuple[FailingReconciler, runtime.Runtime]:
    monkeypatch.setattr(runtime, "RETRY_BASE_SECONDS", 0.02)
    reconciler = FailingReconciler()
    settings = Settings(reconcile_delay_ms=0)
    rt = runtime.Runtime(reconciler, settings)  # type: ignore[arg-type]
    rt.queue.start()
    rt.enqueue("uid-1", lambda: view)
    await asyncio.sleep(0.5)
    await rt.queue.stop()
    return reconciler, rt


def test_a_failed_reconciliation_is_retried_without_a_new_event(monkeypatch: pytest.MonkeyPatch) -> None:
    reconciler, rt = asyncio.run(retries(monkeypatch, View()))
    # At most 5: the back-off delays (0.02, 0.04, 0.08, 0.16, 0.32 s) are lower bounds; a tight loop makes hundreds.
    assert 2 <= reconciler.calls <= 5, reconciler.calls
    assert rt.failures["uid-1"] == reconciler.calls


def test_a_deleted_job_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    reconciler, _ = asyncio.run(retries(monkeypatch, None))
    assert reconciler.calls == 0
