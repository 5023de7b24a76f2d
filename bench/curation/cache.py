"""The benchmark corpora, generated once into a cache directory and reused by every run."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import orjson

import sessioncorpus
import toolcorpus

CACHE = Path(os.environ.get("FINETUNE_BENCH_CACHE", Path.home() / ".cache" / "finetune-operator" / "bench"))


# Corpus kinds: the agent-session corpus (both shapes) and the tool-calling one (chat shape).
KINDS = {"sessions": sessioncorpus, "tools": toolcorpus}
_PREFIXES = {"sessions": "sessions", "tools": "toolsessions"}


def _path(count: int, seed: int, kind: str) -> Path:
    return CACHE / f"{_PREFIXES[kind]}-{count}-seed{seed}-v{KINDS[kind].VERSION}.jsonl"


def corpus(count: int, seed: int = 0, kind: str = "sessions") -> Path:
    """`count` sessions as JSONL. generate() is prefix-stable, so a larger cached corpus's head is reused."""
    path = _path(count, seed, kind)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    version = KINDS[kind].VERSION
    larger = sorted(
        (candidate for candidate in CACHE.glob(f"{_PREFIXES[kind]}-*-seed{seed}-v{version}.jsonl")),
        key=lambda candidate: int(candidate.name.split("-")[1]),
    )
    source = next((p for p in larger if int(p.name.split("-")[1]) > count), None)
    partial = path.with_suffix(".partial")
    with partial.open("wb", buffering=1 << 20) as handle:
        if source is not None:
            with source.open("rb") as reader:
                handle.writelines(itertools.islice(reader, count))
        else:
            for line in KINDS[kind].generate(count, seed):
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
