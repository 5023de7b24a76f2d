"""The memory plan against published figures (the papers cited in finetune_operator/api/memoryplan.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from finetune_operator.api import Quantization, TrainingMethod
from finetune_operator.api.memoryplan import (
    GIB,
    TrainingPlan,
    cheapest_change,
    estimate,
    fsdp_working_bytes,
    refusal,
)
from finetune_operator.api.modelshape import (
    LLAMA_3_1_8B,
    LLAMA_3_1_70B,
    ModelShape,
    UnsupportedConfig,
    shape_from_config,
)

GB = 10**9
LLAMA_8B = shape_from_config(LLAMA_3_1_8B)
LLAMA_70B = shape_from_config(LLAMA_3_1_70B)
# LLaMA 1 65B (Touvron et al., 2023, table 2): the model QLoRA fine-tunes on one 48 GB GPU.
LLAMA_65B = shape_from_config(
    {
        "model_type": "llama",
        "hidden_act": "silu",
        "hidden_size": 8192,
        "intermediate_size": 22016,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "vocab_size": 32000,
        "tie_word_embeddings": False,
    }
)
# GPT-3 175B (Brown et al., 2020, table 2.1): d_model 12288, 96 layers, 96 heads, 4x MLP, 50257-token vocabulary.
GPT3 = shape_from_config(
    {"model_type": "gpt2", "n_embd": 12288, "n_layer": 96, "n_head": 96, "vocab_size": 50257, "n_positions": 2048}
)


def plan(**changes: object) -> TrainingPlan:
    base = TrainingPlan(
        method=TrainingMethod.LORA,
        quantization=Quantization.NONE,
        seq_length=4096,
        micro_batch=1,
        gradient_checkpointing=True,
        precision="bf16",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def model_states(shape: ModelShape, training: TrainingPlan) -> int:
    needed = estimate(shape, training)
    return needed.weights + needed.gradients + needed.optimizer


def test_parameter_counts_match_the_published_models() -> None:
    assert round(LLAMA_8B.parameters / 1e9, 2) == 8.03  # Llama 3.1 8B model card
    assert round(LLAMA_70B.parameters / 1e9, 1) == 70.6  # Llama 3.1 70B model card
    assert round(LLAMA_65B.parameters / 1e9, 1) == 65.3  # LLaMA 65B: "65.2B" (the paper rounds the embeddings)
    assert round(GPT3.parameters / 1e9) == 175
    # PEFT's print_trainable_parameters for Llama 3 8B, r=16 on q,k,v,o,gate,up,down: 41,943,040.
    assert LLAMA_8B.lora_parameters(16) == 41_943_040


def test_parameter_count_equals_a_real_model(tmp_path: object) -> None:
    """The count from config.json equals the instantiated model's, for both families the plan knows exactly."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    llama = LlamaConfig(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=176,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=False,
    )
    gpt2 = GPT2Config(vocab_size=300, n_embd=64, n_layer=3, n_head=4, n_positions=128)
    for config, model_class in ((llama, LlamaForCausalLM), (gpt2, GPT2LMHeadModel)):
        model = model_class(config)
        assert shape_from_config(config.to_dict()).parameters == sum(p.numel() for p in model.parameters())


def test_zero_mixed_precision_adam_is_16_bytes_per_parameter() -> None:
    """ZeRO, section 3.1: a 7.5B-parameter model needs 120 GB of model states (weights, gradients, Adam)."""
    full = plan(method=TrainingMethod.FULL)
    per_parameter = model_states(LLAMA_8B, full) / LLAMA_8B.parameters
    assert per_parameter * 7.5e9 == pytest.approx(120 * GB, rel=0.001)


