"""training.sharding fsdp: torch FSDP2 (`fully_shard`) through the Trainer, on GPUs and on CPU ranks alike.

The Trainer hands FSDP to accelerate (`fsdp` + `fsdp_config` version 2: each decoder layer, then the root, goes
through `fully_shard`, so every rank holds 1/N of the parameters, gradients and AdamW state as DTensor shards).
accelerate turns FSDP on only for GPU-like process groups: on CPU (gloo) ranks it silently runs DDP instead.
`trainer_class` therefore switches the accelerator's state to FSDP after the Trainer built it, with the very
plugin the Trainer built from the same arguments: the GPU path and the CPU path the tests run are one code path.

Loading is sharded too (`load_for_rank`, accelerate's `cpu_ram_efficient_loading`): rank 0 alone reads the base
model, into host memory; every other rank builds the model's skeleton without reading a weight. accelerate then
moves the model to the meta device, applies `fully_shard` there and broadcasts rank 0's tensors one at a time, each
rank keeping only its shard: no GPU ever holds the whole model, and only rank 0's host memory does, once.

Checkpoints are sharded (torch.distributed.checkpoint: every rank writes its own shards of the model and the
optimizer, nothing is gathered). The resolved sharding and world size are in the config hash, so resuming on
another rank count is refused as CheckpointMismatch rather than resharded.

The final model is gathered once, after training (`gathered`): a collective in which rank 0 receives the full
state dict in host memory and loads it into an ordinary (unsharded) copy of the model, which it then scores,
compares and saves exactly as an unsharded run does.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import jsonlog
from finetune_trainer.train.config import TrainConfig
from finetune_trainer.train.modelio import load_model, lora_config, weights_dtype

FSDP = "fsdp"
_COMPUTE_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def arguments(config: TrainConfig) -> dict[str, Any]:
    """The Trainer arguments that turn FSDP2 on (none for an unsharded run)."""
    if config.sharding != FSDP:
        return {}
    return {
        "fsdp": True,
        "fsdp_config": {
            "version": 2,
            # Wraps each of the model's `_no_split_modules` (its decoder layer class), then the root.
            "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "reshard_after_forward": True,
            # Rank 0 reads the base model and broadcasts it tensor by tensor into the others' shards (`load_for_rank`).
            "cpu_ram_efficient_loading": True,
            # Each rank writes its shards: no gather to one host per checkpoint (a 70B state is ~1 TB).
            "state_dict_type": "SHARDED_STATE_DICT",
        },
        # Reduce-scatter the gradients after every micro-batch: accelerate's default under gradient accumulation
        # (no_sync until the last micro-batch) keeps each rank's gradients unsharded in between, a full fp32 copy
        # of the model per GPU (32 GB for 8B) that sharding is there to avoid.
        "accelerator_config": {"gradient_accumulation_kwargs": {"sync_each_batch": True}},
    }


def load_for_rank(folder: Path, config: TrainConfig, attention: str, device: str | None, rank: int) -> Any:
    """This rank's base model before training: the loaded model, or under FSDP on ranks other than 0 a skeleton.

    Under FSDP, rank 0 loads into host memory even with a GPU (accelerate broadcasts from there, one tensor at a
    time, to each rank's device) and the other ranks never read the weights (`skeleton`).
    """
    if config.sharding != FSDP:
        return load_model(folder, config, attention, device=device)
    if rank == 0:
        return load_model(folder, config, attention, device=None)
    return skeleton(folder, config, attention)


def skeleton(folder: Path, config: TrainConfig, attention: str) -> Any:
    """The model of `folder/config.json` with parameters that hold no values, and its non-persistent buffers.

    Non-persistent buffers (rotary embeddings' `inv_freq`) are not in the checkpoint, so rank 0's broadcast of
    the state dict does not carry them: they are computed here as the model's own `__init__` computes them (only
    parameters go to the meta device). The parameters then get host storage that is allocated but never written
    (so never resident): the Trainer builds its optimizer before accelerate shards the model and maps optimizer
    parameters to their shards by `data_ptr`, which is 0 for every meta tensor. accelerate moves the model to the
    meta device before sharding it, which releases that storage untouched.
    """
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        model_config = AutoConfig.from_pretrained(folder, local_files_only=True)
        with init_empty_weights(include_buffers=False):
            model = AutoModelForCausalLM.from_config(
                model_config, attn_implementation=attention, dtype=weights_dtype(config)
            )
    except (OSError, ValueError, KeyError) as error:
        raise JobFailed(Reason.INVALID_MODEL, f"cannot build a causal language model from {folder}: {error}") from error
    meta = list(model.parameters())  # kept alive while their ids key `allocated`
    allocated: dict[int, torch.nn.Parameter] = {}
    for module in model.modules():
        for name, parameter in module._parameters.items():
            if parameter is None:
                continue
            # One storage per parameter object: tied embeddings stay one parameter.
            if id(parameter) not in allocated:
                empty = torch.empty_like(parameter, device="cpu")
                allocated[id(parameter)] = torch.nn.Parameter(empty, requires_grad=parameter.requires_grad)
            module._parameters[name] = allocated[id(parameter)]
    del meta
    model.tie_weights()  # tied input and output embeddings, as from_pretrained leaves them
    return model.eval()  # as from_pretrained returns it


def mixed_precision_policy(precision: str) -> Any:
    """bf16/fp16 parameters gathered for compute, gradients reduced in fp32; None (all fp32) otherwise."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    dtype = _COMPUTE_DTYPES.get(precision)
    if dtype is None:
        return None
    return MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32, output_dtype=dtype)


