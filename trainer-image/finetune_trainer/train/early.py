"""Evaluation during training (spec.evaluation.evalsPerEpoch) and early stopping (earlyStopping).

`BestEval` watches every evaluation: it keeps the best eval loss and its step; with a patience it also asks the
Trainer for a checkpoint at each new best (so the best weights are on disk and `Checkpointing` keeps them from
pruning) and stops training after `patience` evaluations without an improvement of more than `min_delta`.
The run then restores that checkpoint before the final evaluation, so the registered model is the best one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback

from finetune_trainer.train import jsonlog


@dataclass(frozen=True)
class Verdict:
    improved: bool
    stop: bool
    waited: int


def judge(best: float | None, loss: float, waited: int, min_delta: float, patience: int | None) -> Verdict:
    """After one evaluation: was it a new best, and has the patience run out?"""
    if best is None or loss < best - min_delta:
        return Verdict(improved=True, stop=False, waited=0)
    waited += 1
    return Verdict(improved=False, stop=patience is not None and waited >= patience, waited=waited)


def eval_steps(epochs: int, evals_per_epoch: int) -> float | None:
    """The Trainer's eval_steps as a fraction of all steps; None: once per epoch is as often as asked."""
    fraction = 1.0 / (epochs * evals_per_epoch)
    return fraction if fraction < 1.0 else None


class BestEval(TrainerCallback):  # type: ignore[misc]  # transformers is typed as Any here
    def __init__(self, patience: int | None, min_delta: float) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_step: int | None = None
        self.waited = 0
        self.stopped_early = False

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **_: Any
    ) -> None:
        loss = (metrics or {}).get("eval_loss")
        if loss is None or state.global_step == 0:
            return
        verdict = judge(self.best, float(loss), self.waited, self.min_delta, self.patience)
        self.waited = verdict.waited
        if verdict.improved:
            self.best, self.best_step = float(loss), state.global_step
            if self.patience is not None:
                control.should_save = True  # the best weights must be on disk to be restored
        elif verdict.stop and not self.stopped_early:
            self.stopped_early = True
            control.should_training_stop = True
            jsonlog.event(
                "early_stopping", step=state.global_step, bestEvalLoss=self.best, bestStep=self.best_step,
                patience=self.patience,
            )  # fmt: skip

    def protected_step(self) -> int | None:
        """The checkpoint pruning must keep (the best one), when early stopping will restore it."""
        return self.best_step if self.patience is not None else None
