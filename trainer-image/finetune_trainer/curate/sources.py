"""Streaming input: files matched by a glob, plain or gzip, read line by line with bounded memory.

A line longer than `max_line_bytes` is never held whole: it is reported and
skipped chunk by chunk. A corrupt or truncated gzip stream ends that file with
a reported error instead of an exception. Each file's SHA-256 is computed on the
raw bytes as they are read, so provenance costs no second pass.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def resolve(pattern: str) -> list[Path]:
    """Regular files matching `pattern` (a glob or a plain path), sorted for a stable order."""
    return sorted(Path(match) for match in glob.glob(pattern, recursive=True) if Path(match).is_file())


@dataclass(frozen=True, slots=True)
class LineTooLong:
    size: int
    """Bytes seen before the end of the line (or of the file)."""


@dataclass(frozen=True, slots=True)
class StreamError:
    message: str


@dataclass(slots=True)
class SourceStats:
    path: Path
    compressed: bool = False
    bytes: int = 0
    lines: int = 0
    sha256: str = ""
    error: str | None = None
    _digest: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)


class _HashingReader(io.RawIOBase):
    def __init__(self, raw: IO[bytes], stats: SourceStats) -> None:
        self._raw = raw
        self._stats = stats

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if count:
            self._stats._digest.update(buffer[:count])
            self._stats.bytes += count
        return int(count or 0)


Line = bytes | LineTooLong | StreamError


def read_lines(path: Path, stats: SourceStats, max_line_bytes: int) -> Iterator[Line]:
    """Yield each line of `path` (without its newline), a LineTooLong, or a final StreamError."""
    with path.open("rb", buffering=0) as raw:
        hashing = _HashingReader(raw, stats)
        stream: IO[bytes] = io.BufferedReader(hashing, buffer_size=_CHUNK)
        stats.compressed = stream.peek(2)[:2] == _GZIP_MAGIC  # type: ignore[attr-defined]
        if stats.compressed:
            stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
        try:
            yield from _split_lines(stream, stats, max_line_bytes)
        except (EOFError, OSError, zlib.error) as error:
            stats.error = f"{'gzip stream' if stats.compressed else 'read'} error: {error}"
            yield StreamError(stats.error)
        # Hash whatever a decoding error left unread, so the digest covers the whole file.
        while hashing.read(_CHUNK):
            pass
    stats.sha256 = stats._digest.hexdigest()


def _split_lines(stream: IO[bytes], stats: SourceStats, max_line_bytes: int) -> Iterator[Line]:
    while line := stream.readline(max_line_bytes + 1):
        stats.lines += 1
        if line.endswith(b"\n"):
            yield line[:-1]
        elif len(line) <= max_line_bytes:
            yield line  # last line without a newline
        else:
            size = len(line)
            while (rest := stream.readline(_CHUNK)) and not rest.endswith(b"\n"):
                size += len(rest)
            yield LineTooLong(size + len(rest.rstrip(b"\n")))
