from pathlib import Path

from finetune_trainer.train.arguments import sft_arguments

from .test_model_inputs import _config


def test_the_loop_has_no_host_sync_per_micro_batch_and_logs_about_a_hundred_times(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    arguments = sft_arguments(_config(tiny_model_dir), tmp_path)
    # The Trainer's token count gathers a GPU tensor and reads it back after every micro-batch.
    assert arguments.include_num_input_tokens_seen == "no"
    # A fraction of the total steps (each log gathers the loss across ranks): one step only in short runs.
    assert 0 < arguments.logging_steps < 1