def test_zero_stage_3_divides_the_model_states_by_the_ranks() -> None:
    """ZeRO, section 5.1 (P_os+g+p): 7.5B on 64 GPUs holds 1.88 GB of model states per GPU, plus FSDP's working set.

    The working set: two gathered decoder layers and the root (embeddings, head) in bf16, one layer's fp32
    gradients: for Llama 3.1 8B 2 x 218M + 1.05B parameters x 2 bytes + 218M x 4 bytes, ~3.8 GB.
    """
    sharded = plan(method=TrainingMethod.FULL, shards=64, ranks=64)
    per_parameter = (model_states(LLAMA_8B, sharded) - fsdp_working_bytes(LLAMA_8B, sharded)) / LLAMA_8B.parameters
    assert per_parameter * 7.5e9 == pytest.approx(1.875 * GB, rel=0.001)
    assert fsdp_working_bytes(LLAMA_8B, sharded) == pytest.approx(3.8 * GB, rel=0.05)
    assert fsdp_working_bytes(LLAMA_8B, plan(method=TrainingMethod.FULL)) == 0


def test_8b_full_fine_tuning_fits_80_gb_only_sharded() -> None:
    full = plan(method=TrainingMethod.FULL)
    assert refusal(LLAMA_8B, replace(full, ranks=8), 80 * GIB) is not None
    assert refusal(LLAMA_8B, replace(full, shards=8, ranks=8), 80 * GIB) is None


def test_70b_lora_sharded_over_8_gpus_fits_80_gb_loading_included() -> None:
    """Sharded loading: rank 0 broadcasts the 132 GiB bf16 base tensor by tensor, so no GPU holds more than its
    1/8 (16.4 GiB) plus the largest tensor in flight (the 128,256 x 8,192 bf16 embeddings, 2 GiB) while loading."""
    sharded = estimate(LLAMA_70B, plan(shards=8, ranks=8))
    in_flight = 128_256 * 8_192 * 2
    assert sharded.loading == pytest.approx(LLAMA_70B.parameters * 2 / 8 + in_flight + GIB, rel=0.01)
    assert sharded.loading < sharded.total < 40 * GIB
    assert refusal(LLAMA_70B, plan(shards=8, ranks=8), 80 * GIB) is None
    # Unsharded it still cannot fit: the whole bf16 base on every GPU.
    assert refusal(LLAMA_70B, plan(ranks=8), 80 * GIB) is not None


def test_lora_on_gpt3_holds_350_gb_of_weights() -> None:
    """LoRA, section 4.2: GPT-3 175B training VRAM "from 1.2TB to 350GB" (fp16 frozen weights + the adapter)."""
    needed = estimate(GPT3, plan(lora_rank=4))
    assert needed.weights == pytest.approx(350 * GB, rel=0.01)
    assert needed.gradients + needed.optimizer < 0.01 * needed.weights


def test_qlora_fine_tunes_65b_on_one_48_gb_gpu() -> None:
    """QLoRA: 4.127 bits per quantized weight; Guanaco 65B was trained on a single 48 GB GPU (r=64, 512 tokens).

    The adapter is bf16 as in the paper (TRL casts it): 2 bytes of weights, 2 of gradients, 4 of Adam moments.
    """
    qlora = plan(quantization=Quantization.FOUR_BIT, lora_rank=64, seq_length=512)
    needed = estimate(LLAMA_65B, qlora)
    quantized = LLAMA_65B.linear_parameters * 4.127 / 8
    adapter = LLAMA_65B.lora_parameters(64) * 2
    assert needed.weights == pytest.approx(quantized + LLAMA_65B.other_parameters * 2 + adapter, rel=0.001)
    assert needed.optimizer == LLAMA_65B.lora_parameters(64) * 4
    assert 30 * GB < needed.total < 48 * GB
    # The paper's 16-bit baseline needs more than 780 GB for full fine-tuning.
    assert estimate(LLAMA_65B, plan(method=TrainingMethod.FULL)).total > 780 * GB


def test_activations_follow_korthikanti_without_checkpointing() -> None:
    """34 x s x b x h bytes per layer in 16 bits for a 4h MLP; the logits are counted separately."""
    gpt = replace(GPT3, layers=1)
    needed = estimate(gpt, plan(gradient_checkpointing=False, seq_length=2048, micro_batch=1))
    logits = 2048 * gpt.vocab_size * (2 + 8)
    assert needed.activations - logits == 34 * 2048 * 1 * gpt.hidden_size


