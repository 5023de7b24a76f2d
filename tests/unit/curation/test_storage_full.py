"""A full workspace volume during curation, on a real (tmpfs) filesystem: StorageFull, nothing left behind.

The curator runs in a private mount namespace whose dataset folder is a small tmpfs (`fullvolume`);
the sessions are read from outside it, like the source PVC. A volume smaller than the dataset fails
while streaming the splits; one that holds the splits once but not twice fails during the
`maxSamples` cap, which copies each split. Either way: exit 13, reason StorageFull, and an empty
dataset folder (no split, no hidden partial file, no manifest), so nothing looks complete and the
space is free again. A stale dataset from an earlier run is removed too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fullvolume import KiB, MiB, SmallVolume, open_volume

from .helpers import flat, write_jsonl

SESSIONS = 400


def curate(volume: SmallVolume, source: Path, termination: Path, *flags: str) -> tuple[int, dict[str, Any]]:
    argv = [sys.executable, "-m", "finetune_trainer.curate", "--input", str(source), "--output-dir"]
    environment = {**os.environ, "FINETUNE_TERMINATION_LOG": str(termination)}
    environment.pop("FINETUNE_CONFIG", None)
    process = volume.popen([*argv, str(volume.path / "dataset"), *flags], env=environment, stdout=subprocess.PIPE)
    process.communicate(timeout=300)
    return process.returncode, json.loads(termination.read_text())


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sessions")
    return write_jsonl(folder / "sessions.jsonl", [flat(f"s{index}") for index in range(SESSIONS)])


@pytest.fixture(scope="module")
def dataset_bytes(source: Path, tmp_path_factory: pytest.TempPathFactory) -> int:
    """The size of the complete dataset (both splits), measured on a volume large enough for it."""
    folder = tmp_path_factory.mktemp("measure")
    with open_volume(folder / "workspace", 64 * MiB) as volume:
        code, message = curate(volume, source, folder / "termination-log")
        assert code == 0, message
        return sum(path.stat().st_size for path in (volume.view / "dataset").glob("*.jsonl"))


@pytest.mark.parametrize("stage", ["streaming", "cap"])
def test_full_volume_fails_with_storage_full_and_leaves_no_dataset(
    tmp_path: Path, source: Path, dataset_bytes: int, stage: str
) -> None:
    assert dataset_bytes > 256 * KiB
    # tmpfs counts whole 4 KiB pages: a volume at 1.5x the splits holds them once, not a capped copy beside them.
    size, flags = (
        (dataset_bytes // 2, []) if stage == "streaming" else (dataset_bytes * 3 // 2, ["--max-samples", "390"])
    )
    with open_volume(tmp_path / "workspace", size) as volume:
        stale = volume.view / "dataset"
        stale.mkdir()
        for name in ("train.jsonl", "eval.jsonl"):
            (stale / name).write_text('{"stale": true}\n')
        termination = tmp_path / "termination-log"

        code, message = curate(volume, source, termination, *flags)

        assert code == 13, message
        assert (message["outcome"], message["reason"], message["failureKind"]) == ("Failed", "StorageFull", "User")
        text = message["message"]
        assert text.startswith("the workspace volume is full ([Errno 28] No space left on device) while writing")
        assert f"the dataset to {volume.path / 'dataset'}: " in text
        assert "free of " in text and "fix: raise spec.storage.size in a new job" in text
        assert sorted(path.name for path in (volume.view / "dataset").iterdir()) == []
        assert volume.usage()[1] == 0  # every byte written was given back

        volume.resize(64 * MiB)  # a larger volume: the same curation succeeds
        code, message = curate(volume, source, termination, *flags)
        assert code == 0, message
        manifest = json.loads((volume.view / "dataset" / "manifest.json").read_text())
        assert manifest["outcome"] == "Succeeded"
