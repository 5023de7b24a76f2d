"""The training config: the job's spec (`finetune_operator.api.JobConfig`) with trainer defaults resolved, hashed.

`resolve` is the single place where unset spec fields get their trainer defaults. It is pure:
hardware facts (GPU count, bf16 support) come in as a `Device` value, so the same spec on the
same hardware always yields the same `TrainConfig` and the same `config_hash`. The hash covers
every setting that changes the training trajectory (hyperparameters, base model, dataset
content, world size, resolved precision) and nothing that does not (checkpoint interval,
retention), so a resumed run may change the latter but never the former.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from finetune_operator.api import FineTuningJobSpec, Precision, Quantization, Sharding, TrainingMethod, TrainingSpec

DEFAULT_BATCH_SIZE = 8
DEFAULT_GRADIENT_ACCUMULATION_STEPS = 1
DEFAULT_LEARNING_RATE = {TrainingMethod.LORA: 2e-4, TrainingMethod.FULL: 2e-5}
DEFAULT_MAX_SEQ_LENGTH = 1024
DEFAULT_WARMUP_RATIO = 0.03
DEFAULT_SEED = 42
DEFAULT_LORA_R = 16
# Dropout on the adapter input costs ~30 us/token on GPUs (a mask per LoRA layer) and rarely helps within the
# 1-3 epochs of a fine-tune: off unless the spec asks for it.
DEFAULT_LORA_DROPOUT = 0.0
# PEFT's keyword for "every nn.Linear except the output head": the per-architecture default,
# since the projection names differ between model families (q_proj, c_attn, query_key_value...).
ALL_LINEAR = "all-linear"
DEFAULT_SAVE_STEPS = 100
DEFAULT_KEEP_CHECKPOINTS = 3
BUILTIN_PREFIX = "builtin:"


@dataclass(frozen=True)
class Device:
    """What the trainer runs on; an input of `resolve` so that it stays pure."""

    cuda_devices: int
    bf16_supported: bool
    world_size: int = 1
    """Training processes (WORLD_SIZE): part of the effective batch size."""


@dataclass(frozen=True)
class TrainConfig:
    method: TrainingMethod
    epochs: int
    batch_size: int
    gradient_accumulation_steps: int
    learning_rate: float
    max_seq_length: int
    warmup_ratio: float
    seed: int
    precision: str
    """Resolved: bf16, fp16 or fp32."""
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    lora_target_modules: tuple[str, ...] | str
    base_model: str
    """`builtin:<name>` or the model folder: identifies the starting weights."""
    dataset_sha256: str
    world_size: int
    quantization: str
    """none, 4bit or 8bit: how the frozen base weights are loaded (LoRA only)."""
    sharding: str
    """Resolved: none (every rank holds the model) or fsdp (each rank 1/world_size of it); see `resolve_sharding`."""
    # Below: not part of the hash (they do not change what is learned).
    gradient_checkpointing: bool
    checkpoint_every: int
    """With gradient_checkpointing: every n-th decoder layer recomputes its activations (1: all of them)."""
    compile: bool
    """torch.compile the decoder layers while training (`compiled`)."""
    spec_batch: tuple[int, int]
    """(batch_size, gradient_accumulation_steps) from the spec and defaults: what the hash covers. On a GPU the
    memory plan may lower an unset micro-batch and raise the accumulation to keep the rows per optimizer step
    (`memorychoice`): the same training, so the hash and a resume on another GPU model do not depend on it."""
    memory_chooses_checkpointing: bool
    """gradientCheckpointing unset on a GPU: the memory plan decides it (`memory.check`)."""
    memory_chooses_batch: bool
    """batchSize unset on a GPU, all ranks in this pod: the memory plan may lower the micro-batch."""
    max_eval_loss: float | None
    min_tool_call_accuracy: float | None
    evals_per_epoch: int | None
    early_stopping_patience: int | None
    early_stopping_min_delta: float
    save_steps: int
    keep_checkpoints: int
    config_hash: str
    precision_note: str | None
    """Why the resolved precision differs from the requested one, if it does."""


_UNHASHED = {
    "gradient_checkpointing",
    "checkpoint_every",
    "compile",
    "spec_batch",
    "memory_chooses_checkpointing",
    "memory_chooses_batch",
    "max_eval_loss",
    "min_tool_call_accuracy",
    "evals_per_epoch",
    "early_stopping_patience",
    "early_stopping_min_delta",
    "save_steps",
    "keep_checkpoints",
    "config_hash",
    "precision_note",
}


def resolve_precision(requested: Precision, device: Device) -> tuple[str, str | None]:
    """bf16 where the GPU has it, fp16 on older GPUs, fp32 on CPU; impossible requests fall back loudly."""
    if device.cuda_devices == 0:
        if requested in (Precision.AUTO, Precision.FP32):
            return "fp32", None
        if requested is Precision.BF16:
            # CPUs run bf16 autocast correctly (if slowly): honour an explicit request.
            return "bf16", None
        return "fp32", "fp16 needs a GPU; training in fp32 on CPU"
    if requested is Precision.AUTO:
        return ("bf16", None) if device.bf16_supported else ("fp16", None)
    if requested is Precision.BF16 and not device.bf16_supported:
        return "fp16", "this GPU has no bf16 support (needs Ampere or newer); training in fp16"
    return str(requested.value), None


def resolve_sharding(requested: Sharding, method: TrainingMethod, device: Device) -> str:
    """fsdp or none. auto shards full fine-tuning across GPU ranks only (the rule documented on the API field).

    A single rank has nothing to shard across, so even an explicit fsdp resolves to none there.
    """
    if device.world_size < 2:
        return "none"
    if requested is Sharding.AUTO:
        return "fsdp" if method is TrainingMethod.FULL and device.cuda_devices > 0 else "none"
    return str(requested.value)


def default_compile(training: TrainingSpec, sharding: str, gpus: bool) -> bool:
    """Unset compile: on GPUs, except where compiled layers are not the path designed for (docs/trainer.md):
    bitsandbytes' quantized matmuls (graph breaks) and FSDP's per-layer hooks (compile before sharding)."""
    return gpus and training.quantization is Quantization.NONE and sharding == "none"


def resolve(
    spec: FineTuningJobSpec,
    *,
    base_model_path: Path | None,
    dataset_sha256: str,
    device: Device,
    save_steps: int | None = None,
) -> TrainConfig:
    training = spec.training
    early = spec.evaluation.early_stopping
    lora = training.lora
    lora_r = lora.r if lora and lora.r else DEFAULT_LORA_R
    precision, note = resolve_precision(training.precision, device)
    if spec.base_model.builtin is not None:
        base_model = BUILTIN_PREFIX + spec.base_model.builtin.value
    else:
        base_model = str(base_model_path)
    batch = (
        training.batch_size or DEFAULT_BATCH_SIZE,
        training.gradient_accumulation_steps or DEFAULT_GRADIENT_ACCUMULATION_STEPS,
    )
    gpus = device.cuda_devices > 0
    sharding = resolve_sharding(training.sharding, training.method, device)
    config = TrainConfig(
        method=training.method,
        epochs=training.epochs,
        batch_size=batch[0],
        gradient_accumulation_steps=batch[1],
        learning_rate=training.learning_rate or DEFAULT_LEARNING_RATE[training.method],
        max_seq_length=training.max_seq_length or DEFAULT_MAX_SEQ_LENGTH,
        warmup_ratio=training.warmup_ratio if training.warmup_ratio is not None else DEFAULT_WARMUP_RATIO,
        seed=training.seed if training.seed is not None else DEFAULT_SEED,
        precision=precision,
        lora_r=lora_r,
        lora_alpha=lora.alpha if lora and lora.alpha else 2 * lora_r,
        lora_dropout=lora.dropout if lora and lora.dropout is not None else DEFAULT_LORA_DROPOUT,
        lora_target_modules=tuple(lora.target_modules) if lora and lora.target_modules else ALL_LINEAR,
        base_model=base_model,
        dataset_sha256=dataset_sha256,
        world_size=device.world_size,
        quantization=training.quantization.value,
        sharding=sharding,
        # Unset on a GPU: on until the memory plan, which knows the model and the GPU, decides (`memory.check`).
        gradient_checkpointing=(
            training.gradient_checkpointing if training.gradient_checkpointing is not None else gpus
        ),
        checkpoint_every=1,
        compile=training.compile if training.compile is not None else default_compile(training, sharding, gpus),
        spec_batch=batch,
        memory_chooses_checkpointing=training.gradient_checkpointing is None and gpus,
        # Only where every rank is in this pod, whose GPUs are one model: nodes with different GPUs would choose
        # different accumulation steps, and DDP ranks running different micro-batch counts per step hang.
        memory_chooses_batch=training.batch_size is None and gpus and device.world_size <= device.cuda_devices,
        max_eval_loss=spec.evaluation.max_eval_loss,
        min_tool_call_accuracy=spec.evaluation.min_tool_call_accuracy,
        evals_per_epoch=spec.evaluation.evals_per_epoch,
        early_stopping_patience=early.patience if early else None,
        early_stopping_min_delta=early.min_delta if early else 0.0,
        save_steps=save_steps or DEFAULT_SAVE_STEPS,
        keep_checkpoints=DEFAULT_KEEP_CHECKPOINTS,
        config_hash="",
        precision_note=note,
    )
    return dataclasses.replace(config, config_hash=config_hash(config))


def hashed_fields(config: TrainConfig) -> dict[str, object]:
    fields = dataclasses.asdict(config)
    hashed = {key: value for key, value in fields.items() if key not in _UNHASHED}
    hashed["method"] = config.method.value
    hashed["batch_size"], hashed["gradient_accumulation_steps"] = config.spec_batch
    if isinstance(config.lora_target_modules, tuple):
        hashed["lora_target_modules"] = list(config.lora_target_modules)
    # Added after checkpoints existed: hashed only when set, so that an unquantized run resumes from checkpoints
    # an earlier trainer image wrote (an operator upgrade mid-run) instead of failing with CheckpointMismatch.
    if config.quantization == "none":
        del hashed["quantization"]
    if config.sharding == "none":  # likewise: sharded checkpoints (DCP) are a different format
        del hashed["sharding"]
    return hashed


def config_hash(config: TrainConfig) -> str:
    canonical = json.dumps(hashed_fields(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
