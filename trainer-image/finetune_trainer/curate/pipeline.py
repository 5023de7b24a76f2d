"""The per-line decision chain: every line is kept or counted under exactly one rejection reason.

Checks run cheapest first (parse, success rate) so the expensive ones
(redaction, token counting, near-duplicate signatures) only see sessions
that could still be kept. Duplicates are judged on redacted text: two runs
that differ only by a leaked credential are the same sample.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from finetune_trainer.curate import split
from finetune_trainer.curate.dedup import Deduplicator, exact_digest, normalise
from finetune_trainer.curate.outcomes import Outcome, Rejection
from finetune_trainer.curate.output import DatasetWriter
from finetune_trainer.curate.redact import redact_fields
from finetune_trainer.curate.sessions import Session, parse_session
from finetune_trainer.curate.settings import Settings
from finetune_trainer.curate.sources import Line, LineTooLong, SourceStats, StreamError, read_lines
from finetune_trainer.curate.tokens import TokenCounter

MALFORMED_EXAMPLES = 10
_PROGRESS_EVERY = 100_000


@dataclass
class Tally:
    records: int = 0
    kept: int = 0
    train: int = 0
    eval: int = 0
    rejected: Counter[Outcome] = field(default_factory=Counter)
    redactions: Counter[str] = field(default_factory=Counter)
    malformed_examples: list[dict[str, object]] = field(default_factory=list)
    exact_duplicates: int = 0
    near_duplicates: int = 0
    dedup_state_bytes: int = 0


class Curator:
    def __init__(self, settings: Settings, writer: DatasetWriter, count_tokens: TokenCounter) -> None:
        self._settings = settings
        self._spec = settings.curation
        self._writer = writer
        self._count_tokens = count_tokens
        self._dedup = Deduplicator(near=self._spec.dedup)
        self.tally = Tally()
        self._started = time.monotonic()

    def run(self, sources: list[SourceStats]) -> Tally:
        for stats in sources:
            name = str(stats.path)
            for number, line in enumerate(read_lines(stats.path, stats, self._settings.max_line_bytes), 1):
                self._process(name, number, line)
        self.tally.exact_duplicates = self._dedup.exact_hits
        self.tally.near_duplicates = self._dedup.near_hits
        self.tally.dedup_state_bytes = self._dedup.nbytes
        return self.tally

    def _process(self, source: str, number: int, line: Line) -> None:
        tally = self.tally
        tally.records += 1
        if tally.records % _PROGRESS_EVERY == 0:
            self._log_progress()
        if isinstance(line, LineTooLong):
            self._reject(source, number, Rejection(Outcome.MALFORMED, f"line of {line.size} bytes is too long"))
            return
        if isinstance(line, StreamError):
            self._reject(source, number, Rejection(Outcome.MALFORMED, f"rest of file unreadable: {line.message}"))
            return
        session = parse_session(line)
        if isinstance(session, Rejection):
            self._reject(source, number, session)
            return
        decision = self._judge(session)
        if isinstance(decision, Rejection):
            self._reject(source, number, decision)
            return
        self._keep(source, number, session, decision)

    def _judge(self, session: Session) -> Rejection | tuple[str, ...]:
        if session.success_rate <= self._spec.min_success_rate:
            return Rejection(Outcome.LOW_SUCCESS, "")
        fields = redact_fields((session.instruction, session.input, session.output), self.tally.redactions)
        max_tokens = self._spec.max_tokens
        if max_tokens is not None and self._count_tokens("\n".join(fields)) > max_tokens:
            return Rejection(Outcome.TOO_LONG, "")
        normalised = normalise(*fields)
        if self._dedup.is_duplicate(exact_digest(normalised), normalised):
            return Rejection(Outcome.DUPLICATE, "")
        return fields

    def _keep(self, source: str, number: int, session: Session, fields: tuple[str, ...]) -> None:
        instruction, context, output = fields
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
        evaluation = split.is_eval(session.session_id, self._spec.eval_fraction)
        self._writer.write("eval" if evaluation else "train", line, split.cap_key(session.session_id))
        self.tally.kept += 1
        if evaluation:
            self.tally.eval += 1
        else:
            self.tally.train += 1

    def _reject(self, source: str, number: int, rejection: Rejection) -> None:
        self.tally.rejected[rejection.outcome] += 1
        examples = self.tally.malformed_examples
        if rejection.outcome is Outcome.MALFORMED and len(examples) < MALFORMED_EXAMPLES:
            examples.append({"source": source, "line": number, "error": rejection.detail})

    def _log_progress(self) -> None:
        elapsed = time.monotonic() - self._started
        progress = {"event": "progress", "records": self.tally.records, "kept": self.tally.kept}
        progress["sessionsPerSecond"] = round(self.tally.records / max(elapsed, 1e-9))
        print(orjson.dumps(progress).decode(), file=sys.stderr)


def sources_for(paths: list[Path]) -> list[SourceStats]:
    return [SourceStats(path) for path in paths]
