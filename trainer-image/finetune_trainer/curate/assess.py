"""The per-line decision, made by the compiled extension `finetune_curate_native` for whole batches.

The extension (trainer-image/native) parses and validates each line
(docs/session-schema.md), applies the success-rate rule, redacts secrets,
estimates tokens, and computes the normalised text's exact digest and
near-duplicate band keys, the split and cap hashes and the output line. It
releases the GIL while it works, so several threads assess batches at once
with no copying between processes. Checks run cheapest first (parse, success
rate) so the expensive ones only see sessions that could still be kept.
Duplicates are judged on redacted text: two runs that differ only by a leaked
credential are the same sample. Whether a session *is* a duplicate depends on
what came before it, so that is left to the single, ordered consumer
(pipeline.Curator).

Why compiled: the same work in Python (orjson, RE2, numpy MinHash) cost ~54 us
of CPU a session, no faster than a naive pandas read/filter/write
(bench/curation/RESULTS.md); tests/unit/curation/oracle.py keeps that
implementation as the reference the extension is tested against.

With a tokenizer (`--tokenizer`, or the base model's tokenizer.json), maxTokens
is judged here, in Python, on the redacted text the extension hands back (a
conversation's: every message's text, each call's name and arguments, and the
tool definitions, one per line).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from finetune_curate_native import Assessed, Assessor

from finetune_trainer.curate import tokens
from finetune_trainer.curate.outcomes import Rejection
from finetune_trainer.curate.sources import Lines


@dataclass(frozen=True, slots=True)
class Rules:
    min_success_rate: float
    eval_fraction: float
    near_duplicates: bool
    max_tokens: int | None = None
    tokenizer: Path | None = None
    chat: bool = False
    """Write chat records (messages and tools), else instruction records (curate.formats decides)."""


@dataclass(frozen=True, slots=True)
class Batch:
    """A block of consecutive lines of one source file, or one line the reader rejected (too long, unreadable)."""

    source: str
    first_number: int
    block: Lines | Rejection
    max_line_bytes: int


class Assess:
    """Assesses batches under one run's rules; safe to call from several threads at once."""

    def __init__(self, rules: Rules) -> None:
        self._max_tokens = rules.max_tokens
        tokenizer = rules.tokenizer if rules.max_tokens is not None else None  # loaded only when maxTokens needs it
        self._count = tokens.tokenizer_counter(tokenizer) if tokenizer is not None else None
        self._assessor = Assessor(
            rules.min_success_rate,
            rules.eval_fraction,
            rules.near_duplicates,
            rules.max_tokens,
            self._count is not None,  # keep the texts for the tokenizer, which then judges maxTokens
            # Only when set: builds from before the chat format (bench/curation/compare.py's baselines) take five.
            **({"chat": True} if rules.chat else {}),
        )

    def __call__(self, batch: Batch) -> Assessed | Rejection:
        if isinstance(batch.block, Rejection):
            return batch.block
        block = batch.block
        assessed = self._assessor.assess_block(
            batch.source, batch.first_number, block.data, block.start, block.end, batch.max_line_bytes
        )
        if self._count is not None and self._max_tokens is not None:
            for index, text in assessed.texts():
                if self._count(text) > self._max_tokens:
                    assessed.reject_too_long(index)
        return assessed
