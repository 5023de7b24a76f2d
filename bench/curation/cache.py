"""The benchmark corpora, generated once into a cache directory and reused by every run."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from bench.curation.corpus import generate

CACHE = Path(os.environ.get("FINETUNE_BENCH_CACHE", Path.home() / ".cache" / "finetune-operator" / "bench"))


def corpus(count: int, seed: int = 0) -> Path:
    """`count` sessions as JSONL; sizes share a prefix, so the smaller corpus is the larger's head."""
    path = CACHE / f"sessions-{count}-seed{seed}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        with partial.open("wb", buffering=1 << 20) as handle:
            for line in generate(count, seed):
                handle.write(line + b"\n")
        partial.rename(path)
    return path


def parseable(source: Path) -> Path:
    """The lines of `source` that are JSON objects: a naive pandas reader aborts on any other line."""
    path = source.with_name(source.stem + ".parseable.jsonl")
    if not path.exists():
        partial = path.with_suffix(".partial")
        with source.open("rb") as reader, partial.open("wb", buffering=1 << 20) as writer:
            for line in reader:
                try:
                    if isinstance(orjson.loads(line), dict):
                        writer.write(line)
                except orjson.JSONDecodeError:
                    continue
        partial.rename(path)
    return path
