"""torch.compile of the decoder layers while training (`training.compile`; unset: on with GPUs, see `config`).

What it buys on a GPU: inductor fuses each layer's elementwise chains (RMSNorm, RoPE, SiLU x mul, residual adds,
LoRA's scale-and-add) into a few kernels, the ~20 µs per token of the fused-kernel column of docs/trainer.md
"Expected GPU throughput", without a new dependency (Liger would be one, and TRL 1.16 deprecates
`use_liger_kernel`).

Regional compilation: each decoder layer (transformers' `GradientCheckpointingLayer`, whatever the architecture)
is compiled in place with `nn.Module.compile`, so the state dict, PEFT's wrapping and the checkpoints keep their
names, and the layers share their compiled graphs (the parameters are graph inputs), so compile time does not
grow with depth: two graphs, the first layer's (its input needs no gradient: the embedding is frozen) and the
others' (measured on CPU, tests/unit/trainer/test_compiled.py). The embedding, the mask construction and the LM
head loss (TRL's chunked one) stay eager. Shapes: with SDPA the rows are padded to `max_seq_length`
(`PackedRowsCollator.width`), so micro-batches have one shape, except an epoch's last one when it has fewer rows
(one more compile, after which torch's automatic dynamic shapes keep the batch dimension symbolic); the varlen
path's flattened row and sample boundaries vary from batch to batch, which automatic dynamic shapes handle the
same way (not run here: the varlen kernel needs a GPU).

A compile error must not fail a training job: with `suppress_errors` dynamo runs the frame eagerly and logs it.
After training the layers are eager again: generation (held-out scores, the champion comparison) grows its
inputs by one token per step, which would recompile at every length.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from finetune_trainer.train import jsonlog


def decoder_layers(model: Any) -> list[torch.nn.Module]:
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [module for module in model.modules() if isinstance(module, GradientCheckpointingLayer)]


@contextmanager
def during_training(model: Any, enabled: bool) -> Iterator[None]:
    """The decoder layers of `model` compiled inside the block, eager after it."""
    if not enabled:
        yield
        return
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True
    layers = decoder_layers(model)
    for layer in layers:
        layer.compile()
    jsonlog.event("compiled", layers=len(layers))
    try:
        yield
    finally:
        for layer in layers:
            layer._compiled_call_impl = None  # what nn.Module.compile set: back to the eager __call__
