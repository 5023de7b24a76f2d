"""What the trainer picks from a GPU's memory when the spec leaves it open: activation checkpointing and the
micro-batch.

Activation checkpointing recomputes each checkpointed layer's forward pass in the backward pass (~30% more GEMM
work for 8B LoRA, docs/trainer.md "Expected GPU throughput"): it is only worth paying where the activations
would not fit otherwise. With `training.gradientCheckpointing` unset on GPUs the choice is, fastest first: off,
every other layer (transformers' `every_n_layers=2`), every layer.

With `training.batchSize` unset the micro-batch is chosen too, keeping the rows per optimizer step (the default
batch times `gradientAccumulationSteps`): a smaller micro-batch with more accumulation steps trains on the same
rows per step in the same order, so the trajectory (and the checkpoint config hash, see `config.hashed_fields`)
does not depend on the GPU's memory, and a retry on another GPU model resumes the same checkpoints. The
micro-batch is only ever lowered from the default, to a divisor of the rows per step.

Margin: the estimate is arithmetic (`memoryplan`), never measured on these GPUs. A wrong "fits" costs an
out-of-memory at the first step of every attempt, a wrong "does not fit" ~15-30% speed; so a choice the trainer
makes itself must leave `SAFETY_MARGIN` of the GPU free beyond the plan's own allowance (1 GiB and 10% of the
activations). 10%: on an 80 GB H100, 8 GiB, the size of the plan's largest uncertain term for 8B at 8k tokens
(the logits, which TRL's chunked LM head may or may not hold whole: 9.8 GiB). When nothing fits with the margin,
the most memory-saving setting that fits without it is taken, which is what the user would get by setting it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from finetune_operator.api.memoryplan import GIB, TrainingPlan, estimate
from finetune_operator.api.modelshape import ModelShape

SAFETY_MARGIN = 0.10
MIN_MICRO_BATCH_TOKENS = 4096
"""Avoiding recompute by lowering the micro-batch stops here: at 4096 tokens an 8B layer's GEMMs (4096 x 4096 by
4096 x 14336) are compute-bound with ~27 waves of 128 x 128 tiles on 132 SMs; below it recompute at the larger
micro-batch is the better trade."""

OFF, EVERY_OTHER_LAYER, EVERY_LAYER = (False, 1), (True, 2), (True, 1)
"""(gradient_checkpointing, checkpoint_every), fastest first."""


@dataclass(frozen=True)
class MemoryChoice:
    plan: TrainingPlan
    """The plan as the trainer runs it: checkpointing and micro-batch chosen."""
    accumulation: int
    """Gradient accumulation steps keeping the rows per optimizer step."""
    reason: str | None
    """Why, for status.memoryPlan; None when the spec decided both."""


def describe_checkpointing(plan: TrainingPlan) -> str:
    if not plan.gradient_checkpointing:
        return "activation checkpointing off"
    if plan.checkpoint_every == 1:
        return "every layer checkpointed"
    return (
        "every other layer checkpointed"
        if plan.checkpoint_every == 2
        else f"1 layer in {plan.checkpoint_every} checkpointed"
    )


def _micro_batches(plan: TrainingPlan, accumulation: int, open_: bool) -> list[int]:
    """Candidate micro-batches, largest first: divisors of the rows per step, never above the default."""
    if not open_:
        return [plan.micro_batch]
    rows = plan.micro_batch * accumulation
    return [size for size in range(plan.micro_batch, 0, -1) if rows % size == 0]


def _fits(shape: ModelShape, plan: TrainingPlan, budget: float) -> bool:
    return estimate(shape, plan).total <= budget


def _first_fit(
    shape: ModelShape, candidates: list[TrainingPlan], device_bytes: int
) -> tuple[TrainingPlan, float] | None:
    for margin in (SAFETY_MARGIN, 0.0):
        for candidate in candidates:
            if _fits(shape, candidate, device_bytes * (1 - margin)):
                return candidate, margin
    return None


def _candidates(plan: TrainingPlan, micro_batches: list[int], checkpointing_open: bool) -> list[TrainingPlan]:
    """Plans in order of preference: less recompute first, at micro-batches of at least MIN_MICRO_BATCH_TOKENS
    (or the largest allowed); then the most memory-saving checkpointing at every allowed micro-batch."""
    settings = (
        [OFF, EVERY_OTHER_LAYER, EVERY_LAYER]
        if checkpointing_open
        else [(plan.gradient_checkpointing, plan.checkpoint_every)]
    )
    large = [size for size in micro_batches if size * plan.seq_length >= MIN_MICRO_BATCH_TOKENS] or micro_batches[:1]
    ordered = [(setting, size) for setting in settings for size in large]
    ordered += [(settings[-1], size) for size in micro_batches]
    return [
        replace(plan, gradient_checkpointing=checkpointing, checkpoint_every=every, micro_batch=size)
        for (checkpointing, every), size in ordered
    ]


def choose(
    shape: ModelShape,
    plan: TrainingPlan,
    accumulation: int,
    device_bytes: int,
    *,
    checkpointing_open: bool,
    micro_batch_open: bool,
) -> MemoryChoice:
    """The fastest plan that fits `device_bytes` with the margin, among what the spec left open."""
    if not (checkpointing_open or micro_batch_open):
        return MemoryChoice(plan, accumulation, None)
    rows = plan.micro_batch * accumulation
    micro_batches = _micro_batches(plan, accumulation, micro_batch_open)
    found = _first_fit(shape, _candidates(plan, micro_batches, checkpointing_open), device_bytes)
    if found is None:
        # Nothing fits: keep the most memory-saving setting at the spec's micro-batch; the plan's refusal follows.
        chosen = _candidates(plan, micro_batches[:1], checkpointing_open)[-1]
        return MemoryChoice(chosen, accumulation, "nothing the trainer may choose fits this GPU")
    chosen, margin = found
    needed = estimate(shape, chosen).total
    reason = (
        f"{describe_checkpointing(chosen)}, micro-batch {chosen.micro_batch} x {rows // chosen.micro_batch} "
        f"accumulation steps: ~{needed / GIB:.1f} of {device_bytes / GIB:.1f} GiB"
        + (f", within the {SAFETY_MARGIN:.0%} margin" if margin else f", above the {SAFETY_MARGIN:.0%} margin")
    )
    return MemoryChoice(chosen, rows // chosen.micro_batch, reason)
