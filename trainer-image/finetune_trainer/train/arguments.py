"""The Trainer's arguments (TRL's `SFTConfig`) from the resolved training config: every library default we override."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from finetune_trainer.train import early, sharding
from finetune_trainer.train.config import TrainConfig

LOG_EVERY_FRACTION = 0.01


def sft_arguments(config: TrainConfig, output_dir: Path) -> Any:
    from trl.trainer.sft_config import SFTConfig

    cuda = torch.cuda.is_available()
    arguments = SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        # transformers 5 reads a float below 1 as a fraction of the total steps (its warmup_ratio is deprecated).
        warmup_steps=config.warmup_ratio,
        max_grad_norm=1.0,
        weight_decay=0.0,
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        seed=config.seed,
        data_seed=config.seed,
        bf16=config.precision == "bf16",
        fp16=config.precision == "fp16",
        use_cpu=not cuda,
        # training.gradientCheckpointing, resolved by `config.resolve` and, when unset on GPUs, the memory plan.
        activation_checkpointing=config.gradient_checkpointing,
        # transformers 5.23 checkpoints layers 0, n, 2n... and lets the others keep their activations.
        activation_checkpointing_kwargs={"every_n_layers": config.checkpoint_every}
        if config.gradient_checkpointing and config.checkpoint_every > 1
        else None,
        max_length=config.max_seq_length,
        packing=True,
        packing_strategy="bfd",
        # Below 1: a fraction of the total steps, so ~100 logs per run (every step of a short one). Each log is a
        # host sync and a gather of the loss across ranks; the count is the same on every rank, as it must be.
        logging_steps=LOG_EVERY_FRACTION,
        save_strategy="steps",
        save_steps=config.save_steps,
        **evaluation_schedule(config),
        report_to="none",
        disable_tqdm=True,
        # Counted by our collator on the host instead (callbacks.Progress): the Trainer's count syncs every micro-batch.
        include_num_input_tokens_seen="no",
        ddp_find_unused_parameters=False,
        dataloader_num_workers=0,
        **sharding.arguments(config),
    )
    return arguments


def evaluation_schedule(config: TrainConfig) -> dict[str, Any]:
    """The Trainer's evaluation arguments: none during training, or `evalsPerEpoch` evaluations per epoch."""
    if not config.evals_per_epoch:
        return {"eval_strategy": "no"}
    fraction = early.eval_steps(config.epochs, config.evals_per_epoch)
    return {"eval_strategy": "epoch"} if fraction is None else {"eval_strategy": "steps", "eval_steps": fraction}
