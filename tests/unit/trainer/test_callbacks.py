import os
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from transformers import TrainerControl

from finetune_trainer import report
from finetune_trainer.train import checkpoints
from finetune_trainer.train.callbacks import Checkpointing, GracefulStop, Progress
from finetune_trainer.train.collate import TokenCount


def state(step: int, tokens: int, epoch: float = 0.5, zero: bool = True) -> Any:
    return SimpleNamespace(
        global_step=step, epoch=epoch, max_steps=100, num_input_tokens_seen=tokens, is_world_process_zero=zero
    )


def test_progress_reports_loss_learning_rate_and_windowed_throughput() -> None:
    sent: list[dict[str, Any]] = []
    now = iter([0.0, 10.0, 12.0])
    count = TokenCount()
    progress = Progress(
        report.Reporter(send=sent.append), True, clock=lambda: next(now), tokens_seen=lambda: count.tokens, ranks=2
    )
    progress.on_train_begin(None, state(0, 0), None)
    count.tokens = 10_000  # this rank's collator; the other rank batched about as many
    progress.on_log(None, state(5, 0), None, logs={"loss": 2.5, "learning_rate": 1e-4, "grad_norm": 1.0})
    assert len(sent) == 1
    status = sent[0]["status"]
    assert status["progress"]["step"] == 5 and status["progress"]["totalSteps"] == 100
    assert status["metrics"] == {"trainLoss": 2.5, "learningRate": 1e-4, "tokensPerSecond": 2000.0}


def test_progress_is_silent_on_other_ranks() -> None:
    sent: list[dict[str, Any]] = []
    progress = Progress(report.Reporter(send=sent.append), is_rank_zero=False, clock=lambda: 0.0)
    progress.on_train_begin(None, state(0, 0, zero=False), None)
    progress.on_log(None, state(1, 10, zero=False), None, logs={"loss": 1.0})
    progress.send("Evaluating", force=True)
    assert sent == []


def test_checkpointing_saves_at_epoch_end_unless_that_step_was_just_saved(tmp_path: Path) -> None:
    committed: list[checkpoints.Checkpoint] = []
    callback = Checkpointing(tmp_path, "h" * 64, {"x": 1}, keep=3, on_commit=committed.append)
    staged = tmp_path / checkpoints.STAGING / "checkpoint-4"
    staged.mkdir(parents=True)
    (staged / "weights").write_bytes(b"w")
    args = SimpleNamespace(output_dir=str(tmp_path / checkpoints.STAGING))
    callback.on_save(args, state(4, 0), TrainerControl())
    assert [checkpoint.step for checkpoint in committed] == [4]
    control = TrainerControl()
    callback.on_epoch_end(args, state(4, 0), control)
    assert not control.should_save
    callback.on_epoch_end(args, state(7, 0), control)
    assert control.should_save


def test_sigterm_requests_a_save_and_a_stop_at_the_step_end() -> None:
    stop = GracefulStop()
    args = SimpleNamespace(device="cpu")
    stop.on_train_begin(args, state(0, 0), TrainerControl())
    try:
        control = TrainerControl()
        stop.on_step_end(args, state(1, 0), control)
        assert not (control.should_save or control.should_training_stop)
        os.kill(os.getpid(), signal.SIGTERM)
        stop.on_step_end(args, state(2, 0), control)
        assert control.should_save and control.should_training_stop and stop.stopped
    finally:
        stop.on_train_end(args, state(2, 0), TrainerControl())
    assert signal.getsignal(signal.SIGTERM) is not stop._handle


def test_sigterm_stops_after_the_current_micro_batch_without_finishing_the_step() -> None:
    """With gradient accumulation an optimizer step can outlast the grace period: stop mid-step."""
    stop = GracefulStop()
    args = SimpleNamespace(device="cpu")
    stop.on_train_begin(args, state(0, 0), TrainerControl())
    try:
        control = TrainerControl()
        stop.on_substep_end(args, state(3, 0), control)
        assert not control.should_training_stop
        os.kill(os.getpid(), signal.SIGTERM)
        stop.on_substep_end(args, state(3, 0), control)
        # Step 3 is the last complete step: Checkpointing saves it at the epoch end the Trainer runs next.
        assert control.should_training_stop and not control.should_save and stop.stopped
    finally:
        stop.on_train_end(args, state(3, 0), TrainerControl())
