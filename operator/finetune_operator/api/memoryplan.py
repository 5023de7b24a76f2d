"""The memory plan: per-GPU memory of a training job, estimated before any weight is loaded.

The trainer runs `check` on a GPU before loading the base model and refuses a job that cannot fit
(`InsufficientGPUMemory`, with the cheapest change that fits) instead of failing minutes later with a CUDA
out-of-memory error, or swapping a whole node's worth of weights in first. Pure arithmetic on the model's
shape (`modelshape`), checked against published figures (tests/unit/test_memoryplan.py):

- ZeRO (Rajbhandari et al., 2020, section 3.1): mixed-precision Adam keeps 16 bytes per parameter (weights,
  gradients, fp32 master copy, two moments): "a model with 7.5B parameters ... requires 120 GB". This trainer's
  full fine-tuning holds fp32 weights and fp32 gradients with autocast (4 + 4 + 8 = 16 bytes), on every GPU
  when its ranks replicate the model (DDP); sharded over N ranks (`training.sharding: fsdp`) each holds 1/N of
  them (ZeRO stage 3, section 5.1: "memory reduction is linear with the data parallel degree", 7.5B on 64 GPUs
  -> 1.88 GB of model states per GPU), plus the working set of FSDP (`fsdp_working_bytes`).
- LoRA (Hu et al., 2021, section 4.2): on GPT-3 175B, "VRAM consumption during training" falls "from 1.2TB to
  350GB": the frozen 16-bit weights (2 bytes x 175B) plus a negligible adapter.
- QLoRA (Dettmers et al., 2023, section 3): NF4 with double quantization stores 4 + 0.127 bits per weight
  of the quantized layers, and fine-tunes a 65B model on a single 48 GB GPU.
- Activations (Korthikanti et al., 2022, "Reducing Activation Recomputation in Large Transformer Models",
  section 4.1): 34 x s x b x h bytes per layer in 16 bits, plus 5 x a x s^2 x b for the attention scores, which
  the SDPA and flash-attention kernels used here never store. 34 = 11 (attention) + 19 (a 4h MLP) + 4 (two
  norms); a gated MLP of width i stores 2h + 8i instead of 19h. With activation checkpointing only each
  layer's input (2 x h bytes per token) is kept, plus one layer's activations while it is recomputed.

Sharded loading (accelerate's `cpu_ram_efficient_loading`, as torchtitan and the FSDP2 tutorials load): rank 0
reads the base model into host memory and broadcasts it one tensor at a time, each rank keeping its shard, so a GPU
holds at most its shards and one whole tensor while the model loads (`MemoryEstimate.loading`); rank 0's host
memory holds the whole model once (~132 GiB for 70B in bf16), which the GPU plan does not count.

Beyond the papers, the plan counts the logits (compute dtype, plus the fp32 log-softmax the cross-entropy keeps
and its fp32 gradient: 1.3 MB per token for Llama 3's 128k vocabulary) and an allowance for the CUDA context,
NCCL buffers and allocator fragmentation (`CONTEXT_BYTES` plus `FRAGMENTATION` of the activations), which no
paper pins down.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from finetune_operator.api.modelshape import ModelShape
from finetune_operator.api.training import Quantization, TrainingMethod

GIB = 1024**3
CONTEXT_BYTES = 1 * GIB
FRAGMENTATION = 0.10
ADAM_BYTES = 8  # two fp32 moments per fp32 trainable parameter (torch's AdamW keeps them in the parameter's dtype)
MASTER_BYTES = 4  # trainable parameters and their gradients are fp32
NF4_DOUBLE_QUANT_BYTES = (4 + 0.127) / 8
INT8_BYTES = 1.0


@dataclass(frozen=True)
class TrainingPlan:
    """The settings of a job that decide its memory, as the trainer resolves them."""

    method: TrainingMethod
    quantization: Quantization
    seq_length: int
    micro_batch: int
    gradient_checkpointing: bool
    precision: str
    """bf16, fp16 or fp32: the dtype of activations, and of LoRA's frozen weights with bf16."""
    lora_rank: int = 16
    shards: int = 1
    """Ranks the model is sharded across (FSDP); 1: every rank holds all of it."""
    ranks: int = 1
    """Training ranks of the job (world size): what sharding could spread the model over."""
    checkpoint_every: int = 1
    """With gradient_checkpointing: every n-th decoder layer recomputes (transformers' `every_n_layers`), the
    others keep their activations."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per GPU, by what holds them."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    overhead: int

    loading: int = 0
    """A sharded rank's peak while the base model loads: its shards and the one whole tensor being broadcast."""

    @property
    def total(self) -> int:
        training = self.weights + self.gradients + self.optimizer + self.activations + self.overhead
        return max(training, self.loading)

    def summary(self) -> str:
        parts = ("weights", "gradients", "optimizer", "activations", "overhead")
        summary = ", ".join(f"{name} {getattr(self, name) / GIB:.1f}" for name in parts)
        training = self.weights + self.gradients + self.optimizer + self.activations + self.overhead
        return summary + (f"; loading {self.loading / GIB:.1f}" if self.loading > training else "")


