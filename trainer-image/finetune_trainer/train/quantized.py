"""Quantized loading of the frozen base (training.quantization): QLoRA's 4-bit NF4 and LLM.int8()'s 8 bits.

bitsandbytes replaces every linear layer of the base with a quantized one as the weights load: 4bit is NF4 with
double quantization (the quantization constants quantized too: 4.127 bits per weight, Dettmers et al. 2023) and
computes in the training precision; 8bit stores int8 weights with per-row scales. Embeddings, norms and the
output head stay in the training dtype. Only a LoRA adapter trains on top (the spec's CEL rule), in fp32, and
the job saves that adapter; it is not merged into the quantized base (a merge would dequantize the base: load
the original 16-bit base and merge the adapter into it, the usual QLoRA practice, see docs/trainer.md).
"""

from __future__ import annotations

from typing import Any

import torch

from finetune_trainer.train.config import TrainConfig

FOUR_BIT = "4bit"
EIGHT_BIT = "8bit"
_COMPUTE_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def is_quantized(config: TrainConfig) -> bool:
    return config.quantization in (FOUR_BIT, EIGHT_BIT)


def bitsandbytes_config(config: TrainConfig) -> Any | None:
    """transformers' `BitsAndBytesConfig` for the job, or None for unquantized weights."""
    if not is_quantized(config):
        return None
    from transformers import BitsAndBytesConfig

    if config.quantization == FOUR_BIT:
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=_COMPUTE_DTYPES[config.precision],
        )
    return BitsAndBytesConfig(load_in_8bit=True)


def prepare_for_training(model: Any, config: TrainConfig) -> Any:
    """PEFT's preparation of a quantized model: norms and embeddings to fp32, inputs that carry gradients.

    The latter is what lets activation checkpointing work through a base whose parameters all are frozen.
    """
    if not is_quantized(config):
        return model
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
