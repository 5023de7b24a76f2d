"""Which format a run writes: `curation.format` when set, else what the source's sessions look like.

A dataset holds one format (the trainer reads it from the manifest), and the
format must be known before the first sample is written, so an unset format is
decided up front from a sample of the input: the first `SAMPLED_LINES` lines of
the first source file (files in the order curation reads them). It is chat when
every session among them is a `messages` session, instruction otherwise: a
source mixing both shapes keeps the instruction format it always had, so no
session of an existing source is rejected by the chat format's stricter rules
(a tool result answering no call, ...) without the user asking for them. Lines
that are not JSON objects do not count either way.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import orjson

from finetune_operator.api import CurationFormat

SAMPLED_LINES = 1000
_GZIP_MAGIC = b"\x1f\x8b"


def decide(requested: CurationFormat | None, paths: list[Path], max_line_bytes: int) -> CurationFormat:
    if requested is not None:
        return requested
    shapes = sampled_shapes(paths[0], max_line_bytes) if paths else set()
    return CurationFormat.CHAT if shapes == {"messages"} else CurationFormat.INSTRUCTION


def sampled_shapes(path: Path, max_line_bytes: int) -> set[str]:
    """The shapes ("messages", "fields") of the sessions in the first SAMPLED_LINES lines of `path`."""
    shapes: set[str] = set()
    try:
        with path.open("rb") as raw:
            gzipped = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if gzipped else raw
            for _ in range(SAMPLED_LINES):
                line = stream.readline(max_line_bytes + 1)
                if not line:
                    break
                if len(line) > max_line_bytes:  # malformed anyway: skip the rest of it unread
                    while line and not line.endswith(b"\n"):
                        line = stream.readline(1 << 20)
                    continue
                shape = _shape(line)
                if shape:
                    shapes.add(shape)
    except (OSError, EOFError, zlib.error):
        pass  # a corrupt file: curation reports it; the lines read so far decide
    return shapes


def _shape(line: bytes) -> str | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    return "messages" if "messages" in record else "fields"
