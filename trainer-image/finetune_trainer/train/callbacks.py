"""Trainer callbacks: live progress, atomic checkpoints, and a clean stop on SIGTERM."""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist
from transformers import TrainerCallback

from finetune_trainer import report
from finetune_trainer.background import BackgroundSend
from finetune_trainer.history import History
from finetune_trainer.train import checkpoints, jsonlog

STAGE_TRAINING = "Training"
STAGE_EVALUATING = "Evaluating"


def is_distributed() -> bool:
    return bool(dist.is_available() and dist.is_initialized())


def seconds_remaining(step: int, total_steps: int, steps_per_second: float | None) -> int | None:
    """Time left at the recent pace; None until there is a pace."""
    if not steps_per_second or steps_per_second <= 0 or total_steps <= 0:
        return None
    return max(0, round((total_steps - step) / steps_per_second))


class Progress(TrainerCallback):  # type: ignore[misc]  # transformers is typed as Any here
    """Turns the Trainer's log dicts into JSON log lines, the metric history and throttled status updates (rank 0).

    Throughput counts the real tokens this rank's collator batched (`tokens_seen`, host integers) times
    the ranks: the Trainer's own count gathered a GPU tensor across ranks after every micro-batch, a
    host sync per micro-batch; packed batches differ across ranks by a few percent at most.
    """

    def __init__(
        self,
        reporter: report.Reporter,
        is_rank_zero: bool,
        clock: Callable[[], float] = time.monotonic,
        tokens_seen: Callable[[], int] = lambda: 0,
        ranks: int = 1,
    ) -> None:
        self.reporter = reporter
        self.tokens_seen = tokens_seen
        self.ranks = ranks
        self.is_rank_zero = is_rank_zero
        self.clock = clock
        self.metrics: dict[str, float] = {}
        self.step = 0
        self.total_steps = 0
        self.epoch = 0.0
        self.checkpoint: dict[str, object] | None = None
        self.history = History()
        self.eta: int | None = None
        self._window: tuple[float, int, int] | None = None  # (time, tokens seen, step) at the last log

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.total_steps = state.max_steps
        self._window = (self.clock(), self.tokens_seen() * self.ranks, state.global_step)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        self.step, self.epoch = state.global_step, float(state.epoch or 0.0)
        if "loss" in logs:
            self.metrics["trainLoss"] = round(float(logs["loss"]), 6)
            if "learning_rate" in logs:
                self.metrics["learningRate"] = float(logs["learning_rate"])
            now, tokens = self.clock(), self.tokens_seen() * self.ranks
            if self._window is not None and now > self._window[0]:
                # Throughput over the last logging window: live, not diluted by startup time.
                elapsed = now - self._window[0]
                self.metrics["tokensPerSecond"] = round((tokens - self._window[1]) / elapsed, 1)
                self.eta = seconds_remaining(self.step, self.total_steps, (self.step - self._window[2]) / elapsed)
            self._window = (now, tokens, self.step)
            self.history.add_many(
                self.step,
                {
                    "trainLoss": float(logs["loss"]),
                    "learningRate": _number(logs.get("learning_rate")),
                    "gradNorm": _number(logs.get("grad_norm")),
                    "tokensPerSecond": self.metrics.get("tokensPerSecond"),
                },
            )
            jsonlog.event(
                "train_log",
                step=self.step,
                totalSteps=self.total_steps,
                epoch=round(self.epoch, 4),
                loss=float(logs["loss"]),
                gradNorm=logs.get("grad_norm"),
                learningRate=logs.get("learning_rate"),
                tokensPerSecond=self.metrics.get("tokensPerSecond"),
            )
            self.send(STAGE_TRAINING)
        elif "eval_loss" in logs:
            jsonlog.event("eval_log", step=self.step, **{key: float(value) for key, value in logs.items()})
            eval_loss = float(logs["eval_loss"])
            perplexity = math.exp(eval_loss) if eval_loss < 50 else None
            self.history.add_many(self.step, {"evalLoss": eval_loss, "perplexity": perplexity})
            self.metrics["evalLoss"] = round(eval_loss, 6)
            if eval_loss < self.metrics.get("bestEvalLoss", math.inf):
                self.metrics["bestEvalLoss"], self.metrics["bestEvalStep"] = round(eval_loss, 6), self.step

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.step, self.epoch = state.global_step, float(state.epoch or 0.0)

    def flush(self) -> None:
        """Wait (bounded) until the last status patch is out: before the process ends."""
        if isinstance(self.reporter.handoff, BackgroundSend):
            # a report is up to three requests: the pacing read, the status and the history
            self.reporter.handoff.flush(3 * report.REQUEST_TIMEOUT_SECONDS)

    def send(self, stage: str, force: bool = False, *, curve: bool = True, final: bool = False) -> None:
        """Report `stage` (see Reporter.report); `curve=False` leaves the history to a later report."""
        if not self.is_rank_zero:
            return
        now = datetime.now(UTC)
        patch = report.status_patch(
            stage=stage,
            step=self.step,
            total_steps=self.total_steps,
            epoch=self.epoch,
            metrics=self.metrics,
            now=now,
            checkpoint=self.checkpoint,
            seconds_remaining=self.eta if stage == STAGE_TRAINING else None,
        )
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        history = (lambda: self.history.document(stamp)) if curve else None
        self.reporter.report(patch, stage, self.clock(), force=force, history=history, final=final)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


