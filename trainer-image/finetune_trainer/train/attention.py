"""Which attention kernel trains the packed rows: torch's variable-length flash attention where it runs, else SDPA.

Packed rows with SDPA make transformers build a dense [batch, 1, L, L] block-diagonal mask, which rules out
the flash kernel (SDPA falls back to its memory-efficient one) and expands GQA's key/value heads. torch
2.14 ships variable-length flash attention (`torch.nn.attention.varlen.varlen_attn`, no new dependency):
the batch is one row of all its samples' tokens and the kernel is told where each sample starts
(`cu_seq_lens`, from the collator), so no mask exists and no token attends across samples or to padding.
It needs a CUDA GPU of compute capability 8.0 or newer (Ampere+) and half precision; everything else
(CPU, T4/V100, fp32) keeps SDPA with rows kept apart (`collate.PackedRowsCollator`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

VARLEN = "finetune_varlen"
SDPA = "sdpa"
MIN_CAPABILITY = (8, 0)

Kernel = Callable[..., torch.Tensor]


def choose(*, cuda: bool, capability: tuple[int, int] | None, precision: str, varlen_available: bool) -> str:
    """The attention implementation for training (pure: the caller asks torch)."""
    ampere = capability is not None and capability >= MIN_CAPABILITY
    return VARLEN if cuda and varlen_available and ampere and precision in ("bf16", "fp16") else SDPA


def detect(precision: str) -> str:
    cuda = torch.cuda.is_available()
    return choose(
        cuda=cuda,
        capability=torch.cuda.get_device_capability() if cuda else None,
        precision=precision,
        varlen_available=varlen_kernel() is not None,
    )


def varlen_kernel() -> Kernel | None:
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    kernel: Kernel = varlen_attn
    return kernel


def register(kernel: Kernel | None = None) -> None:
    """Make `VARLEN` a transformers attention implementation (in every process, before loading the model)."""
    from transformers import AttentionInterface

    chosen = kernel or varlen_kernel()
    if chosen is None:
        raise RuntimeError("torch.nn.attention.varlen is not available in this torch build")

    def forward(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> Any:
        return varlen_forward(chosen, module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register(VARLEN, forward)


def varlen_forward(
    kernel: Kernel,
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    cu_seq_lens_q: torch.Tensor | None = None,
    cu_seq_lens_k: torch.Tensor | None = None,
    max_length_q: int | None = None,
    max_length_k: int | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention signature: query [1, heads, tokens, dim] -> output [1, tokens, heads, dim].

    Without sample boundaries (greedy generation after training: one unpadded prompt at a time) the
    row is one causal sequence, which SDPA computes exactly.
    """
    if cu_seq_lens_q is None or max_length_q is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, None, scaling=scaling, **kwargs)  # type: ignore[no-any-return]
    if query.shape[0] != 1:
        raise ValueError(f"varlen attention takes one flattened row per batch, got {query.shape[0]}")
    output = kernel(
        query[0].transpose(0, 1),
        key[0].transpose(0, 1),
        value[0].transpose(0, 1),
        cu_seq_lens_q,
        cu_seq_lens_k if cu_seq_lens_k is not None else cu_seq_lens_q,
        max_length_q,
        max_length_k if max_length_k is not None else max_length_q,
        scale=scaling,
        window_size=(-1, 0),  # causal
        enable_gqa=key.shape[1] != query.shape[1],
    )
    return output.unsqueeze(0), None
