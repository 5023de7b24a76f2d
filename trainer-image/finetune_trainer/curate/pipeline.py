"""The ordered consumer: reads every source line, has it assessed, and decides duplicates and output.

Assessment (assess.py, compiled) runs on `workers` threads when the input is
large enough: the extension releases the GIL, so threads assess blocks of lines
in parallel while this thread reads the next blocks and consumes finished ones,
with nothing copied between processes. Results are consumed in input order, so
deduplication (first occurrence wins), the malformed examples and the written
files are identical whatever the number of threads. At most `2 * workers`
batches are in flight, so memory stays flat however large the input: only the
deduplication state grows (see dedup.py).
"""

from __future__ import annotations

import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import orjson
from finetune_curate_native import Assessed

from finetune_trainer import worklog
from finetune_trainer.curate.assess import Assess, Batch, Rules
from finetune_trainer.curate.dedup import Deduplicator
from finetune_trainer.curate.outcomes import CONVERSATION_REJECTIONS, Outcome, Rejection
from finetune_trainer.curate.output import DatasetWriter
from finetune_trainer.curate.sources import Lines, LineTooLong, SourceStats, StreamError, read_blocks

EXAMPLES = 10
"""Lines listed in the manifest per kind of rejection that lists them (malformed, a conversation's defects)."""
_PROGRESS_EVERY = 100_000


@dataclass
class Tally:
    records: int = 0
    kept: int = 0
    rejected: Counter[Outcome] = field(default_factory=Counter)
    redactions: Counter[str] = field(default_factory=Counter)
    """Secrets replaced in kept samples."""
    malformed_examples: list[dict[str, object]] = field(default_factory=list)
    rejected_examples: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    """Chat format: the first lines rejected for each defect of a conversation, by outcome."""
    exact_duplicates: int = 0
    near_duplicates: int = 0


class Curator:
    def __init__(
        self,
        rules: Rules,
        writer: DatasetWriter,
        max_line_bytes: int,
        workers: int = 1,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self._rules = rules
        self._progress = progress  # told the records read after each block (curate.progress reports when due)
        self._writer = writer
        self._max_line_bytes = max_line_bytes
        self._workers = workers
        self._dedup = Deduplicator()
        self.tally = Tally()
        self._started = time.monotonic()

    def run(self, sources: list[SourceStats]) -> Tally:
        assess = Assess(self._rules)
        batches = self._batches(sources)
        if self._workers <= 1:
            for batch in batches:
                self._consume(batch, assess(batch))
        else:
            self._run_parallel(assess, batches)
        self.tally.exact_duplicates = self._dedup.exact_hits
        self.tally.near_duplicates = self._dedup.near_hits
        return self.tally

    def _run_parallel(self, assess: Assess, batches: Iterator[Batch]) -> None:
        with ThreadPoolExecutor(self._workers, thread_name_prefix="assess") as pool:
            pending: deque[tuple[Batch, Future[Assessed | Rejection]]] = deque()
            for batch in batches:
                pending.append((batch, pool.submit(assess, batch)))
                if len(pending) >= 2 * self._workers:
                    done, future = pending.popleft()
                    self._consume(done, future.result())
            while pending:
                done, future = pending.popleft()
                self._consume(done, future.result())

    def _batches(self, sources: list[SourceStats]) -> Iterator[Batch]:
        for stats in sources:
            source, number = str(stats.path), 1
            for block in read_blocks(stats.path, stats, self._max_line_bytes):
                if isinstance(block, Lines):
                    yield Batch(source, number, block, self._max_line_bytes)
                    number += block.count
                else:
                    yield Batch(source, number, _early_rejection(block), self._max_line_bytes)
                    number += 1

    def _consume(self, batch: Batch, assessed: Assessed | Rejection) -> None:
        tally = self.tally
        before = tally.records
        if isinstance(assessed, Rejection):
            tally.records += 1
            tally.rejected[assessed.outcome] += 1
            self._note_malformed(batch.source, batch.first_number, assessed.detail)
        else:
            self._consume_block(batch, assessed)
        if tally.records // _PROGRESS_EVERY != before // _PROGRESS_EVERY:
            self._log_progress()
        if self._progress is not None:
            self._progress(tally.records)

    def _consume_block(self, batch: Batch, assessed: Assessed) -> None:
        tally = self.tally
        tally.records += len(assessed)
        for outcome, count in assessed.rejected().items():
            tally.rejected[Outcome(outcome)] += count
        if len(tally.malformed_examples) < EXAMPLES:
            for index, detail, invalid_json in assessed.malformed():
                message = json_error(assessed.raw(index), detail) if invalid_json else detail
                self._note_malformed(batch.source, batch.first_number + index, message)
        if self._rules.chat and self._wants_examples():
            for index, outcome, detail in assessed.conversation_rejections():
                self._note_rejected(outcome, batch.source, batch.first_number + index, detail)
        kept, redactions, duplicates = self._dedup.admit(assessed)
        tally.rejected[Outcome.DUPLICATE] += duplicates
        write = self._writer.write
        for evaluation, line, cap_key in kept:
            write("eval" if evaluation else "train", line, cap_key)
        tally.kept += len(kept)
        tally.redactions.update(redactions)

    def _note_malformed(self, source: str, number: int, message: str) -> None:
        if len(self.tally.malformed_examples) < EXAMPLES:
            self.tally.malformed_examples.append({"source": source, "line": number, "error": message})

    def _wants_examples(self) -> bool:
        examples = self.tally.rejected_examples
        return any(len(examples.get(outcome, ())) < EXAMPLES for outcome in CONVERSATION_REJECTIONS)

    def _note_rejected(self, outcome: str, source: str, number: int, message: str) -> None:
        examples = self.tally.rejected_examples.setdefault(outcome, [])
        if len(examples) < EXAMPLES:
            examples.append({"source": source, "line": number, "error": message})

    def _log_progress(self) -> None:
        elapsed = time.monotonic() - self._started
        progress = {"event": "progress", "records": self.tally.records, "kept": self.tally.kept}
        progress["sessionsPerSecond"] = round(self.tally.records / max(elapsed, 1e-9))
        line = orjson.dumps(progress).decode()
        print(line, file=sys.stderr)
        worklog.LINES.info(line)


def json_error(line: bytes, native_message: str) -> str:
    """The message for a line that is not JSON, in orjson's words (as manifests have always shown it).

    Only the first few malformed lines get a message, so this costs nothing
    measurable. The extension's own wording is the answer only if the two
    parsers ever disagreed on a line (never seen: tests/unit/curation/test_native.py).
    """
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError as error:
        return f"invalid JSON: {error}"
    return f"invalid JSON: {native_message}"


def _early_rejection(line: LineTooLong | StreamError) -> Rejection:
    if isinstance(line, LineTooLong):
        return Rejection(Outcome.MALFORMED, f"line of {line.size} bytes is too long")
    return Rejection(Outcome.MALFORMED, f"rest of file unreadable: {line.message}")
