"""The training records on the workspace, so that the dataset is tokenized and packed once, not once per rank.

TRL tokenizes and packs in `SFTTrainer.__init__`, the global main process first and then the others
(`global_then_local_main_first`), which saves work only when the dataset lives in files: then the main
process's `map` results are cached beside them and every other rank, and every later attempt, loads those
instead of recomputing. Records built in memory have no such cache, so all 8 ranks of an 8-GPU pod
tokenized everything (8x the CPU, with 7 ranks waiting in a collective barrier meanwhile). Here rank 0
writes the records once under `prepared/<config hash>/` (staged, then renamed: complete or absent); the
other ranks wait for that folder on the file system (no collective, so no barrier timeout) and load it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

PREPARED_DIR = "prepared"
SPLITS = ("train", "eval")
POLL_SECONDS = 0.5


def folder(workspace: Path, config_hash: str) -> Path:
    return workspace / PREPARED_DIR / config_hash[:16]


def file_backed(target: Path, records: dict[str, list[dict[str, Any]]], rank: int, timeout: float) -> dict[str, Any]:
    """The splits as datasets backed by files in `target`: written by rank 0 unless present, waited for elsewhere."""
    from datasets import Dataset, load_from_disk

    if rank == 0 and not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            for split in SPLITS:
                Dataset.from_list(records[split]).save_to_disk(str(staging / split))
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    deadline = time.monotonic() + timeout
    while not target.is_dir():
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank 0 did not write {target} within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)
    return {split: load_from_disk(str(target / split)) for split in SPLITS}