def _compute_bytes(precision: str) -> int:
    return 4 if precision == "fp32" else 2


def _frozen_weight_bytes(shape: ModelShape, plan: TrainingPlan) -> float:
    """LoRA's frozen base: 16-bit with bf16 (else fp32, as `weights_dtype` loads it), linear layers quantized."""
    dense = 2 if plan.precision == "bf16" else 4
    linear = {
        Quantization.NONE: dense,
        Quantization.EIGHT_BIT: INT8_BYTES,
        Quantization.FOUR_BIT: NF4_DOUBLE_QUANT_BYTES,
    }[plan.quantization]
    return shape.linear_parameters * linear + shape.other_parameters * dense


def activation_bytes(shape: ModelShape, plan: TrainingPlan) -> int:
    """Activations of one micro-batch kept for the backward pass, and the logits."""
    half = _compute_bytes(plan.precision) / 2  # Korthikanti's coefficients count 16-bit values as 2 bytes
    h, i = shape.hidden_size, shape.intermediate_size
    mlp = 2 * h + 8 * i if shape.gated_mlp else 2 * h + 4 * i + h
    per_layer = half * (11 * h + mlp + 4 * h)
    tokens = plan.seq_length * plan.micro_batch
    # A checkpointed layer keeps only its input, and the backward pass recomputes one such layer at a time;
    # transformers checkpoints layers 0, n, 2n... (`layer_index % every_n_layers == 0`).
    checkpointed = -(-shape.layers // plan.checkpoint_every) if plan.gradient_checkpointing else 0
    kept = checkpointed * 2 * half * h + (shape.layers - checkpointed) * per_layer + (per_layer if checkpointed else 0)
    # The logits in the compute dtype, the fp32 log-softmax the loss keeps, and its fp32 gradient.
    logits = shape.vocab_size * (_compute_bytes(plan.precision) + 8)
    return int(tokens * (kept + logits))


def fsdp_working_bytes(shape: ModelShape, plan: TrainingPlan) -> int:
    """What a sharded rank holds unsharded beyond its shards: the gathered parameters of two decoder layers (the
    one computing and the one prefetched) and of the root module (embeddings, output head, final norm: FSDP2 keeps
    the root gathered between forward and backward) in the compute dtype, and one layer's full fp32 gradients
    before their reduce-scatter (full fine-tuning)."""
    if plan.shards == 1:
        return 0
    layer = shape.layer_linear_parameters + (shape.other_parameters - _root_parameters(shape)) // shape.layers
    gathered = (2 * layer + _root_parameters(shape)) * _compute_bytes(plan.precision)
    gradients = layer * MASTER_BYTES if plan.method is TrainingMethod.FULL else 0
    return gathered + gradients


def loading_bytes(shape: ModelShape, plan: TrainingPlan, weights: float) -> int:
    """A sharded rank's peak while rank 0 broadcasts the base model: its shards of `weights` (the model's bytes as
    loaded) and one whole tensor in flight, the largest (the embeddings or an MLP matrix)."""
    if plan.shards == 1:
        return 0
    dense = MASTER_BYTES if plan.method is TrainingMethod.FULL or plan.precision != "bf16" else 2
    largest = shape.hidden_size * max(shape.vocab_size, shape.intermediate_size) * dense
    return int(weights) // plan.shards + largest + CONTEXT_BYTES


def _root_parameters(shape: ModelShape) -> int:
    embeddings = shape.vocab_size * shape.hidden_size * (1 if shape.tied_embeddings else 2)
    return embeddings + shape.learned_positions * shape.hidden_size + shape.hidden_size


def estimate(shape: ModelShape, plan: TrainingPlan) -> MemoryEstimate:
    """Per-GPU bytes of `plan` on a model of `shape`: all of it per rank, or 1/shards of the model states."""
    # Trainable parameters are fp32 (their gradients and Adam moments too), except QLoRA's adapter, which TRL
    # casts to bf16 as the QLoRA paper does: then 2 + 2 + 4 bytes.
    trainable_bytes = 2 if plan.quantization is not Quantization.NONE else MASTER_BYTES
    if plan.method is TrainingMethod.FULL:
        trainable = shape.parameters
        weights = float(shape.parameters * MASTER_BYTES)
    else:
        trainable = shape.lora_parameters(plan.lora_rank)
        weights = _frozen_weight_bytes(shape, plan) + trainable * trainable_bytes
    activations = activation_bytes(shape, plan)
    return MemoryEstimate(
        weights=int(weights) // plan.shards + fsdp_working_bytes(shape, plan),
        gradients=trainable * trainable_bytes // plan.shards,
        optimizer=trainable * trainable_bytes * ADAM_BYTES // MASTER_BYTES // plan.shards,
        activations=activations,
        overhead=CONTEXT_BYTES + int(FRAGMENTATION * activations),
        loading=loading_bytes(shape, plan, weights),
    )


def fits(shape: ModelShape, plan: TrainingPlan, device_bytes: int) -> bool:
    return estimate(shape, plan).total <= device_bytes


def _same_training(shape: ModelShape, plan: TrainingPlan, device_bytes: int) -> str | None:
    """The first change that fits without changing what is learned (speed or per-step layout only)."""
    if not plan.gradient_checkpointing:
        plan = replace(plan, gradient_checkpointing=True)
        if fits(shape, plan, device_bytes):
            return "training.gradientCheckpointing: true"
    for micro_batch in range(plan.micro_batch - 1, 0, -1):
        if fits(shape, replace(plan, micro_batch=micro_batch), device_bytes):
            return f"training.batchSize: {micro_batch} (raise gradientAccumulationSteps to keep the batch)"
    return None


def _lighter_method(shape: ModelShape, plan: TrainingPlan, device_bytes: int) -> str | None:
    """The first lighter method that fits: LoRA, then LoRA on 8-bit, then on 4-bit weights."""
    small = replace(plan, gradient_checkpointing=True, micro_batch=1)
    # Quantized weights are not sharded by this trainer: those candidates are sized unsharded.
    candidates = [(TrainingMethod.LORA, Quantization.NONE)] if plan.method is TrainingMethod.FULL else []
    candidates += [(TrainingMethod.LORA, Quantization.EIGHT_BIT), (TrainingMethod.LORA, Quantization.FOUR_BIT)]
    for method, quantization in candidates:
        if (method, quantization) == (plan.method, plan.quantization):
            continue
        candidate = replace(small, method=method, quantization=quantization)
        if quantization is not Quantization.NONE:
            candidate = replace(candidate, shards=1)
        if fits(shape, candidate, device_bytes):
            if quantization is Quantization.NONE:
                return "training.method: lora"
            return f"training.method: lora with training.quantization: {quantization.value}"
    return None


SHARDING_GPUS = (2, 4, 8)
"""GPUs per pod the advice considers for sharding (the GPU counts of common GPU servers)."""


def _shard_own_ranks(shape: ModelShape, plan: TrainingPlan, device_bytes: int) -> str | None:
    """Sharding over the ranks the job already has, when that fits: same training, no other GPUs."""
    if plan.shards > 1 or plan.ranks < 2 or plan.quantization is not Quantization.NONE:
        return None
    return "training.sharding: fsdp" if fits(shape, replace(plan, shards=plan.ranks), device_bytes) else None


def _more_gpus_sharded(shape: ModelShape, plan: TrainingPlan, device_bytes: int) -> str | None:
    """The fewest GPUs of one pod over which the job, sharded, fits (quantized LoRA is not sharded here)."""
    if plan.quantization is not Quantization.NONE:
        return None
    for gpus in SHARDING_GPUS:
        if gpus > plan.ranks and fits(shape, replace(plan, shards=gpus, ranks=gpus), device_bytes):
            return f"{gpus} GPUs (resources.gpus: {gpus}) with training.sharding: fsdp"
    return None


def cheapest_change(shape: ModelShape, plan: TrainingPlan, device_bytes: int) -> str:
    """What to change so the job fits `device_bytes` per GPU, cheapest first (for the user-facing message).

    First what keeps both the training and the GPUs (activation checkpointing, a smaller micro-batch, sharding over
    the job's own ranks); else a lighter method and more GPUs sharded, both named: one changes what is learned,
    the other what the job costs, and only the user can weigh them.
    """
    change = _same_training(shape, plan, device_bytes) or _shard_own_ranks(shape, plan, device_bytes)
    if change:
        return change
    options = [_lighter_method(shape, plan, device_bytes), _more_gpus_sharded(shape, plan, device_bytes)]
    return ", or ".join(option for option in options if option) or (
        "GPUs with more memory (no setting of this trainer fits, even sharded over 8 GPUs)"
    )


def refusal(shape: ModelShape, plan: TrainingPlan, device_bytes: int) -> str | None:
    """The message refusing `plan` on a GPU of `device_bytes`, or None when it fits."""
    needed = estimate(shape, plan)
    if needed.total <= device_bytes:
        return None
    return (
        f"needs ~{needed.total / GIB:.1f} GiB per GPU ({needed.summary()} GiB), {device_bytes / GIB:.1f} GiB "
        f"available: use {cheapest_change(shape, plan, device_bytes)}"
    )
