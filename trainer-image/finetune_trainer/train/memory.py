"""The memory plan at run time: size the job from the base model's config.json before loading any weight.

On a GPU, what the spec leaves open is chosen first (`memorychoice`): activation checkpointing (off where the
activations fit, every other layer, every layer) and, with batchSize unset, the micro-batch (the rows per
optimizer step stay). Then a job the plan says cannot fit fails at once with `InsufficientGPUMemory` (exit 11:
the spec is immutable, so a retry would be refused again) and the plan's message: the estimate, the GPU's
memory and the cheapest change that fits. Rank 0 reports the estimate in `status.memoryPlan` (at once with a
refusal, else with the first training report), on CPU too, where nothing is refused (host memory is the pod's
limit, enforced by the kubelet). A config.json the plan cannot read (an architecture it does not count) is
logged and skipped, never a reason to refuse a job.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch

from finetune_operator.api import Quantization, memorychoice
from finetune_operator.api.contract import Reason
from finetune_operator.api.memoryplan import GIB, MemoryEstimate, TrainingPlan, estimate, refusal
from finetune_operator.api.modelshape import ModelShape, UnsupportedConfig, shape_from_config
from finetune_trainer import report
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import jsonlog
from finetune_trainer.train.config import TrainConfig

STAGE = "Planning"


def read_shape(model_dir: Path) -> ModelShape | None:
    """The model's shape from `model_dir/config.json`, or None (logged) when the plan cannot count it."""
    try:
        return shape_from_config(json.loads((model_dir / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, UnsupportedConfig) as error:
        jsonlog.event("memory_plan_skipped", reason=str(error))
        return None


def training_plan(config: TrainConfig) -> TrainingPlan:
    return TrainingPlan(
        method=config.method,
        quantization=Quantization(config.quantization),
        seq_length=config.max_seq_length,
        micro_batch=config.batch_size,
        gradient_checkpointing=config.gradient_checkpointing,
        precision=config.precision,
        lora_rank=config.lora_r,
        shards=config.world_size if config.sharding == "fsdp" else 1,
        ranks=config.world_size,
        checkpoint_every=config.checkpoint_every,
    )


def chosen_for_device(config: TrainConfig, shape: ModelShape, device_memory: int) -> tuple[TrainConfig, str | None]:
    """`config` with what the memory plan chose for this GPU where the spec left it open, and why.

    Every rank chooses from its own GPU's memory; the ranks of one pod share a node, whose GPUs are one model.
    The hash is unchanged (`config.hashed_fields` covers the spec's batch).
    """
    choice = memorychoice.choose(
        shape,
        training_plan(config),
        config.gradient_accumulation_steps,
        device_memory,
        checkpointing_open=config.memory_chooses_checkpointing,
        micro_batch_open=config.memory_chooses_batch,
    )
    chosen = dataclasses.replace(
        config,
        gradient_checkpointing=choice.plan.gradient_checkpointing,
        checkpoint_every=choice.plan.checkpoint_every,
        batch_size=choice.plan.micro_batch,
        gradient_accumulation_steps=choice.accumulation,
    )
    return chosen, choice.reason


def device_bytes(device: str | None) -> int | None:
    """Total memory of this rank's GPU; None on the CPU."""
    if device is None:
        return None
    return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)


def status_block(
    needed: MemoryEstimate, config: TrainConfig, device_memory: int | None, choice: str | None = None
) -> dict[str, object]:
    block: dict[str, object] = {
        "estimatedGib": round(needed.total / GIB, 2),
        "weightsGib": round(needed.weights / GIB, 2),
        "optimizerGib": round((needed.optimizer + needed.gradients) / GIB, 2),
        "activationsGib": round(needed.activations / GIB, 2),
        "gradientCheckpointing": config.gradient_checkpointing,
        "shards": config.world_size if config.sharding == "fsdp" else 1,
        "batchSize": config.batch_size,
        "gradientAccumulationSteps": config.gradient_accumulation_steps,
    }
    if config.gradient_checkpointing:
        block["checkpointEveryLayers"] = config.checkpoint_every
    if device_memory is not None:
        block["deviceGib"] = round(device_memory / GIB, 2)
    if choice is not None:
        block["choice"] = choice
    return block


def check(
    model_dir: Path, config: TrainConfig, device_memory: int | None, reporter: report.Reporter | None
) -> TrainConfig:
    """`config` as it runs on a GPU of `device_memory` bytes (None: the CPU): what the spec left open chosen, a
    job that cannot fit refused, the estimate reported through `reporter`. Without a plan (a config.json it
    cannot count) the config stays as resolved: checkpointing on with GPUs, the spec's micro-batch."""
    shape = read_shape(model_dir)
    if shape is None:
        return config
    choice = None
    if device_memory is not None:
        config, choice = chosen_for_device(config, shape, device_memory)
    plan = training_plan(config)
    needed = estimate(shape, plan)
    block = status_block(needed, config, device_memory, choice)
    jsonlog.event("memory_plan", **block)
    message = refusal(shape, plan, device_memory) if device_memory is not None else None
    if reporter is not None and message is not None:
        reporter.report({"status": {"memoryPlan": block}}, STAGE, time.monotonic(), force=True)
    elif reporter is not None:
        reporter.carry({"memoryPlan": block})  # with the first training report: no write of its own
    if message is not None:
        raise JobFailed(Reason.INSUFFICIENT_GPU_MEMORY, message)
    return config
