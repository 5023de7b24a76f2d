"""Epoch Events (finetune_operator.epochs): one per finished epoch, never on first sight, capped per job."""

from __future__ import annotations

from typing import Any

from finetune_operator import epochs


def body(epoch: float, stage: str = "Training", **metrics: float) -> dict[str, Any]:
    return {
        "spec": {"training": {"epochs": 3}},
        "status": {"progress": {"stage": stage, "epoch": epoch}, "metrics": metrics},
    }


def test_one_event_per_whole_epoch_with_the_latest_losses() -> None:
    seen = epochs.EpochEvents()
    assert seen.observe("u", body(0.2)) is None  # first sight only sets the mark
    assert seen.observe("u", body(0.9, trainLoss=2.5)) is None
    assert seen.observe("u", body(1.0, trainLoss=2.31, evalLoss=2.5)) == "epoch 1/3: loss 2.31, eval loss 2.5"
    assert seen.observe("u", body(1.5, trainLoss=2.0)) is None
    assert seen.observe("u", body(2.99999999, trainLoss=1.23)) == "epoch 3/3: loss 1.23"  # skipped one: one Event


def test_a_restarted_operator_does_not_repeat_an_epoch() -> None:
    seen = epochs.EpochEvents()
    assert seen.observe("u", body(2.0, trainLoss=1.0)) is None


def test_the_last_epoch_counts_when_its_report_says_evaluating() -> None:
    seen = epochs.EpochEvents()
    seen.observe("u", body(1.5))
    assert seen.observe("u", body(2.0, stage="Evaluating", trainLoss=1.1)) == "epoch 2/3: loss 1.1"
    assert seen.observe("u", body(3.0, stage="Curating")) is None


def test_capped_per_job() -> None:
    seen = epochs.EpochEvents()
    seen.observe("u", body(0.0))
    messages = [seen.observe("u", body(float(e))) for e in range(1, 20)]
    assert len([m for m in messages if m]) == epochs.MAX_PER_JOB
    seen.forget("u")
    assert seen.marks == {} and seen.posted == {}


def test_message_without_figures_or_total() -> None:
    assert epochs.message(2, None, {}) == "epoch 2"