@functools.cache
def _sharded(base: type) -> type:
    class ShardedTrainer(base):  # type: ignore[misc,valid-type]  # a Trainer subclass made at run time
        """`base` with FSDP2 on CPU process groups too, and fp32 gradient reduction under mixed precision."""

        def create_accelerator_and_postprocess(self) -> None:
            from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

            super().create_accelerator_and_postprocess()
            state = self.accelerator.state
            if state.distributed_type == DistributedType.MULTI_CPU:
                state.fsdp_plugin = FullyShardedDataParallelPlugin(**self.args.fsdp_plugin_args)
                state.distributed_type = DistributedType.FSDP
                self.is_fsdp_enabled = True
            policy = mixed_precision_policy("bf16" if self.args.bf16 else "fp16" if self.args.fp16 else "fp32")
            if policy is not None:
                state.fsdp_plugin.mixed_precision_policy = policy

    return ShardedTrainer


def trainer_class(base: type, config: TrainConfig) -> type:
    return _sharded(base) if config.sharding == FSDP else base


def local_parameters(model: Any) -> int:
    """Parameters this rank holds: its shard of each DTensor, all of an ordinary tensor."""
    return sum(getattr(p, "_local_tensor", p).numel() for p in model.parameters())


def report_shards(model: Any) -> None:
    """Rank 0 logs every rank's share of the parameters (collective): the evidence that the model is sharded."""
    counts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(counts, local_parameters(model))
    total = sum(p.numel() for p in model.parameters())  # a DTensor's numel is its global size
    jsonlog.event("sharded", parameters=total, localParameters=counts)


def shard_report_callback() -> Any:
    """A Trainer callback calling `report_shards` once the Trainer has sharded the model (at train begin)."""
    from transformers import TrainerCallback

    class ShardReport(TrainerCallback):  # type: ignore[misc]  # transformers is typed as Any here
        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            report_shards(model)

    return ShardReport()


def gathered(model: Any, config: TrainConfig, model_dir: Path, attention: str, device: str | None) -> Any:
    """The trained model as an ordinary module on rank 0 (None on the others); `model` itself when unsharded.

    Collective under FSDP: every rank must call it. Rank 0 holds the full state dict in host memory while it loads
    it into a fresh copy of the base model (with the LoRA adapter when there is one) on `device`: host memory for
    about the model's training-precision size (e.g. ~32 GB for 8B in fp32), once, at the end.
    """
    if config.sharding != FSDP:
        return model
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if dist.get_rank() != 0:
        return None
    unsharded = load_model(model_dir, config, attention, device=device)
    if config.method.value == "lora":
        from peft import get_peft_model

        unsharded = get_peft_model(unsharded, lora_config(config))
    unsharded.load_state_dict(full)
    return unsharded
