"""What a W&B run wrote to its `run-<id>.wandb` file, read back for tests.

The file is W&B's transaction log, the same that `wandb sync` uploads: LevelDB's log framing (32 KiB blocks of
records with a 7-byte header, a record split over blocks as FIRST/MIDDLE/LAST) after a 7-byte `:W&B` header,
each record one `wandb_internal_pb2.Record` protobuf. wandb 0.31 ships no Python reader of it any more (its Go
core reads it), so the framing is read here; the records are parsed with wandb's own protobuf classes.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

_BLOCK = 32768
_RECORD_HEADER = struct.Struct("<IHB")  # crc32, length, type
_FILE_HEADER = struct.Struct("<4sHB")  # ":W&B", magic 0xBEE1, version 0
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[Any]:
    data = path.read_bytes()
    ident, magic, version = _FILE_HEADER.unpack_from(data)
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), f"{path} is not a W&B run file"
    position, pending = _FILE_HEADER.size, b""
    while position + _RECORD_HEADER.size <= len(data):
        left_in_block = _BLOCK - position % _BLOCK
        checksum, length, kind = (
            _RECORD_HEADER.unpack_from(data, position) if left_in_block >= _RECORD_HEADER.size else (0, 0, 0)
        )
        if kind == 0:  # the block's zero padding
            position += left_in_block
            continue
        chunk = data[position + _RECORD_HEADER.size : position + _RECORD_HEADER.size + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == checksum, f"{path}: bad checksum at {position}"
        position += _RECORD_HEADER.size + length
        pending += chunk
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


@dataclass
class RunFile:
    run_id: str = ""
    project: str = ""
    display_name: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    """One row per committed step, W&B's own keys (`_step`, `_runtime`, `_timestamp`) included."""
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    """Each logged artifact: name, type and its files (path -> local staged copy)."""
    exit_code: int | None = None


def read(path: Path) -> RunFile:
    run = RunFile()
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.run_id, run.project, run.display_name = record.run.run_id, record.run.project, record.run.display_name
            run.tags = list(record.run.tags)
            run.config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "config":
            run.config.update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "history":
            run.history.append({_key(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "artifact":
            files = {entry.path: entry.local_path for entry in record.artifact.manifest.contents}
            run.artifacts.append({"name": record.artifact.name, "type": record.artifact.type, "files": files})
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def run_files(workspace: Path) -> list[Path]:
    """Every run file W&B wrote under a workspace (`wandb/offline-run-*/run-*.wandb`, `wandb/run-*/...`)."""
    return sorted((workspace / "wandb").glob("*run-*/run-*.wandb"))
