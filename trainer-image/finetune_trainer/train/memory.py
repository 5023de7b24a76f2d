"""The memory plan at run time: size the job from the base model's config.json before loading any weight.

On a GPU, a job the plan says cannot fit fails at once with `InsufficientGPUMemory` (exit 11: the spec is
immutable, so a retry would be refused again) and the plan's message: the estimate, the GPU's memory and the
cheapest change that fits. Rank 0 reports the estimate in `status.memoryPlan`, on CPU too, where nothing is
refused (host memory is the pod's limit, enforced by the kubelet). A config.json the plan cannot read (an
architecture it does not count) is logged and skipped, never a reason to refuse a job.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from finetune_operator.api import Quantization
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
    )


def device_bytes(device: str | None) -> int | None:
    """Total memory of this rank's GPU; None on the CPU."""
    if device is None:
        return None
    return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)


def status_block(needed: MemoryEstimate, plan: TrainingPlan, device_memory: int | None) -> dict[str, object]:
    block: dict[str, object] = {
        "estimatedGib": round(needed.total / GIB, 2),
        "weightsGib": round(needed.weights / GIB, 2),
        "optimizerGib": round((needed.optimizer + needed.gradients) / GIB, 2),
        "activationsGib": round(needed.activations / GIB, 2),
        "gradientCheckpointing": plan.gradient_checkpointing,
        "shards": plan.shards,
    }
    if device_memory is not None:
        block["deviceGib"] = round(device_memory / GIB, 2)
    return block


def check(model_dir: Path, config: TrainConfig, device_memory: int | None, reporter: report.Reporter | None) -> None:
    """Refuse a job that cannot fit a GPU of `device_memory` bytes; report the estimate through `reporter`."""
    shape = read_shape(model_dir)
    if shape is None:
        return
    plan = training_plan(config)
    needed = estimate(shape, plan)
    block = status_block(needed, plan, device_memory)
    jsonlog.event("memory_plan", **block)
    if reporter is not None:
        reporter.report({"status": {"memoryPlan": block}}, STAGE, time.monotonic(), force=True)
    message = refusal(shape, plan, device_memory) if device_memory is not None else None
    if message is not None:
        raise JobFailed(Reason.INSUFFICIENT_GPU_MEMORY, message)
