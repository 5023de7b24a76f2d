"""Helpers for curation tests: build sessions, write session files, read what the curator wrote."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import finetune_curate_native as native
import orjson

from finetune_trainer.curate.outcomes import Outcome, Rejection
from finetune_trainer.curate.pipeline import json_error

from .oracle import Session

REPOSITORY = Path(__file__).resolve().parents[3]


_VOCABULARY = [
    *("retry", "backoff", "clock", "cache", "queue", "worker", "request", "timeout", "payment", "invoice"),
    *("ledger", "schema", "index", "migration", "tenant", "session", "token", "header", "cursor", "page"),
    *("batch", "stream", "buffer", "socket", "pool", "lock", "mutex", "channel", "deadline", "budget"),
    *("quota", "shard", "replica", "leader", "follower", "snapshot", "compaction", "checksum", "bucket"),
]


def text(seed: str, words: int = 40) -> str:
    """Prose unique to `seed`: distinct seeds give texts far apart for near-duplicate detection."""
    rng = random.Random(seed)
    return " ".join(rng.choice(_VOCABULARY) + str(rng.randrange(1000)) for _ in range(words))


def flat(session_id: str, rate: float = 0.95, output: str | None = None, **extra: Any) -> dict[str, Any]:
    """A flat-shape session whose text is unique to its id unless `output` is given."""
    return {
        "id": session_id,
        "success_rate": rate,
        "instruction": f"Fix the flaky test: {text(session_id + 'i', 12)}",
        "input": f"$ run_tests\n{text(session_id + 'c', 20)}",
        "output": output if output is not None else text(session_id + "o"),
        **extra,
    }


def encode(records: Iterable[dict[str, Any] | bytes | str]) -> bytes:
    lines = []
    for record in records:
        if isinstance(record, bytes):
            lines.append(record)
        elif isinstance(record, str):
            lines.append(record.encode())
        else:
            lines.append(json.dumps(record).encode())
    return b"\n".join(lines) + b"\n"


def write_jsonl(path: Path, records: Iterable[dict[str, Any] | bytes | str], compress: bool = False) -> Path:
    data = encode(records)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


@dataclass
class Run:
    code: int
    termination: dict[str, Any]
    output_dir: Path

    @property
    def manifest(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads((self.output_dir / "manifest.json").read_text())
        return result

    def samples(self, split: str = "train") -> list[dict[str, Any]]:
        text = (self.output_dir / f"{split}.jsonl").read_text()
        return [json.loads(line) for line in text.splitlines()]

    @property
    def rejected(self) -> dict[str, int]:
        counts: dict[str, int] = self.manifest["counts"]["rejected"]
        return counts


def parse_session(raw: bytes) -> Session | Rejection:
    """One line through the curator's assessment (no success-rate floor, no token limit), read back."""
    assessed = native.Assessor(-1.0, 0.1, False, None, False).assess_block("s.jsonl", 1, raw, 0, len(raw), len(raw))
    candidate = assessed.candidate(0)
    if candidate is None:
        outcome = assessed.outcome(0)
        assert outcome is not None
        [(_, detail, invalid_json)] = assessed.malformed() or [(0, outcome[1], False)]
        return Rejection(Outcome(outcome[0]), json_error(raw, detail) if invalid_json else outcome[1])
    sample = orjson.loads(candidate[0])
    metadata = sample["metadata"]
    return Session(
        metadata["session_id"], metadata["success_rate"], sample["instruction"], sample["input"], sample["output"]
    )
