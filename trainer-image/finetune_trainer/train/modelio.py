"""Loading the base model and tokenizer, and the LoRA adapter config.

Models are only ever read from a local folder (`local_files_only=True`): training pods have no
route to a model hub, and a silent download attempt would hang until a network timeout.
Any failure to load is the user's (wrong path, not a Hugging Face folder, not a causal LM), so
it becomes `InvalidModel` (exit 11) with the loader's own message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import quantized
from finetune_trainer.train.config import TrainConfig

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def load_tokenizer(folder: Path) -> Any:
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise JobFailed(Reason.INVALID_MODEL, f"cannot load a tokenizer from {folder}: {error}") from error
    if tokenizer.eos_token is None:
        raise JobFailed(Reason.INVALID_MODEL, f"the tokenizer in {folder} defines no eos_token")
    if tokenizer.pad_token is None:
        # Padding only fills the unused tail of a packed batch (labels -100), so any token will do.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(folder: Path, config: TrainConfig, attention: str = "sdpa", device: str | None = None) -> Any:
    """`device`: load the weights straight onto it (each rank its own GPU) rather than all into host memory first."""
    bitsandbytes = quantized.bitsandbytes_config(config)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            folder,
            local_files_only=True,
            attn_implementation=attention,
            dtype=weights_dtype(config),
            quantization_config=bitsandbytes,
            # bitsandbytes quantizes onto a device it is told: the CPU when there is no GPU.
            device_map={"": device or "cpu"} if device or bitsandbytes else None,
        )
    except (OSError, ValueError, KeyError) as error:
        raise JobFailed(Reason.INVALID_MODEL, f"cannot load a causal language model from {folder}: {error}") from error
    return quantized.prepare_for_training(model, config)


def weights_dtype(config: TrainConfig) -> torch.dtype:
    """The dtype the base weights are held in.

    Full fine-tuning keeps fp32 master weights and lets autocast run the matmuls in bf16/fp16
    (the optimizer needs the precision). LoRA freezes the base, so its weights can sit in the
    low-precision dtype and halve memory; PEFT keeps the small adapter itself in fp32. fp16 base
    weights are avoided: autocast with a GradScaler refuses fp16 parameters.
    """
    if config.method.value == "lora" and config.precision == "bf16":
        return _DTYPES["bf16"]
    return torch.float32


def saved_dtype(config: TrainConfig) -> torch.dtype:
    """The dtype of a final full model: the precision it was trained at (fp32 only for fp32 runs)."""
    return _DTYPES[config.precision]


def lora_config(config: TrainConfig) -> LoraConfig:
    targets = config.lora_target_modules
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(targets) if isinstance(targets, tuple) else targets,
        task_type="CAUSAL_LM",
        bias="none",
    )
