"""One training attempt: dataset -> base model -> SFT (resuming if possible) -> evaluation -> model.

This module wires the pieces together and owns the order of side effects; the decisions live in
pure functions elsewhere (`config.resolve`, `checkpoints.latest`, `evaluation.score`, ...).
Returns the success termination payload (rank 0) or None (other ranks); failures are raised as
`JobFailed` and turned into exit codes by `__main__`. Each phase that writes to the workspace runs
under `storage.guard`, which turns a full volume into StorageFull (exit 13) and removes the partial
checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from finetune_operator.api import JobConfig
from finetune_operator.api.contract import Reason
from finetune_operator.api.jobconfig import Champion
from finetune_trainer import report, worklog
from finetune_trainer.failures import JobFailed
from finetune_trainer.stageprogress import send_in_background
from finetune_trainer.tracking.tracker import Tracker
from finetune_trainer.train import (
    attention,
    basemodel,
    champion,
    checkpoints,
    data,
    early,
    evaluation,
    heldout,
    jsonlog,
    lineage,
    memory,
    output,
    prepared,
    quantized,
    sharding,
    storage,
    tracking,
)
from finetune_trainer.train.arguments import sft_arguments
from finetune_trainer.train.callbacks import (
    STAGE_EVALUATING,
    Checkpointing,
    GracefulStop,
    Progress,
    tensorboard_callback,
)
from finetune_trainer.train.collate import (
    FlattenedSamplesCollator,
    PackedRowsCollator,
    TokenCount,
    count_trained_tokens,
)
from finetune_trainer.train.compiled import during_training
from finetune_trainer.train.config import Device, TrainConfig, hashed_fields, resolve
from finetune_trainer.train.modelio import load_tokenizer, lora_config, saved_dtype, weights_dtype

SAVE_STEPS_ENV = "FINETUNE_SAVE_STEPS"
# Writing records to Arrow takes seconds; rank 0 loading a large base model first can take minutes.
PREPARED_TIMEOUT_SECONDS = 1800.0


class Interrupted(Exception):
    """Training stopped on SIGTERM after saving a checkpoint; the next attempt resumes from it."""


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def dataset(self) -> Path:
        return self.root / "dataset"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"


def training_device(environ: Mapping[str, str]) -> str | None:
    """This rank's GPU (each rank loads its weights straight onto it), or None on the CPU."""
    return f"cuda:{environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else None


def detect_device(environ: Mapping[str, str]) -> Device:
    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return Device(
        cuda_devices=cuda,
        # Without emulation: T4/V100 "support" bf16 only by emulating it, far slower than their fp16.
        bf16_supported=cuda > 0 and torch.cuda.is_bf16_supported(including_emulation=False),
        world_size=int(environ.get("WORLD_SIZE", "1")),
    )