class Checkpointing(TrainerCallback):  # type: ignore[misc]  # transformers is typed as Any here
    """Seals each checkpoint the Trainer writes (see `checkpoints`), also saving at every epoch end."""

    def __init__(
        self,
        folder: Path,
        config_hash: str,
        config: dict[str, object],
        keep: int,
        on_commit: Callable[[checkpoints.Checkpoint], None],
        protected: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.folder = folder
        self.config_hash = config_hash
        self.config = config
        self.keep = keep
        self.on_commit = on_commit
        self.protected = protected  # the step of a checkpoint pruning must keep (early stopping's best)
        self.saved_step = -1

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # The last step of training is saved by the Trainer already; do not write it twice.
        if state.global_step != self.saved_step:
            control.should_save = True

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # Every rank writes its own RNG state into the staged folder: seal only once all are done.
        if is_distributed():
            dist.barrier()
        self.saved_step = state.global_step
        if state.is_world_process_zero:
            staged = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            sealed = checkpoints.commit(staged, self.folder, self.config_hash, self.config)
            removed = checkpoints.prune(self.folder, self.keep, protect=self.protected())
            jsonlog.event(
                "checkpoint_saved", step=sealed.step, path=str(sealed.path), removed=[p.name for p in removed]
            )
            self.on_commit(sealed)
        if is_distributed():
            dist.barrier()


class GracefulStop(TrainerCallback):  # type: ignore[misc]  # transformers is typed as Any here
    """SIGTERM (eviction, preemption, deletion) -> stop within one micro-batch, checkpoint, exit 143.

    The signal handler only sets a flag, checked after every micro-batch: with gradient
    accumulation an optimizer step can outlast the grace period. Stopping mid-step discards that
    step's partial gradients; `Checkpointing.on_epoch_end` (which the Trainer calls on the way
    out) then saves the last optimizer step unless it is saved already, sealed like any other,
    and the next attempt redoes the discarded micro-batches. Under DDP the flag is all-reduced
    so that every rank stops after the same micro-batch (a rank that stopped alone would leave
    the others blocked in a collective); over a CPU (gloo) group, so that checking it never waits
    for the GPU to drain.
    """

    def __init__(self) -> None:
        self.requested = False
        self.stopped = False
        self._previous: Any = None
        self._group: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        if is_distributed():
            # Every rank calls this at the same point, as new_group requires.
            self._group = dist.new_group(backend="gloo") if dist.get_backend() != "gloo" else dist.group.WORLD

    def _agreed(self) -> bool:
        if self._group is None:
            return self.requested
        flag = torch.tensor([1 if self.requested else 0])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
        return bool(flag.item())

    def _check(self, state: Any, control: Any, step_done: bool) -> None:
        if self._agreed() and not self.stopped:
            action = "saving a checkpoint, then exiting" if step_done else "discarding the partial step, then exiting"
            jsonlog.event("sigterm", step=state.global_step, midStep=not step_done, action=action)
            self.stopped = True
            control.should_training_stop = True
            if step_done:
                control.should_save = True

    def on_substep_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._check(state, control, step_done=False)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._check(state, control, step_done=True)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def tensorboard_callback(folder: Path) -> Any:
    from transformers.integrations.integration_utils import TensorBoardCallback

    callback = TensorBoardCallback()
    # Set before training starts, so the writer it (re)opens for training and for the final
    # evaluation both write here rather than under the Trainer's output folder.
    callback.logging_dir = str(folder)
    return callback
