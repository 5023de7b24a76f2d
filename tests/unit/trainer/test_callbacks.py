import json
import math
import os
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from transformers import TrainerControl

from finetune_trainer import report
from finetune_trainer.train import checkpoints
from finetune_trainer.train.callbacks import Checkpointing, GracefulStop, Progress, seconds_remaining
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
    assert status["progress"]["estimatedSecondsRemaining"] == 190  # 95 steps left at 0.5 steps/s


def test_progress_records_every_logged_step_and_evaluation_in_the_history() -> None:
    histories: list[dict[str, Any]] = []
    clock = iter(float(t) for t in range(100))
    reporter = report.Reporter(send=lambda patch: None, send_history=histories.append)
    progress = Progress(reporter, is_rank_zero=True, clock=lambda: next(clock))
    progress.on_train_begin(None, state(0, 0), None)
    for step in range(1, 6):
        progress.on_log(None, state(step, step * 100), None, logs={"loss": 3.0 - step * 0.1, "grad_norm": 0.5})
    progress.on_log(None, state(5, 500), None, logs={"eval_loss": 2.0, "eval_runtime": 1.0})
    progress.send("Evaluating", force=True)
    document = json.loads(histories[-1]["data"]["history.json"])
    assert [step for step, _ in document["series"]["trainLoss"]] == [1, 2, 3, 4, 5]
    assert document["series"]["gradNorm"][0] == [1, 0.5]
    assert document["series"]["evalLoss"] == [[5, 2.0]]
    assert document["series"]["perplexity"] == [[5, round(math.exp(2.0), 6)]]


def test_seconds_remaining() -> None:
    assert seconds_remaining(40, 100, 2.0) == 30
    assert seconds_remaining(40, 100, None) is None
    assert seconds_remaining(40, 100, 0.0) is None
    assert seconds_remaining(120, 100, 1.0) == 0


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
