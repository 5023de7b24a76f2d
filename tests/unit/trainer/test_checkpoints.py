import json
from pathlib import Path

import pytest

from finetune_operator.api.contract import ExitCode, Reason, exit_code_for
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import checkpoints

HASH = "a" * 64


def stage(root: Path, step: int, payload: bytes = b"weights") -> Path:
    staged = root / checkpoints.STAGING / f"checkpoint-{step}"
    staged.mkdir(parents=True)
    (staged / "model.safetensors").write_bytes(payload)
    (staged / "nested").mkdir()
    (staged / "nested" / "rng_state.pth").write_bytes(b"rng")
    return staged


def sealed(root: Path, step: int, config_hash: str = HASH) -> checkpoints.Checkpoint:
    return checkpoints.commit(stage(root, step), root, config_hash, {"learning_rate": 0.1})


def test_commit_moves_the_checkpoint_into_place_with_a_marker(tmp_path: Path) -> None:
    checkpoint = sealed(tmp_path, 5)
    assert checkpoint == checkpoints.Checkpoint(path=tmp_path / "checkpoint-5", step=5, config_hash=HASH)
    assert not (tmp_path / checkpoints.STAGING / "checkpoint-5").exists()
    marker = json.loads((checkpoint.path / checkpoints.MARKER).read_text())
    assert marker["files"] == {
        "finetune-config.json": marker["files"]["finetune-config.json"],
        "model.safetensors": 7,
        "nested/rng_state.pth": 3,
    }
    assert checkpoints.latest(tmp_path) == checkpoint


def test_latest_is_the_highest_complete_step_not_the_newest_name(tmp_path: Path) -> None:
    sealed(tmp_path, 2)
    expected = sealed(tmp_path, 10)
    sealed(tmp_path, 9)
    assert checkpoints.latest(tmp_path) == expected


def test_no_checkpoints(tmp_path: Path) -> None:
    assert checkpoints.latest(tmp_path) is None
    assert checkpoints.latest(tmp_path / "missing") is None


def test_unsealed_folder_is_never_picked(tmp_path: Path) -> None:
    good = sealed(tmp_path, 2)
    partial = tmp_path / "checkpoint-4"  # a Trainer-style folder without our marker (killed mid-write)
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half")
    assert checkpoints.latest(tmp_path) == good


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: (folder / "model.safetensors").write_bytes(b"trunc"),  # truncated after sealing
        lambda folder: (folder / "nested" / "rng_state.pth").unlink(),  # file lost
        lambda folder: (folder / checkpoints.MARKER).write_text("{not json"),  # marker corrupt
        lambda folder: (folder / checkpoints.MARKER).unlink(),  # marker lost
        lambda folder: (folder / checkpoints.CONFIG_FILE).unlink(),  # config lost
    ],
)
def test_corrupt_checkpoint_is_never_picked(tmp_path: Path, damage: object) -> None:
    good = sealed(tmp_path, 2)
    damaged = sealed(tmp_path, 4)
    damage(damaged.path)  # type: ignore[operator]
    assert checkpoints.latest(tmp_path) == good


def test_marker_of_another_step_is_rejected(tmp_path: Path) -> None:
    checkpoint = sealed(tmp_path, 3)
    checkpoint.path.rename(tmp_path / "checkpoint-30")
    assert checkpoints.latest(tmp_path) is None


def test_prune_keeps_the_newest_complete_ones_and_drops_stale_partials(tmp_path: Path) -> None:
    for step in (1, 2, 3, 4):
        sealed(tmp_path, step)
    stale = tmp_path / "checkpoint-0"
    stale.mkdir()
    newer_partial = tmp_path / "checkpoint-9"  # may be one being sealed right now: left alone
    newer_partial.mkdir()
    removed = checkpoints.prune(tmp_path, keep=2)
    assert sorted(path.name for path in removed) == ["checkpoint-0", "checkpoint-1", "checkpoint-2"]
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith("checkpoint")) == [
        "checkpoint-3",
        "checkpoint-4",
        "checkpoint-9",
    ]


def test_commit_replaces_an_unsealed_leftover_of_the_same_step(tmp_path: Path) -> None:
    (tmp_path / "checkpoint-6").mkdir()
    (tmp_path / "checkpoint-6" / "junk").write_text("x")
    checkpoint = sealed(tmp_path, 6)
    assert not (checkpoint.path / "junk").exists()
    assert checkpoints.latest(tmp_path) == checkpoint


def test_same_config_resumes(tmp_path: Path) -> None:
    checkpoints.check_resumable(sealed(tmp_path, 1), HASH, {"learning_rate": 0.1})


def test_other_config_refuses_to_resume_and_names_the_change(tmp_path: Path) -> None:
    with pytest.raises(JobFailed) as failure:
        checkpoints.check_resumable(sealed(tmp_path, 1), "b" * 64, {"learning_rate": 0.2})
    assert failure.value.reason is Reason.CHECKPOINT_MISMATCH
    assert exit_code_for(failure.value.reason) is ExitCode.USER_CONFIG_ERROR
    assert "changed: learning_rate" in failure.value.message
    assert "checkpoint-1" in failure.value.message


def test_clear_staging_removes_leftovers(tmp_path: Path) -> None:
    stage(tmp_path, 3)
    staging = checkpoints.clear_staging(tmp_path)
    assert staging.is_dir() and not any(staging.iterdir())
