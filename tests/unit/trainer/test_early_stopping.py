"""Evaluation during training and early stopping (finetune_trainer.train.early), pure parts and a real run."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune_trainer.train import checkpoints
from finetune_trainer.train.early import Verdict, eval_steps, judge

from .conftest import write_dataset, write_job
from .test_training_runs import finish, start


@pytest.mark.parametrize(
    ("best", "loss", "waited", "min_delta", "patience", "expected"),
    [
        (None, 3.0, 0, 0.0, 2, Verdict(improved=True, stop=False, waited=0)),
        (3.0, 2.9, 1, 0.0, 2, Verdict(improved=True, stop=False, waited=0)),
        (3.0, 2.95, 0, 0.1, 2, Verdict(improved=False, stop=False, waited=1)),  # not by more than minDelta
        (3.0, 3.1, 1, 0.0, 2, Verdict(improved=False, stop=True, waited=2)),
        (3.0, 3.1, 5, 0.0, None, Verdict(improved=False, stop=False, waited=6)),  # no early stopping: never stop
    ],
)
def test_judge(
    best: float | None, loss: float, waited: int, min_delta: float, patience: int | None, expected: Verdict
) -> None:
    assert judge(best, loss, waited, min_delta, patience) == expected


def test_eval_steps_as_a_fraction_of_all_steps() -> None:
    assert eval_steps(3, 2) == pytest.approx(1 / 6)
    assert eval_steps(1, 1) is None  # once per epoch: the epoch strategy


@pytest.mark.slow  # a ~25 s training subprocess
def test_early_stopping_stops_keeps_and_restores_the_best_checkpoint(tmp_path: Path) -> None:
    workspace = tmp_path
    write_dataset(workspace, train=48, evaluation=8)
    training = {"epochs": 3, "batchSize": 4, "maxSeqLength": 128, "learningRate": 0.01, "seed": 7}
    # No later evaluation can beat the first by 100: training stops at the second one, the first is the best.
    evaluation = {"evalsPerEpoch": 2, "earlyStopping": {"patience": 1, "minDelta": 100.0}}
    write_job(workspace, training, evaluation=evaluation)
    run = finish(workspace, start(workspace))
    assert run.returncode == 0, run.events[-3:]
    evals = [e for e in run.events if e.get("event") == "eval_log"]
    stopped = next(e for e in run.events if e.get("event") == "early_stopping")
    restored = next(e for e in run.events if e.get("event") == "best_checkpoint_restored")
    total = run.termination["progress"]["totalSteps"]
    first, second = evals[0]["step"], evals[1]["step"]
    assert first == pytest.approx(total / 6, abs=1) and second == pytest.approx(2 * total / 6, abs=1)
    assert stopped["step"] == second and stopped["bestStep"] == first
    assert run.termination["progress"]["step"] == second < total
    assert restored["step"] == first
    # The registered model is the best one: the final evaluation scores the restored weights.
    assert run.termination["metrics"]["evalLoss"] == pytest.approx(evals[0]["eval_loss"], rel=1e-4)
    kept = {c.step for c in map(checkpoints.read_complete, (workspace / "checkpoints").iterdir()) if c}
    assert first in kept
    # The JSON lines outlive the pod: one bounded file per attempt and rank on the workspace.
    (log,) = (workspace / "logs").glob("train-*-rank0.jsonl")
    assert '"early_stopping"' in log.read_text()
