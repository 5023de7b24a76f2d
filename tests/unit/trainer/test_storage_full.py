"""A full workspace volume during training, on a real (tmpfs) filesystem: no mocks of the disk.

The trainer runs in a private mount namespace whose workspace is a small tmpfs (`fullvolume`). Once
a checkpoint is sealed, the trainer is paused (SIGSTOP), the volume is shrunk to what it uses plus a
margin smaller than the next artifact, and the trainer continues: its next checkpoint (or the final
model) genuinely fails with ENOSPC. Then the volume is grown again, as after raising its size or
freeing space, and a new attempt resumes from the checkpoint that was kept.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from fullvolume import KiB, MiB, SmallVolume, open_volume
from transformers import AutoModelForCausalLM

from finetune_trainer.train import checkpoints, output

from .conftest import FAST_TRAINING, job_document, write_dataset


def start(volume: SmallVolume, job: Path, termination: Path, save_steps: int) -> subprocess.Popen[str]:
    environment = {**os.environ, "FINETUNE_TERMINATION_LOG": str(termination), "FINETUNE_SAVE_STEPS": str(save_steps)}
    argv = [sys.executable, "-m", "finetune_trainer.train", "--config", str(job)]
    return volume.popen(argv, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen[str], termination: Path) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
    output, _ = process.communicate(timeout=600)
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    message = json.loads(termination.read_text()) if termination.exists() else {}
    termination.unlink(missing_ok=True)
    return process.returncode, events, message


def fill_after_first_checkpoint(
    volume: SmallVolume, process: subprocess.Popen[str], margin: int
) -> checkpoints.Checkpoint:
    """Pause the trainer once a checkpoint is sealed and leave only `margin` bytes free; returns that checkpoint."""
    folder = volume.view / "checkpoints"
    deadline = time.monotonic() + 300
    while checkpoints.latest(folder) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the trainer wrote no checkpoint (exit {process.poll()})")
        time.sleep(0.01)
    process.send_signal(signal.SIGSTOP)
    try:
        sealed = checkpoints.latest(folder)
        assert sealed is not None
        _, used, _ = volume.usage()
        volume.resize(used + margin)
    finally:
        process.send_signal(signal.SIGCONT)
    return sealed


def prepare(volume: SmallVolume, tmp_path: Path, training: dict[str, Any]) -> tuple[Path, Path]:
    write_dataset(volume.view, train=48, evaluation=8)
    job = tmp_path / "job.json"  # outside the volume, like the ConfigMap it stands for
    job.write_text(json.dumps(job_document(volume.path, training)), encoding="utf-8")
    return job, tmp_path / "termination-log"


@pytest.mark.slow  # trains twice, ~20 s each
@pytest.mark.parametrize(
    ("margin", "cause"),
    [
        # model.safetensors (~610 KiB) does not fit: safetensors reports "No space left on device (os error 28)".
        (256 * KiB, "(No space left on device) while writing checkpoint-"),
        # It fits, optimizer.pt (~1.2 MiB) does not: torch.save's C++ writer loses the errno.
        (1 * MiB, "(RuntimeError: [enforce fail at inline_container.cc"),
    ],
    ids=["safetensors", "torch-save"],
)
def test_full_volume_at_a_checkpoint_keeps_the_previous_one_and_a_retry_resumes(
    tmp_path: Path, margin: int, cause: str
) -> None:
    with open_volume(tmp_path / "workspace", 64 * MiB) as volume:
        # Full fine-tuning: each checkpoint holds weights and optimizer state (~1.8 MiB), more than the margin.
        job, termination = prepare(volume, tmp_path, {**FAST_TRAINING, "method": "full", "epochs": 2})
        process = start(volume, job, termination, save_steps=2)
        intact = fill_after_first_checkpoint(volume, process, margin=margin)
        code, events, message = finish(process, termination)

        assert code == 13, events[-3:]
        assert (message["outcome"], message["reason"], message["failureKind"]) == ("Failed", "StorageFull", "User")
        text = message["message"]
        assert text.startswith(f"the workspace volume is full {cause}"), text
        assert "while writing checkpoint-" in text
        assert f"the last complete checkpoint, {intact.path.name}, is intact" in text
        assert " free of 64.0 MiB" not in text  # the size at failure, not the size it started with
        assert "free of " in text and "fix: raise spec.storage.size in a new job" in text
        assert re.search(r"\(about \d+\.\d MiB per checkpoint, up to 4 at once, plus model/\)", text), text

        folder = volume.view / "checkpoints"
        # The partial checkpoint was removed, not left holding the space: with it the volume would be full.
        assert not (folder / checkpoints.STAGING).exists()
        assert [p.name for p in folder.iterdir()] == [intact.path.name]
        assert volume.usage()[2] > margin * 0.9
        # The checkpoint that was complete before is still complete and loads.
        assert checkpoints.read_complete(folder / intact.path.name) == checkpoints.Checkpoint(
            folder / intact.path.name, intact.step, intact.config_hash
        )
        model = AutoModelForCausalLM.from_pretrained(folder / intact.path.name, local_files_only=True)
        assert sum(p.numel() for p in model.parameters()) > 0
        optimizer = torch.load(folder / intact.path.name / "optimizer.pt", weights_only=True)
        assert optimizer["state"]
        assert not (volume.view / "model").exists()

        volume.resize(64 * MiB)  # space freed (or the volume grown): the next attempt resumes
        code, events, message = finish(start(volume, job, termination, save_steps=2), termination)
        assert code == 0, events[-3:]
        resumed = next(event for event in events if event.get("event") == "resuming")
        assert resumed["step"] == intact.step
        assert message["outcome"] == "Succeeded"
        assert message["progress"]["step"] == message["progress"]["totalSteps"] > intact.step
        assert (volume.view / "model" / "metadata.json").is_file()


@pytest.mark.slow  # trains twice, ~15 s each
def test_full_volume_at_the_final_model_leaves_no_model_folder(tmp_path: Path) -> None:
    with open_volume(tmp_path / "workspace", 64 * MiB) as volume:
        # LoRA with one epoch: one checkpoint (at the epoch's end, a few KiB of adapter) and then model/
        # with the merged copy (~650 KiB), which cannot fit in the margin.
        job, termination = prepare(volume, tmp_path, {**FAST_TRAINING, "epochs": 1})
        process = start(volume, job, termination, save_steps=1000)
        final = fill_after_first_checkpoint(volume, process, margin=192 * KiB)
        code, events, message = finish(process, termination)

        assert code == 13, events[-3:]
        assert (message["reason"], message["failureKind"]) == ("StorageFull", "User")
        assert message["message"].startswith(
            "the workspace volume is full (No space left on device) while writing the final model"
        )
        assert f"{final.path.name}, is intact" in message["message"]
        # Neither model/ nor its hidden staging folder is left (logs/: the work log; prepared/: the packed dataset).
        assert sorted(p.name for p in volume.view.iterdir()) == [
            "builtin-model",
            "checkpoints",
            "dataset",
            "logs",
            "prepared",
            "tensorboard",
        ]
        assert checkpoints.latest(volume.view / "checkpoints") == checkpoints.Checkpoint(
            volume.view / "checkpoints" / final.path.name, final.step, final.config_hash
        )

        volume.resize(64 * MiB)
        code, events, message = finish(start(volume, job, termination, save_steps=1000), termination)
        assert code == 0, events[-3:]
        assert next(event for event in events if event.get("event") == "resuming")["step"] == final.step
        assert message["model"] == {"path": "model", "format": "safetensors", "adapter": True, "merged": True}
        metadata = json.loads((volume.view / "model" / "metadata.json").read_text())
        assert metadata["model"] == message["model"]


class FillingModel:
    """Stands in for a model whose weights take exactly the space left: the volume is real, the model trivial."""

    def __init__(self, volume: SmallVolume) -> None:
        self.volume = volume

    def save_pretrained(self, folder: Path, **options: Any) -> None:
        (Path(folder) / "model.safetensors").write_bytes(b"\0" * self.volume.usage()[2])


class NoTokenizer:
    def save_pretrained(self, folder: Path) -> None:
        pass


def test_model_folder_is_complete_with_its_metadata_or_absent(tmp_path: Path) -> None:
    """metadata.json is written before model/ is renamed into place, so a full volume cannot leave model/ without it."""
    with open_volume(tmp_path / "workspace", 64 * KiB) as volume:
        target = volume.view / "model"
        with pytest.raises(OSError, match="No space left on device"):
            output.save_model(
                FillingModel(volume), NoTokenizer(), target, adapter=False, merge=False, metadata={"configHash": "x"}
            )
        assert list(volume.view.iterdir()) == []  # no model/, no hidden staging folder
        assert volume.usage()[1] == 0