def run(job: JobConfig, environ: Mapping[str, str], rank: int) -> dict[str, object] | None:
    workspace = Workspace(job.workspace)
    # The JSON lines also go to the workspace (bounded), so they outlive this pod.
    worklog.attach(logging.getLogger(), worklog.path_for(workspace.root, "train", environ), jsonlog.JsonFormatter())
    dataset = data.load_dataset(workspace.dataset)
    config = configure(job, dataset, environ)

    resume_from = checkpoints.latest(workspace.checkpoints)
    if resume_from is not None:
        checkpoints.check_resumable(resume_from, config.config_hash, hashed_fields(config))
        jsonlog.event("resuming", step=resume_from.step, path=str(resume_from.path))

    with storage.guard(workspace.root, "preparing the base model", keep=config.keep_checkpoints, clean=rank == 0):
        model_dir = basemodel.folder(job, workspace.root, dataset, config.seed, rank, environ)
    base_digest = lineage.base_model_digest(model_dir)  # before training: the folder as it was loaded
    reporter = report.from_environment(job.job.name, job.job.namespace, environ)
    # Written in this thread: a refusal's estimate is in the status before the process exits.
    device_memory = memory.device_bytes(training_device(environ))
    config = memory.check(model_dir, config, device_memory, reporter if rank == 0 else None)
    if rank == 0:
        send_in_background(reporter)
    tokenizer = load_tokenizer(model_dir)
    heldout.check_applicable(config, dataset)
    records = data.training_splits(dataset, tokenizer, model_dir)
    rival = checked_champion(environ, rank, tokenizer)
    model, kernel = load_base_model(model_dir, config, environ, rank)

    count = TokenCount()
    progress = Progress(reporter, rank == 0, tokens_seen=lambda: count.tokens, ranks=config.world_size)
    progress.history.hyperparameters = hashed_fields(config)
    stop = GracefulStop()
    best = early.BestEval(config.early_stopping_patience, config.early_stopping_min_delta)

    tracker = tracking.start(job, environ, hashed_fields(config)) if rank == 0 else None  # one run per job
    staging, callbacks = training_callbacks(workspace, config, progress, stop, best, tracker, rank)
    with storage.guard(workspace.root, "preparing the dataset", keep=config.keep_checkpoints, clean=False):
        splits = prepared.file_backed(
            prepared.folder(workspace.root, config.config_hash), records, rank, PREPARED_TIMEOUT_SECONDS
        )
    trainer = build_trainer(
        model=model,
        tokenizer=tokenizer,
        config=config,
        train=splits["train"],
        evaluation_records=splits["eval"],
        output_dir=staging,
        callbacks=callbacks,
        attention_kernel=kernel,
        token_count=count,
    )
    # Checkpoints and TensorBoard events are written from inside the Trainer's loop.
    with storage.guard(workspace.root, "training", keep=config.keep_checkpoints, clean=rank == 0):
        fit(trainer, config, resume_from)
    if stop.stopped:
        progress.flush()
        raise Interrupted(f"stopped by SIGTERM at step {trainer.state.global_step} after saving a checkpoint")

    restore_best(trainer, best, workspace)
    progress.send(STAGE_EVALUATING, force=True, curve=False)  # the phase; the curve goes with the final report
    with storage.guard(workspace.root, "evaluating", keep=config.keep_checkpoints, clean=rank == 0):
        eval_loss = float(trainer.evaluate()["eval_loss"])
    trainer.model = sharding.gathered(trainer.model, config, model_dir, kernel, training_device(environ))
    if rank != 0:
        return None
    comparison = compare_with_champion(rival, trainer, model_dir, config, tokenizer.pad_token_id)
    guard = storage.guard(workspace.root, "writing the final model", keep=config.keep_checkpoints, clean=True)
    with tracking.finishing(tracker, workspace.dataset, progress) as tracked, guard:
        result = publish(job, workspace, dataset, config, trainer, tokenizer, progress, eval_loss, comparison)
    return {**result, "baseModelDigest": base_digest, **tracked}


def checked_champion(environ: Mapping[str, str], rank: int, tokenizer: Any) -> tuple[Champion, Path] | None:
    """Rank 0's evaluation.compareTo version, checked before hours of training: readable, reading our tokens."""
    rival = champion.from_environment(environ) if rank == 0 else None
    return (rival, champion.weights_folder(rival, tokenizer)) if rival else None


def compare_with_champion(
    rival: tuple[Champion, Path] | None, trainer: Any, model_dir: Path, config: TrainConfig, pad_token_id: int
) -> champion.Comparison | None:
    if rival is None:
        return None
    comparison = champion.compare(*rival, trainer.model, trainer.eval_dataset, model_dir, config, pad_token_id)
    jsonlog.event("champion_compared", **champion.describe(comparison), **comparison.metrics())
    return comparison


