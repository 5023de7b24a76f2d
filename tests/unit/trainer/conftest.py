"""Fixtures for the trainer tests: a small synthetic curated dataset and a job.json around it.

The task (list some build steps in reverse order) is learnable by a 2-layer model within a few
dozen steps, so tests can see the loss fall; sample lengths vary (2-12 steps) so that packing has
something to pack.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

WORDS = [
    "build",
    "test",
    "deploy",
    "lint",
    "format",
    "commit",
    "push",
    "merge",
    "review",
    "fix",
    "refactor",
    "docs",
    "release",
    "tag",
    "branch",
    "rebase",
]


def synthetic_sample(rng: random.Random, index: int) -> dict[str, Any]:
    steps = [rng.choice(WORDS) for _ in range(rng.randint(2, 12))]
    return {
        "instruction": f"Run these steps in reverse order: {' '.join(steps)}",
        "input": "repository: demo" if index % 3 == 0 else "",
        "output": " then ".join(reversed(steps)) + ".",
        "metadata": {"session_id": f"s{index}", "success_rate": 1.0},
    }


def write_dataset(workspace: Path, train: int, evaluation: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    folder = workspace / "dataset"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [synthetic_sample(rng, index) for index in range(train + evaluation)]
    outputs = {}
    for name, part in (("train.jsonl", rows[:train]), ("eval.jsonl", rows[train:])):
        content = "".join(json.dumps(row) + "\n" for row in part).encode("utf-8")
        (folder / name).write_bytes(content)
        outputs[name] = {"records": len(part), "sha256": hashlib.sha256(content).hexdigest()}
    manifest = {
        "outcome": "Succeeded",
        "samples": train + evaluation,
        "counts": {"sourceRecords": train + evaluation + 3},
        "outputs": outputs,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def job_document(workspace: Path, training: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "finetune.dev/v1alpha1",
        "job": {"name": "demo", "namespace": "ml", "uid": "0000"},
        "spec": {
            "baseModel": {"name": "tiny-gpt", "builtin": "tiny-gpt"},
            "dataset": {"source": {"configMap": {"name": "sessions", "key": "sessions.jsonl"}}},
            "training": training,
            "output": {"modelName": "demo"},
            **spec,
        },
        "paths": {"workspace": str(workspace), "sourceGlob": "/mnt/source/*.jsonl", "baseModel": None},
    }


def write_job(workspace: Path, training: dict[str, Any], **spec: Any) -> Path:
    path = workspace / "job.json"
    path.write_text(json.dumps(job_document(workspace, training, **spec)), encoding="utf-8")
    return path


# Small enough for seconds per run on 2 CPU cores, large enough to learn something.
FAST_TRAINING = {"epochs": 3, "batchSize": 4, "maxSeqLength": 128, "learningRate": 0.01, "seed": 7}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    write_dataset(tmp_path, train=48, evaluation=8)
    return tmp_path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from finetune_trainer.train import data, tinygpt

    root = tmp_path_factory.mktemp("tiny")
    write_dataset(root, train=48, evaluation=8)
    samples = data.load_dataset(root / "dataset").train
    return tinygpt.ensure_tiny_gpt(root / "tiny-gpt", (data.sample_text(s) for s in samples), seed=7)
