"""spec.training: the method and hyperparameters of a FineTuningJob (see `spec` for the whole spec).

Split from `spec` so the training knobs (method, precision, quantization, activation checkpointing) live in one
place; `memoryplan` reads the same enums to size a job.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from finetune_operator.api.base import ApiModel, cel

QUANTIZATION_NEEDS_LORA = (
    "training.quantization needs method lora: quantized base weights stay frozen and only a LoRA adapter trains"
)
FSDP_WITHOUT_QUANTIZATION = (
    "training.sharding fsdp needs quantization none: the trainer does not shard bitsandbytes-quantized weights"
)


class TrainingMethod(StrEnum):
    LORA = "lora"
    FULL = "full"


class Precision(StrEnum):
    AUTO = "auto"
    BF16 = "bf16"
    FP16 = "fp16"
    FP32 = "fp32"


class Quantization(StrEnum):
    NONE = "none"
    FOUR_BIT = "4bit"
    EIGHT_BIT = "8bit"


class Sharding(StrEnum):
    AUTO = "auto"
    NONE = "none"
    FSDP = "fsdp"


class LoraSpec(ApiModel):
    """LoRA adapter settings (method: lora)."""

    r: int | None = Field(default=None, ge=1, le=4096)
    """Adapter rank (default 16)."""
    alpha: int | None = Field(default=None, ge=1, le=8192)
    """Scaling numerator (default 2 x r)."""
    dropout: float | None = Field(default=None, ge=0.0, lt=1.0)
    """Dropout on the adapter input (0 <= x < 1, default 0: it costs GPU time and rarely helps in a few epochs)."""
    target_modules: list[Annotated[str, Field(min_length=1, max_length=253)]] | None = Field(
        default=None, min_length=1, max_length=64
    )
    """Module names to adapt; default: every linear projection of the architecture."""


class TrainingSpec(ApiModel):
    """Hyperparameters. Unset fields get the trainer's defaults, recorded in the job's ConfigMap."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "!has(self.quantization) || self.quantization == 'none' || !has(self.method) "
                    "|| self.method == 'lora'",
                    QUANTIZATION_NEEDS_LORA,
                    ".quantization",
                ),
                cel(
                    "!has(self.sharding) || self.sharding != 'fsdp' || !has(self.quantization) "
                    "|| self.quantization == 'none'",
                    FSDP_WITHOUT_QUANTIZATION,
                    ".sharding",
                ),
            ]
        }
    }

    method: TrainingMethod = TrainingMethod.LORA
    """lora (a PEFT adapter) or full (all weights)."""
    epochs: int = Field(default=3, ge=1, le=1000)
    """Passes over the training split (1..1000)."""
    batch_size: int | None = Field(default=None, ge=1, le=4096)
    """Per-device micro-batch size (default 8; unset on a single pod's GPUs, lowered where 8 does not fit, with
    more accumulation steps so each optimizer step trains on the same rows: status.memoryPlan says what ran)."""
    gradient_accumulation_steps: int | None = Field(default=None, ge=1, le=1024)
    """Micro-batches per optimizer step (default 1)."""
    learning_rate: float | None = Field(default=None, gt=0.0, lt=1.0)
    """Peak learning rate, 0 < x < 1 (default 2e-4 for lora, 2e-5 for full)."""
    max_seq_length: int | None = Field(default=None, ge=16, le=131072)
    """Tokens per packed training sequence, 16..131072 (default 1024)."""
    warmup_ratio: float | None = Field(default=None, ge=0.0, lt=1.0)
    """Fraction of steps with linear warmup before cosine decay, 0 <= x < 1 (default 0.03)."""
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    """Random seed (default 42)."""
    precision: Precision = Precision.AUTO
    """auto picks bf16 on GPUs that support it, fp16 on older GPUs and fp32 on CPU."""
    lora: LoraSpec | None = None
    quantization: Quantization = Quantization.NONE
    """Load the frozen base weights quantized (bitsandbytes), method lora only: 4bit is QLoRA (NF4 with double
    quantization, ~0.52 bytes per weight of the linear layers), 8bit is LLM.int8() (~1 byte). The adapter trains in
    full precision and is what the job saves; the base model is not merged into it."""
    gradient_checkpointing: bool | None = None
    """Recompute each layer's activations in the backward pass instead of keeping them: ~20% slower, activation
    memory from every layer down to one. Unset: off on CPU; on GPUs the memory plan picks off where the
    activations fit with 10% of the GPU to spare, else every other layer, else every layer (status.memoryPlan)."""
    compile: bool | None = None
    """torch.compile each decoder layer while training (inductor fuses its elementwise work: norms, rotary
    embeddings, activations, LoRA's adds). Costs a compile of about a minute when training starts; a compile
    error falls back to eager. Unset: on with GPUs for unquantized, unsharded training (where it was designed for,
    docs/trainer.md), off on CPU, where compiling costs more than it saves on small models."""
    sharding: Sharding = Sharding.AUTO
    """How the training ranks hold the model. none: every rank holds all of it (data parallel, DDP). fsdp: torch
    FSDP2 (fully_shard per decoder layer): each of N ranks holds 1/N of the parameters, gradients and optimizer
    state, gathering one layer at a time. auto: fsdp for method full with more than one GPU rank (its ~16 bytes
    per parameter of model state are what stops full fine-tuning from fitting), none otherwise: LoRA replicates
    only the frozen base, and DDP spares it the per-layer all-gathers. The choice depends on the spec and the rank
    count only, never on the GPU model, so a retry on other GPUs resumes the same checkpoints."""

    @model_validator(mode="after")
    def _quantization_needs_lora(self) -> TrainingSpec:
        if self.quantization is not Quantization.NONE and self.method is not TrainingMethod.LORA:
            raise ValueError(QUANTIZATION_NEEDS_LORA)
        if self.sharding is Sharding.FSDP and self.quantization is not Quantization.NONE:
            raise ValueError(FSDP_WITHOUT_QUANTIZATION)
        return self
