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

With varlen flash attention (`attention.VARLEN`, Ampere+ GPUs) the collator flattens instead
(`FlattenedSamplesCollator`): one row of every sample's tokens, no padding at all, plus the exact
cumulative sample lengths (`cu_seq_lens_*`, int32, starting at 0) and the longest sample
(`max_length_*`, a Python int, so the kernel never waits on the GPU to learn it), which transformers
passes through to the attention function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

IGNORE_INDEX = -100


REAL_TOKENS = "finetune_real_tokens"
"""A batch's real (non-padding) token count, a host integer put in the batch by the collators; `count_trained_tokens`
takes it out before the model sees the batch."""


@dataclass
class TokenCount:
    """Real (non-padding) tokens this rank has trained on: counted on the host, so reading it never syncs."""

    tokens: int = 0


def count_trained_tokens(trainer: Any, count: TokenCount) -> None:
    """Count each micro-batch's tokens when the Trainer trains on it, from the number its collator put in it.

    Not when the collator builds it: the Trainer builds all of an update step's micro-batches before training on
    them and Accelerate's loader one more, evaluation batches go through the same collator, so a count of built
    batches ran ahead of training and measured 0 tokens/s over the last steps (the figure a run ends with).
    """
    train_step, predict_step = trainer.training_step, trainer.prediction_step

    def training_step(model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        count.tokens += inputs.pop(REAL_TOKENS, 0)
        return train_step(model, inputs, *args, **kwargs)

    def prediction_step(model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        inputs.pop(REAL_TOKENS, None)
        return predict_step(model, inputs, *args, **kwargs)

    trainer.training_step, trainer.prediction_step = training_step, prediction_step


@dataclass(frozen=True)
class PackedRowsCollator:
    pad_token_id: int
    width: int = 0
    """Rows padded to at least this many tokens: `max_seq_length` for compiled layers, one shape for every batch."""

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(self.width, *(len(example["input_ids"]) for example in examples))
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
        real_tokens = sum(len(example["input_ids"]) for example in examples)
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids, REAL_TOKENS: real_tokens}


@dataclass(frozen=True)
class FlattenedSamplesCollator:
    """The whole batch as one row of samples, with the boundaries varlen attention kernels take."""

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        ids = [token for example in examples for token in example["input_ids"]]
        labels = [token for example in examples for token in example.get("labels", example["input_ids"])]
        lengths = [
            length for example in examples for length in (example.get("seq_lengths") or [len(example["input_ids"])])
        ]
        if sum(lengths) != len(ids):
            raise ValueError(f"sample lengths {lengths} do not add up to the {len(ids)} packed tokens")
        position_ids = torch.cat([torch.arange(length) for length in lengths])
        label_row = torch.tensor(labels)
        # A sample's first token must not be predicted from the previous sample's last one.
        label_row[position_ids == 0] = IGNORE_INDEX
        boundaries = torch.zeros(len(lengths) + 1, dtype=torch.int32)
        boundaries[1:] = torch.cumsum(torch.tensor(lengths), dim=0)
        longest = max(lengths)
        return {
            "input_ids": torch.tensor([ids]),
            "labels": label_row[None],
            "position_ids": position_ids[None],
            "cu_seq_lens_q": boundaries,
            "cu_seq_lens_k": boundaries,
            "max_length_q": longest,
            "max_length_k": longest,
            REAL_TOKENS: len(ids),
        }
