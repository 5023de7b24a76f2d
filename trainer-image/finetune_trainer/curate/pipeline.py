"""The ordered consumer: reads every source line, has it assessed, and decides duplicates and output.

Assessment (assess.py) is pure and runs in worker processes when the input is
large enough to pay for starting them; its results come back in input order,
so deduplication (first occurrence wins), the malformed examples and the
written files are identical whatever the number of workers. At most
`2 * workers` batches are in flight, so memory stays flat however large the
input: only the deduplication state grows (see compactset.py).
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

import orjson

from finetune_trainer.curate.assess import Batch, Candidate, Item, Rules, assess_batch, initialise
from finetune_trainer.curate.dedup import Deduplicator
from finetune_trainer.curate.outcomes import Outcome, Rejection
from finetune_trainer.curate.output import DatasetWriter
from finetune_trainer.curate.sources import LineTooLong, SourceStats, StreamError, read_lines

MALFORMED_EXAMPLES = 10
BATCH_LINES = 256
_PROGRESS_EVERY = 100_000


@dataclass
class Tally:
    records: int = 0
    kept: int = 0
    rejected: Counter[Outcome] = field(default_factory=Counter)
    redactions: Counter[str] = field(default_factory=Counter)
    """Secrets replaced in kept samples."""
    malformed_examples: list[dict[str, object]] = field(default_factory=list)
    exact_duplicates: int = 0
    near_duplicates: int = 0


class Curator:
    def __init__(self, rules: Rules, writer: DatasetWriter, max_line_bytes: int, workers: int = 1) -> None:
        self._rules = rules
        self._writer = writer
        self._max_line_bytes = max_line_bytes
        self._workers = workers
        self._dedup = Deduplicator()
        self.tally = Tally()
        self._started = time.monotonic()

    def run(self, sources: list[SourceStats]) -> Tally:
        batches = self._batches(sources)
        if self._workers <= 1:
            initialise(self._rules)
            for batch in batches:
                self._consume(batch, assess_batch(batch))
        else:
            self._run_parallel(batches)
        self.tally.exact_duplicates = self._dedup.exact_hits
        self.tally.near_duplicates = self._dedup.near_hits
        return self.tally

    def _run_parallel(self, batches: Iterator[Batch]) -> None:
        # spawn, not fork: forking a process that already runs threads (numpy's, the
        # executor's) is unsafe, and the workers need nothing from this process' memory.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self._workers, context, initialise, (self._rules,)) as pool:
            pending: deque[tuple[Batch, Future[list[Rejection | Candidate]]]] = deque()
            for batch in batches:
                pending.append((batch, pool.submit(assess_batch, batch)))
                if len(pending) >= 2 * self._workers:
                    done, future = pending.popleft()
                    self._consume(done, future.result())
            while pending:
                done, future = pending.popleft()
                self._consume(done, future.result())

    def _batches(self, sources: list[SourceStats]) -> Iterator[Batch]:
        for stats in sources:
            name = str(stats.path)
            items: list[Item] = []
            for number, line in enumerate(read_lines(stats.path, stats, self._max_line_bytes), 1):
                items.append((number, _early_rejection(line) if not isinstance(line, bytes) else line))
                if len(items) == BATCH_LINES:
                    yield name, items
                    items = []
            if items:
                yield name, items

    def _consume(self, batch: Batch, results: list[Rejection | Candidate]) -> None:
        source, items = batch
        tally = self.tally
        for (number, _), result in zip(items, results, strict=True):
            tally.records += 1
            if isinstance(result, Rejection):
                self._reject(source, number, result)
            elif self._dedup.is_duplicate(result.digest, result.band_keys):
                tally.rejected[Outcome.DUPLICATE] += 1
            else:
                self._writer.write("eval" if result.evaluation else "train", result.line, result.cap_key)
                tally.kept += 1
                if result.redactions:
                    tally.redactions.update(result.redactions)
        if tally.records // _PROGRESS_EVERY != (tally.records - len(items)) // _PROGRESS_EVERY:
            self._log_progress()

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


def _early_rejection(line: LineTooLong | StreamError) -> Rejection:
    if isinstance(line, LineTooLong):
        return Rejection(Outcome.MALFORMED, f"line of {line.size} bytes is too long")
    return Rejection(Outcome.MALFORMED, f"rest of file unreadable: {line.message}")