def test_checkpointing_keeps_one_layer_input_per_layer() -> None:
    without = estimate(LLAMA_8B, plan(gradient_checkpointing=False)).activations
    with_checkpointing = estimate(LLAMA_8B, plan()).activations
    assert with_checkpointing < without / 4


def test_a_job_that_fits_is_not_refused() -> None:
    assert refusal(LLAMA_8B, plan(), 80 * GIB) is None


def test_refusal_names_estimate_device_and_the_cheapest_change() -> None:
    message = refusal(LLAMA_8B, plan(micro_batch=8), 24 * GIB)
    assert message is not None
    assert message.startswith("needs ~74.6 GiB per GPU (weights 15.1, ")
    assert "24.0 GiB available: use training.batchSize: 1 (raise gradientAccumulationSteps" in message


@pytest.mark.parametrize(
    ("shape", "training", "device_gib", "change"),
    [
        (LLAMA_8B, plan(gradient_checkpointing=False, micro_batch=4), 50, "training.gradientCheckpointing: true"),
        (
            LLAMA_8B,
            plan(micro_batch=8),
            24,
            "training.batchSize: 1 (raise gradientAccumulationSteps to keep the batch)",
        ),
        (
            LLAMA_8B,
            plan(),
            18,
            "training.method: lora with training.quantization: 8bit, "
            "or 4 GPUs (resources.gpus: 4) with training.sharding: fsdp",
        ),
        (
            LLAMA_70B,
            plan(),
            80,
            # Sharded loading: no rank holds the whole 132 GiB bf16 base, so 4 GPUs hold it sharded.
            "training.method: lora with training.quantization: 4bit, "
            "or 4 GPUs (resources.gpus: 4) with training.sharding: fsdp",
        ),
        (
            LLAMA_8B,
            plan(method=TrainingMethod.FULL),
            80,
            "training.method: lora, or 2 GPUs (resources.gpus: 2) with training.sharding: fsdp",
        ),
        (LLAMA_8B, plan(method=TrainingMethod.FULL, ranks=8), 80, "training.sharding: fsdp"),
        (
            LLAMA_8B,
            plan(method=TrainingMethod.FULL, shards=8, ranks=8, micro_batch=8),
            40,
            "training.batchSize: 2 (raise gradientAccumulationSteps to keep the batch)",
        ),
        (LLAMA_70B, plan(method=TrainingMethod.FULL), 80, "training.method: lora with training.quantization: 4bit"),
        (
            LLAMA_70B,
            plan(quantization=Quantization.FOUR_BIT),
            16,
            "GPUs with more memory (no setting of this trainer fits, even sharded over 8 GPUs)",
        ),
    ],
)
def test_cheapest_change(shape: ModelShape, training: TrainingPlan, device_gib: int, change: str) -> None:
    assert refusal(shape, training, device_gib * GIB) is not None
    assert cheapest_change(shape, training, device_gib * GIB) == change


def test_a_config_without_the_needed_fields_is_unsupported() -> None:
    with pytest.raises(UnsupportedConfig, match="hidden_size"):
        shape_from_config({"model_type": "t5", "vocab_size": 10})


def test_checkpointing_every_other_layer_keeps_half_the_layers_whole() -> None:
    every, other, none = (
        estimate(LLAMA_8B, plan(checkpoint_every=1)).activations,
        estimate(LLAMA_8B, plan(checkpoint_every=2)).activations,
        estimate(LLAMA_8B, plan(gradient_checkpointing=False)).activations,
    )
    # Layers 0, 2, ... 30 keep their input, the other 16 all their activations, plus the one being recomputed.
    logits = 4096 * LLAMA_8B.vocab_size * (2 + 8)
    layer = (none - logits) // LLAMA_8B.layers
    layer_input = (every - logits - layer) // LLAMA_8B.layers
    assert other == logits + 16 * layer_input + 16 * layer + layer
