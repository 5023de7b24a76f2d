"""Writing the dataset so that a crash never leaves a complete-looking half dataset.

`manifest.json` is the completion marker: it is removed before anything else
is touched and written last. Samples go to hidden `.partial` files; only when
both are complete (and fsynced) are they renamed to train.jsonl/eval.jsonl,
then the manifest is written to a temporary name and renamed. A reader that
finds a manifest with outcome Succeeded can trust the files beside it
(their sha256 is in it).

`maxSamples` is applied after the stream: each written line's cap key is kept
(8 bytes a sample, in an array), the threshold of the k smallest is found, and
the partial files are filtered once more into their final form.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

MANIFEST = "manifest.json"
SPLITS = ("train", "eval")


@dataclass(frozen=True, slots=True)
class WrittenFile:
    name: str
    records: int
    bytes: int
    sha256: str


class DatasetWriter:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MANIFEST).unlink(missing_ok=True)
        self._files: dict[str, IO[bytes]] = {
            split: self._partial(split).open("wb", buffering=1 << 20) for split in SPLITS
        }
        self._cap_keys: dict[str, array[int]] = {split: array("Q") for split in SPLITS}
        # Hashed while streaming: without a cap, the partial file is final as written.
        self._digests = {split: hashlib.sha256() for split in SPLITS}
        self._sizes = dict.fromkeys(SPLITS, 0)

    def _partial(self, split: str, stage: str = "partial") -> Path:
        # Hidden names that no reader globbing *.jsonl picks up.
        return self.directory / f".{split}.jsonl.{stage}"

    def write(self, split: str, line: bytes, cap_key: int) -> None:
        self._files[split].write(line)
        self._cap_keys[split].append(cap_key)
        self._digests[split].update(line)
        self._sizes[split] += len(line)

    def commit(self, max_samples: int | None) -> dict[str, WrittenFile]:
        """Make train.jsonl and eval.jsonl final; returns what they hold."""
        for handle in self._files.values():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        threshold = _cap_threshold(self._cap_keys, max_samples)
        if threshold is None:
            written = {split: self._as_written(split) for split in SPLITS}
        else:
            written = {}
            for split in SPLITS:  # in order: ties at the threshold go to the first written
                written[split], threshold = self._apply_cap(split, threshold)
        for split in SPLITS:
            os.replace(self._partial(split, "final"), self.directory / f"{split}.jsonl")
        _fsync_directory(self.directory)
        return written

    def abort(self) -> None:
        """Drop partial output and any stale dataset, so a failed run leaves nothing to train on.

        Closing flushes the write buffer, which fails again on a full volume; the file is closed
        anyway, and removed like the others (a leftover would keep holding the space).
        """
        for handle in self._files.values():
            with contextlib.suppress(OSError):
                handle.close()
        for split in SPLITS:
            for stage in ("partial", "final"):
                self._partial(split, stage).unlink(missing_ok=True)
            (self.directory / f"{split}.jsonl").unlink(missing_ok=True)
        self._manifest_partial().unlink(missing_ok=True)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        temporary = self._manifest_partial()
        with temporary.open("wb") as handle:
            handle.write(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.directory / MANIFEST)
        _fsync_directory(self.directory)

    def _manifest_partial(self) -> Path:
        return self.directory / f".{MANIFEST}.partial"

    def _as_written(self, split: str) -> WrittenFile:
        os.replace(self._partial(split), self._partial(split, "final"))
        records = len(self._cap_keys[split])
        return WrittenFile(f"{split}.jsonl", records, self._sizes[split], self._digests[split].hexdigest())

    def _apply_cap(self, split: str, threshold: tuple[int, int]) -> tuple[WrittenFile, tuple[int, int]]:
        """Copy the partial file to its final temporary name, keeping only samples within the cap."""
        source, target = self._partial(split), self._partial(split, "final")
        digest, records, size = hashlib.sha256(), 0, 0
        keys = self._cap_keys[split]
        with source.open("rb") as reader, target.open("wb", buffering=1 << 20) as writer:
            for index, line in enumerate(reader):
                if not _within_cap(keys[index], threshold):
                    continue
                threshold = _consume_tie(keys[index], threshold)
                writer.write(line)
                digest.update(line)
                records += 1
                size += len(line)
            writer.flush()
            os.fsync(writer.fileno())
        source.unlink()
        return WrittenFile(f"{split}.jsonl", records, size, digest.hexdigest()), threshold


def _cap_threshold(keys: dict[str, array[int]], max_samples: int | None) -> tuple[int, int] | None:
    """(largest kept key, how many samples with that key may be kept), or None when no cap applies.

    Keys hash the session id, so sessions sharing an id tie; ties are resolved
    deterministically (first written wins) to keep exactly `max_samples`.
    """
    combined = np.concatenate([np.frombuffer(keys[split], dtype=np.uint64) for split in SPLITS])
    if max_samples is None or combined.size <= max_samples:
        return None
    limit = int(np.partition(combined, max_samples - 1)[max_samples - 1])
    below = int(np.count_nonzero(combined < limit))
    return limit, max_samples - below


def _within_cap(key: int, threshold: tuple[int, int]) -> bool:
    limit, ties_left = threshold
    return key < limit or (key == limit and ties_left > 0)


def _consume_tie(key: int, threshold: tuple[int, int]) -> tuple[int, int]:
    limit, ties_left = threshold
    return (limit, ties_left - 1) if key == limit else threshold


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
