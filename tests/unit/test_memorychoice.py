"""What the trainer picks from a GPU's memory where the spec leaves it open (finetune_operator/api/memorychoice.py),
for Llama 3.1 8B LoRA at the default 8 x 1024 tokens, against the memory plan's own figures."""

from __future__ import annotations

from dataclasses import replace

import pytest

from finetune_operator.api import Quantization, TrainingMethod
from finetune_operator.api.memorychoice import SAFETY_MARGIN, choose
from finetune_operator.api.memoryplan import GIB, TrainingPlan, estimate
from finetune_operator.api.modelshape import LLAMA_3_1_8B, shape_from_config

MIB = 1024**2
H100 = 81559 * MIB  # what nvidia-smi reports for an H100 SXM 80GB
L4 = 23034 * MIB  # and for an L4 (24 GB)
LLAMA_8B = shape_from_config(LLAMA_3_1_8B)
DEFAULT = TrainingPlan(
    method=TrainingMethod.LORA,
    quantization=Quantization.NONE,
    seq_length=1024,
    micro_batch=8,
    gradient_checkpointing=True,
    precision="bf16",
)


def gib(plan: TrainingPlan) -> float:
    return round(estimate(LLAMA_8B, plan).total / GIB, 1)


def test_the_plans_figures_behind_the_choices() -> None:
    """Off at 8 x 1024 fits an H100 only without the margin; every other layer, or off at half the micro-batch,
    fit with it."""
    off = replace(DEFAULT, gradient_checkpointing=False)
    assert (gib(off), gib(replace(DEFAULT, checkpoint_every=2)), gib(DEFAULT)) == (76.8, 54.7, 31.1)
    assert gib(replace(off, micro_batch=4)) == 46.7
    assert (1 - SAFETY_MARGIN) * H100 / GIB < 76.8 < H100 / GIB


def test_h100_with_both_open_trains_without_recompute_at_half_the_micro_batch() -> None:
    choice = choose(LLAMA_8B, DEFAULT, 1, H100, checkpointing_open=True, micro_batch_open=True)
    assert (choice.plan.gradient_checkpointing, choice.plan.micro_batch, choice.accumulation) == (False, 4, 2)
    assert choice.reason == (
        "activation checkpointing off, micro-batch 4 x 2 accumulation steps: ~46.7 of 79.6 GiB, within the 10% margin"
    )


def test_h100_with_the_batch_set_checkpoints_every_other_layer() -> None:
    choice = choose(LLAMA_8B, DEFAULT, 1, H100, checkpointing_open=True, micro_batch_open=False)
    assert (choice.plan.gradient_checkpointing, choice.plan.checkpoint_every, choice.plan.micro_batch) == (True, 2, 8)
    assert choice.accumulation == 1


def test_l4_checkpoints_every_layer_at_a_micro_batch_of_two() -> None:
    choice = choose(LLAMA_8B, DEFAULT, 1, L4, checkpointing_open=True, micro_batch_open=True)
    plan = choice.plan
    assert (plan.gradient_checkpointing, plan.checkpoint_every, plan.micro_batch, choice.accumulation) == (
        True,
        1,
        2,
        4,
    )
    assert estimate(LLAMA_8B, plan).total <= (1 - SAFETY_MARGIN) * L4


def test_l4_with_the_batch_set_keeps_it_and_is_left_to_the_refusal() -> None:
    choice = choose(LLAMA_8B, DEFAULT, 1, L4, checkpointing_open=True, micro_batch_open=False)
    assert (choice.plan, choice.accumulation) == (DEFAULT, 1)
    assert choice.reason == "nothing the trainer may choose fits this GPU"


@pytest.mark.parametrize("accumulation", [1, 3, 5])
def test_the_rows_per_optimizer_step_stay(accumulation: int) -> None:
    choice = choose(LLAMA_8B, DEFAULT, accumulation, L4, checkpointing_open=False, micro_batch_open=True)
    assert choice.plan.micro_batch * choice.accumulation == 8 * accumulation
    assert choice.plan.micro_batch <= 8


def test_the_margin_is_given_up_before_the_job_is_refused() -> None:
    """A GPU on which 8 x 1024 fits only with every layer checkpointed and without the margin: that, not a refusal."""
    device = int(estimate(LLAMA_8B, DEFAULT).total / (1 - SAFETY_MARGIN / 2))
    choice = choose(LLAMA_8B, DEFAULT, 1, device, checkpointing_open=True, micro_batch_open=False)
    assert (choice.plan, choice.reason is not None and choice.reason.endswith("above the 10% margin")) == (
        DEFAULT,
        True,
    )


def test_what_the_spec_set_is_never_changed() -> None:
    choice = choose(LLAMA_8B, DEFAULT, 1, H100, checkpointing_open=False, micro_batch_open=False)
    assert (choice.plan, choice.accumulation, choice.reason) == (DEFAULT, 1, None)
