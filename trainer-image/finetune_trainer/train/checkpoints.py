"""Atomic checkpoints in workspace/checkpoints/, and choosing the one to resume from.

The Hugging Face Trainer writes `checkpoint-<step>/` file by file into its output folder; a pod
killed midway leaves a folder that looks like a checkpoint but is not one. So the Trainer writes
into `checkpoints/.staging/`, and `commit` then adds our files (the training config and its hash)
and a `COMPLETE` marker listing every file with its size, fsyncs them, and renames the folder to
`checkpoints/checkpoint-<step>` — a rename within one filesystem is atomic, so a checkpoint either
exists complete or not at all. `latest` only accepts folders whose marker parses and whose files
still have the recorded sizes, which also rejects checkpoints truncated later (a full disk, a
half-copied PVC).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed

STAGING = ".staging"
MARKER = "COMPLETE"
CONFIG_FILE = "finetune-config.json"
_NAME = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int
    config_hash: str


def commit(staged: Path, checkpoints: Path, config_hash: str, config: dict[str, object]) -> Checkpoint:
    """Seal a checkpoint the Trainer wrote into the staging folder and move it into place."""
    step = step_of(staged)
    _write_synced(staged / CONFIG_FILE, json.dumps({"configHash": config_hash, "config": config}, indent=1))
    files = {
        str(path.relative_to(staged)): path.stat().st_size
        for path in sorted(staged.rglob("*"))
        if path.is_file() and path.name != MARKER
    }
    for name in files:
        _fsync_file(staged / name)
    marker = {"step": step, "configHash": config_hash, "files": files}
    _write_synced(staged / MARKER, json.dumps(marker, indent=1))
    target = checkpoints / staged.name
    if target.exists():
        # Only an unsealed leftover can sit here: `latest` never resumes before a sealed step.
        shutil.rmtree(target)
    staged.rename(target)
    _fsync_dir(checkpoints)
    return Checkpoint(path=target, step=step, config_hash=config_hash)


def latest(checkpoints: Path) -> Checkpoint | None:
    complete = [checkpoint for checkpoint in map(read_complete, _candidates(checkpoints)) if checkpoint]
    return max(complete, key=lambda checkpoint: checkpoint.step, default=None)


def read_complete(folder: Path) -> Checkpoint | None:
    """The checkpoint in `folder` if it is sealed and intact, else None."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        files = marker["files"]
        intact = all((folder / name).stat().st_size == size for name, size in files.items())
        if not intact or CONFIG_FILE not in files or marker["step"] != step_of(folder):
            return None
        return Checkpoint(path=folder, step=int(marker["step"]), config_hash=str(marker["configHash"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def check_resumable(checkpoint: Checkpoint, config_hash: str, config: dict[str, object]) -> None:
    """Refuse to continue a run that was trained with other settings (exit 11)."""
    if checkpoint.config_hash == config_hash:
        return
    try:
        stored = json.loads((checkpoint.path / CONFIG_FILE).read_text(encoding="utf-8"))["config"]
        changed = sorted(key for key in config.keys() | stored.keys() if config.get(key) != stored.get(key))
    except (OSError, ValueError, KeyError, TypeError):
        changed = []
    detail = f" (changed: {', '.join(changed)})" if changed else ""
    raise JobFailed(
        Reason.CHECKPOINT_MISMATCH,
        f"{checkpoint.path.name} was trained with config {checkpoint.config_hash[:12]}, this job's config is "
        f"{config_hash[:12]}{detail}; resuming would mix two runs: delete checkpoints/ in the workspace "
        "or create a new FineTuningJob",
    )


def prune(checkpoints: Path, keep: int, protect: int | None = None) -> list[Path]:
    """Delete all but the newest `keep` complete checkpoints (and the one of step `protect`), and unsealed
    leftovers older than them."""
    complete = sorted(
        (checkpoint for checkpoint in map(read_complete, _candidates(checkpoints)) if checkpoint),
        key=lambda checkpoint: checkpoint.step,
    )
    kept = {checkpoint.path for checkpoint in complete[-keep:]}
    kept |= {checkpoint.path for checkpoint in complete if checkpoint.step == protect}
    newest = complete[-1].step if complete else -1
    doomed = [folder for folder in _candidates(checkpoints) if folder not in kept and step_of(folder) <= newest]
    for folder in doomed:
        shutil.rmtree(folder, ignore_errors=True)
    return doomed


def clear_staging(checkpoints: Path) -> Path:
    """An empty staging folder: whatever a killed run left there is unsealed and useless."""
    staging = checkpoints / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def step_of(folder: Path) -> int:
    match = _NAME.match(folder.name)
    if match is None:
        raise ValueError(f"not a checkpoint folder name: {folder.name}")
    return int(match.group(1))


def _candidates(checkpoints: Path) -> list[Path]:
    if not checkpoints.is_dir():
        return []
    return [folder for folder in checkpoints.iterdir() if folder.is_dir() and _NAME.match(folder.name)]


def _write_synced(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
