"""Real chat training on CPU: tiny-gpt learns to call the right tool on held-out conversations.

The task (chatdata.py) has three tools, so a model that picked one at random would name the right function a
third of the time; an untrained one makes no parsable call at all. The bound below is far above that chance
level, and the run takes the quickstart's settings (method full, lr 0.01, seed 42) for two epochs.
"""

from __future__ import annotations

from pathlib import Path

from .chatdata import TOOLS, write_chat_dataset
from .conftest import write_job
from .test_training_runs import finish, start

CHANCE = 1 / len(TOOLS)
CHAT_TRAINING = {
    "method": "full",
    "epochs": 3,
    "batchSize": 4,
    "maxSeqLength": 512,
    "learningRate": 0.01,
    "seed": 42,
    "precision": "fp32",
}


def test_tool_calling_is_learned_well_above_chance(tmp_path: Path) -> None:
    write_chat_dataset(tmp_path, train=96, evaluation=12, seed=3)
    write_job(tmp_path, CHAT_TRAINING, evaluation={"minToolCallAccuracy": 0.5})
    run = finish(tmp_path, start(tmp_path))
    assert run.returncode == 0, run.events[-5:]
    metrics = run.termination["metrics"]
    assert metrics["toolCallsScored"] >= 12  # at least one tool-call turn per held-out conversation
    assert metrics["toolCallAccuracy"] >= 2 * CHANCE, metrics
    assert 0.0 <= metrics["toolCallArgumentsMatch"] <= metrics["toolCallAccuracy"]
    assert "evalExactMatch" not in metrics  # text scores are for instruction datasets
    assert run.termination["hyperparameters"]["minToolCallAccuracy"] == 0.5