def training_callbacks(
    workspace: Workspace,
    config: TrainConfig,
    progress: Progress,
    stop: GracefulStop,
    best: early.BestEval,
    tracker: Tracker | None,
    rank: int,
) -> tuple[Path, list[Any]]:
    """The checkpoint staging folder (cleared by rank 0) and the Trainer's callbacks."""

    def on_commit(sealed: checkpoints.Checkpoint) -> None:
        progress.checkpoint = {"path": str(sealed.path.relative_to(workspace.root)), "step": sealed.step}
        progress.history.checkpoint(dict(progress.checkpoint))

    staging = workspace.checkpoints / checkpoints.STAGING
    if rank == 0:
        with storage.guard(workspace.root, "training", keep=config.keep_checkpoints, clean=False):
            staging = checkpoints.clear_staging(workspace.checkpoints)
    callbacks: list[Any] = [
        progress,
        stop,
        best,
        Checkpointing(
            workspace.checkpoints,
            config.config_hash,
            hashed_fields(config),
            config.keep_checkpoints,
            on_commit,
            protected=best.protected_step,
        ),
    ]
    if config.sharding == sharding.FSDP:
        callbacks.append(sharding.shard_report_callback())
    if rank == 0:
        callbacks.append(tensorboard_callback(workspace.tensorboard))
    if tracker is not None:
        callbacks.append(tracking.TrackingCallback(tracker))
    return staging, callbacks


def configure(job: JobConfig, dataset: data.Dataset, environ: Mapping[str, str]) -> TrainConfig:
    save_steps = environ.get(SAVE_STEPS_ENV)
    config = resolve(
        job.spec,
        base_model_path=job.base_model_path,
        dataset_sha256=dataset.sha256,
        device=detect_device(environ),
        save_steps=int(save_steps) if save_steps else None,
    )
    jsonlog.event("config", configHash=config.config_hash, **hashed_fields(config))
    if config.precision_note:
        jsonlog.event("precision_fallback", message=config.precision_note)
    return config


def load_base_model(model_dir: Path, config: TrainConfig, environ: Mapping[str, str], rank: int) -> tuple[Any, str]:
    """The model on this rank's device (under FSDP: see `sharding.load_for_rank`) and the attention kernel."""
    kernel = attention.detect(config.precision)
    if kernel == attention.VARLEN:
        attention.register()
    jsonlog.event("attention", implementation=kernel)
    return sharding.load_for_rank(model_dir, config, kernel, training_device(environ), rank), kernel


def fit(trainer: Any, config: TrainConfig, resume_from: checkpoints.Checkpoint | None) -> None:
    """`trainer.train`, with PEFT's per-layer input cast off under autocast (bf16/fp16), layers compiled if asked.

    PEFT casts each LoRA layer's input to the adapter's dtype (fp32) before its matmul: a full copy of the
    hidden states per adapted layer (~30 us/token for 8B on a GPU), which autocast then casts back to
    bf16 for the matmul anyway. In fp32 there is nothing to cast, and without autocast the cast is needed.
    """
    from peft.helpers import disable_input_dtype_casting

    lora_autocast = config.precision in ("bf16", "fp16") and config.method.value == "lora"
    with (
        disable_input_dtype_casting(trainer.model, active=lora_autocast),
        during_training(trainer.model, config.compile),
    ):
        trainer.train(resume_from_checkpoint=str(resume_from.path) if resume_from else None)


