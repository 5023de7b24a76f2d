"""The dataset is tokenized and packed once per workspace: by rank 0; other ranks and later attempts load it."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from finetune_trainer.train import prepared

from .conftest import FAST_TRAINING, write_dataset, write_job

WORKER = Path(__file__).with_name("prepare_worker.py")


def prepare_as(workspace: Path, model_dir: Path, rank: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(WORKER), str(workspace), str(model_dir), str(rank)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def files_under(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


@pytest.mark.slow  # two processes building a trainer each
def test_rank_one_loads_what_rank_zero_tokenized_and_packed(tmp_path: Path, tiny_model_dir: Path) -> None:
    write_dataset(tmp_path, train=48, evaluation=8)
    write_job(tmp_path, FAST_TRAINING)
    first = prepare_as(tmp_path, tiny_model_dir, rank=0)
    root = tmp_path / prepared.PREPARED_DIR
    written = files_under(root)
    assert any(name.split("/")[-1].startswith("cache-") for name in written), written  # TRL's map results
    second = prepare_as(tmp_path, tiny_model_dir, rank=1)
    assert files_under(root) == written  # nothing recomputed: every map result came from rank 0's cache
    assert second["rows"] == first["rows"] and second["files"] == first["files"]
    assert all(Path(name).is_relative_to(root) for name in second["files"])


def test_a_rank_waits_for_rank_zero_and_gives_up_at_the_timeout(tmp_path: Path) -> None:
    with pytest.raises(TimeoutError, match="rank 0 did not write"):
        prepared.file_backed(tmp_path / "prepared" / "abc", {"train": [], "eval": []}, rank=1, timeout=0.2)
