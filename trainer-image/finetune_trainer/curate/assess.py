"""The per-line decision, as a pure function of the line and the rules: safe to run in worker processes.

Checks run cheapest first (parse, success rate) so the expensive ones
(redaction, token counting, near-duplicate signatures) only see sessions
that could still be kept. Duplicates are judged on redacted text: two runs
that differ only by a leaked credential are the same sample. Whether a
session *is* a duplicate depends on what came before it, so that last step
is left to the single, ordered consumer (pipeline.Curator).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import orjson

from finetune_trainer.curate import split, tokens
from finetune_trainer.curate.dedup import band_keys, exact_digest, normalise
from finetune_trainer.curate.outcomes import Outcome, Rejection
from finetune_trainer.curate.redact import redact_fields
from finetune_trainer.curate.sessions import parse_session


@dataclass(frozen=True, slots=True)
class Rules:
    min_success_rate: float
    eval_fraction: float
    near_duplicates: bool
    max_tokens: int | None = None
    tokenizer: Path | None = None


class Candidate(NamedTuple):
    """A session that passed every check that does not depend on other sessions."""

    line: bytes
    """The sample as written: one JSON line."""
    evaluation: bool
    cap_key: int
    digest: int
    band_keys: list[int]
    redactions: dict[str, int] | None


Item = tuple[int, bytes | Rejection]
"""A line number and the line, or a rejection the reader already decided (too long, unreadable)."""
Batch = tuple[str, list[Item]]
"""Consecutive lines of one source file."""

_rules: Rules | None = None
_count_tokens: tokens.TokenCounter = tokens.estimate_tokens


def initialise(rules: Rules) -> None:
    """Set the rules for this process (a worker's initializer; loads the tokenizer once)."""
    global _rules, _count_tokens
    _rules = rules
    _count_tokens = tokens.tokenizer_counter(rules.tokenizer) if rules.tokenizer else tokens.estimate_tokens


def assess_batch(batch: Batch) -> list[Rejection | Candidate]:
    """Assess a batch of lines; near-duplicate keys are computed for all survivors at once (vectorised)."""
    rules = _rules
    assert rules is not None, "initialise() first"
    source, items = batch
    assessed = [item if isinstance(item, Rejection) else _assess(rules, source, number, item) for number, item in items]
    texts = [result.normalised for result in assessed if isinstance(result, _Survivor)]
    keys = iter(band_keys(texts) if rules.near_duplicates else [[] for _ in texts])
    return [
        result.candidate._replace(band_keys=next(keys)) if isinstance(result, _Survivor) else result
        for result in assessed
    ]


class _Survivor(NamedTuple):
    candidate: Candidate
    normalised: bytes


def _assess(rules: Rules, source: str, number: int, raw: bytes) -> Rejection | _Survivor:
    session = parse_session(raw)
    if isinstance(session, Rejection):
        return session
    if session.success_rate <= rules.min_success_rate:
        return Rejection(Outcome.LOW_SUCCESS, "")
    redactions: Counter[str] = Counter()
    instruction, context, output = redact_fields((session.instruction, session.input, session.output), redactions)
    if rules.max_tokens is not None and _count_tokens(f"{instruction}\n{context}\n{output}") > rules.max_tokens:
        return Rejection(Outcome.TOO_LONG, "")
    normalised = normalise(instruction, context, output)
    line = orjson.dumps(
        {
            "instruction": instruction,
            "input": context,
            "output": output,
            "metadata": {
                "session_id": session.session_id,
                "success_rate": session.success_rate,
                "source": source,
                "line": number,
            },
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )
    candidate = Candidate(
        line=line,
        evaluation=split.is_eval(session.session_id, rules.eval_fraction),
        cap_key=split.cap_key(session.session_id),
        digest=exact_digest(normalised),
        band_keys=[],
        redactions=dict(redactions) if redactions else None,
    )
    return _Survivor(candidate, normalised)