def publish(
    job: JobConfig,
    workspace: Workspace,
    dataset: data.Dataset,
    config: TrainConfig,
    trainer: Any,
    tokenizer: Any,
    progress: Progress,
    eval_loss: float,
    comparison: champion.Comparison | None = None,
) -> dict[str, object]:
    """Rank 0 after training: generation scores, final metrics, model/, metadata, the gate."""
    model = trainer.model
    generated = heldout.generation_metrics(model, tokenizer, dataset, max_prompt_tokens=config.max_seq_length)
    train_loss = evaluation.last_epoch_loss(trainer.state.log_history)
    metrics = {
        # NaN is not JSON: with no logged step (nothing to train) there is simply no train loss.
        **({"trainLoss": round(train_loss, 6)} if train_loss is not None else {}),
        "evalLoss": round(eval_loss, 6),
        "perplexity": round(evaluation.perplexity(eval_loss), 4),
        "tokensPerSecond": progress.metrics.get("tokensPerSecond", 0.0),
        **generated,
        **(comparison.metrics() if comparison else {}),
    }
    progress.metrics.update(metrics)
    progress.send(STAGE_EVALUATING, final=True)
    progress.flush()
    jsonlog.event("evaluation", **metrics)

    parameters = sum(parameter.numel() for parameter in model.parameters())
    bytes_per_parameter = torch.finfo(weights_dtype(config)).bits // 8
    progress_block = {"step": progress.step, "totalSteps": progress.total_steps, "epoch": round(progress.epoch, 4)}
    model_block = output.save_model(
        model,
        tokenizer,
        workspace.model,
        adapter=config.method.value == "lora",
        # A quantized base is never merged into: that would dequantize it (see `quantized`).
        merge=output.should_merge(parameters, bytes_per_parameter) and not quantized.is_quantized(config),
        metadata={
            "baseModel": {"name": job.spec.base_model.name, "source": config.base_model},
            "dataset": data.provenance(dataset),
            "training": hashed_fields(config),
            "configHash": config.config_hash,
            "metrics": metrics,
            "progress": progress_block,
        },
        dtype=saved_dtype(config),
    )
    jsonlog.event("model_saved", folder=str(workspace.model), **model_block)
    heldout.check_gates(config, eval_loss, metrics)
    if comparison is not None and not comparison.passed:
        raise JobFailed(Reason.REGRESSED_AGAINST_CHAMPION, comparison.message())
    return {
        "outcome": "Succeeded",
        **({"comparedTo": champion.describe(comparison)} if comparison else {}),
        "metrics": metrics,
        "progress": progress_block,
        "model": model_block,
        "hyperparameters": lineage.resolved_hyperparameters(config),
    }


def restore_best(trainer: Any, best: early.BestEval, workspace: Workspace) -> None:
    """With early stopping, the best checkpoint's weights become the model (the final evaluation scores them)."""
    step = best.protected_step()
    if step is None or step == trainer.state.global_step:
        return
    folder = workspace.checkpoints / f"checkpoint-{step}"
    trainer._load_from_checkpoint(str(folder))  # the Trainer's own loader: full weights or a PEFT adapter
    jsonlog.event("best_checkpoint_restored", step=step, evalLoss=best.best, path=str(folder))


def build_trainer(
    *,
    model: Any,
    tokenizer: Any,
    config: TrainConfig,
    train: Any,
    evaluation_records: Any,
    output_dir: Path,
    callbacks: list[Any],
    attention_kernel: str = attention.SDPA,
    token_count: TokenCount | None = None,
) -> Any:
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl.trainer.sft_trainer import SFTTrainer

    arguments = sft_arguments(config, output_dir)
    trainer = sharding.trainer_class(SFTTrainer, config)(
        model=model,
        args=arguments,
        # Lists (tests, the bench) or file-backed datasets (`prepared`), whose tokenization TRL caches beside them.
        train_dataset=Dataset.from_list(train) if isinstance(train, list) else train,
        eval_dataset=Dataset.from_list(evaluation_records)
        if isinstance(evaluation_records, list)
        else evaluation_records,
        processing_class=tokenizer,
        peft_config=lora_config(config) if config.method.value == "lora" else None,
        callbacks=callbacks,
    )
    # With tqdm disabled the Trainer prints every log dict; our Progress callback logs them as JSON.
    trainer.remove_callback(PrinterCallback)
    # One flattened row with sample boundaries for the varlen kernel; with SDPA a flattened batch is quadratic
    # in the whole batch (see collate.py), so rows are kept apart instead.
    if attention_kernel == attention.VARLEN:
        trainer.data_collator = FlattenedSamplesCollator()
    else:
        trainer.data_collator = PackedRowsCollator(
            tokenizer.pad_token_id, config.max_seq_length if config.compile else 0
        )
    count_trained_tokens(trainer, token_count or TokenCount())
    return trainer
