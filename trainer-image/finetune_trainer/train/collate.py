"""Batches of packed rows whose samples cannot attend to each other, with plain SDPA attention.

TRL's best-fit-decreasing packing fills rows of `max_length` tokens with whole samples and records
each sample's length (`seq_lengths`). TRL then flattens the whole batch into ONE row for varlen
FlashAttention kernels. Without flash-attn (not installable everywhere; we use PyTorch SDPA), that
single row of batch x max_length tokens gets one dense block-diagonal mask, and attention cost
grows with the square of the whole batch: on CPU (bench/trainer/run.py) that made packing
slower than plain padding, 2.9k vs 4.4k tokens per CPU-second; this collator reaches 9.6k.
This collator keeps rows separate instead: [batch, max_length] input ids with per-sample
`position_ids` (restarting at 0) and no attention mask, from which transformers builds a
block-diagonal causal mask per row. Attention then costs what one max_length sequence costs,
and tokens of one sample never see another sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

IGNORE_INDEX = -100


@dataclass(frozen=True)
class PackedRowsCollator:
    pad_token_id: int

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(example["input_ids"]) for example in examples)
        input_ids = torch.full((len(examples), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
        # Padding gets position 0: each pad token is then a one-token "sample" of its own.
        position_ids = torch.zeros((len(examples), width), dtype=torch.long)
        for row, example in enumerate(examples):
            ids = example["input_ids"]
            lengths = example.get("seq_lengths") or [len(ids)]
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, : len(ids)] = torch.tensor(example.get("labels", ids))
            position_ids[row, : len(ids)] = torch.cat([torch.arange(length) for length in lengths])
        # A sample's first token must not be predicted from the previous sample's last one.
        labels[position_ids == 0] = IGNORE_INDEX
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}
