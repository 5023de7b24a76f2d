"""spec.tracking.wandb in a training run, with the real `wandb` SDK in offline mode (no network here): the run
files it writes into the workspace hold the resolved hyperparameters as config, the tags naming the job, the
per-step metric history, the dataset manifest as an artifact and the run's end; an unreachable online server
degrades the run without failing or stalling training."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from finetune_operator.api.termination import TerminationMessage
from finetune_trainer.tracking import wandb_backend
from finetune_trainer.train import tracking
from localservers import free_port
from support import wandbfile

from .jobs import UID, job_config, trainer_log


@pytest.fixture(autouse=True)
def sdk_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The backend points the SDK's own folders at the workspace in os.environ (setdefault: spec.env wins);
    restore them after each test so one test's workspace is not the next one's."""
    for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)
    yield


def test_an_offline_run_writes_config_tags_history_and_manifest_into_the_workspace(tmp_path: Path) -> None:
    workspace, dataset = tmp_path / "workspace", tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "manifest.json").write_text(json.dumps({"outcome": "Succeeded"}))
    hyperparameters = {"epochs": 2, "learningRate": 0.0002, "method": "lora", "lora": {"r": 8}}
    config = job_config({"wandb": {"project": "agents", "entity": "ml-team", "mode": "offline"}}, workspace)
    tracker = tracking.start(config, {}, hyperparameters)
    assert tracker is not None
    callback = tracking.TrackingCallback(tracker)
    for step in (1, 2, 3):
        trainer_log(callback, step, {"loss": 3.0 - step / 10, "learning_rate": 1e-4, "grad_norm": 0.5})
    trainer_log(callback, 3, {"eval_loss": 2.5, "eval_runtime": 0.1})
    summary = tracking.finish(tracker, dataset, 3, {"evalLoss": 2.4, "trainLoss": 2.7}, succeeded=True)

    reference = TerminationMessage.model_validate({"outcome": "Succeeded", "tracking": summary}).tracking
    assert reference is not None and reference.wandb is not None and reference.wandb.degraded is None
    assert (reference.wandb.run_id, reference.wandb.path) == (UID, f"ml-team/agents/{UID}")
    assert reference.wandb.url is None  # offline: no server page
    assert reference.wandb.directory is not None and reference.wandb.directory.startswith("wandb/offline-run-")
    [run_file] = wandbfile.run_files(workspace)
    assert run_file.parent == workspace / reference.wandb.directory
    run = wandbfile.read(run_file)
    assert (run.run_id, run.project, run.display_name) == (UID, "agents", "ml/support-agent")
    assert {key: run.config[key] for key in hyperparameters} == hyperparameters
    assert run.config["finetune"] == {
        "job": "support-agent",
        "namespace": "ml",
        "job-uid": UID,
        "model": "support-bot",
        "model-version": "1.2.0",
        "base-model": "tiny",
    }
    assert "job:support-agent" in run.tags and f"job-uid:{UID}" in run.tags
    losses = [(row["_step"], round(row["trainLoss"], 3)) for row in run.history if "trainLoss" in row]
    assert losses == [(1, 2.9), (2, 2.8), (3, 2.7)]
    # The evaluation during training and the final one share the last step: W&B keeps the later value.
    assert [row["evalLoss"] for row in run.history if "evalLoss" in row] == [2.4]
    [artifact] = run.artifacts
    assert (artifact["name"], artifact["type"], list(artifact["files"])) == (
        "support-agent-dataset",
        "dataset",
        ["manifest.json"],
    )
    staged = Path(artifact["files"]["manifest.json"])
    assert staged.is_relative_to(workspace / "wandb") and json.loads(staged.read_text()) == {"outcome": "Succeeded"}
    assert run.exit_code == 0


def test_a_failed_job_ends_its_run_with_a_nonzero_exit_code(tmp_path: Path) -> None:
    tracker = tracking.start(
        job_config({"wandb": {"project": "agents", "mode": "offline"}}, tmp_path), {}, {"epochs": 1}
    )
    assert tracker is not None
    summary = tracking.finish(tracker, tmp_path / "no-dataset", 0, {}, succeeded=False)
    assert summary["wandb"] == {"runId": UID, "path": f"agents/{UID}", "directory": summary["wandb"]["directory"]}  # type: ignore[index]
    [run_file] = wandbfile.run_files(tmp_path)
    assert wandbfile.read(run_file).exit_code == 1


def test_an_unreachable_server_degrades_the_run_once_and_training_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wandb_backend, "INIT_TIMEOUT_SECONDS", 3.0)  # the SDK retries until then
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    host = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = job_config({"wandb": {"project": "agents", "host": host}}, tmp_path)
    now = [0.0]
    backends = tracking.configured_backends(config, {})
    tracker = tracking.Tracker(backends, clock=lambda: now[0], retry_seconds=30.0)
    tracker.start({"epochs": 1}, tracking.tags(config))
    callback = tracking.TrackingCallback(tracker)
    for step in (1, 2):
        now[0] += 31.0  # past the retry interval: the tracker tries the backend again
        trainer_log(callback, step, {"loss": 1.0})
    summary = tracking.finish(tracker, tmp_path, 2, {"evalLoss": 1.0}, succeeded=True)

    reference = TerminationMessage.model_validate({"outcome": "Succeeded", "tracking": summary}).tracking
    assert reference is not None and reference.wandb is not None and reference.wandb.run_id is None
    assert reference.wandb.degraded is not None and "127.0.0.1" in reference.wandb.degraded
    assert reference.wandb.unsent_steps == 3
    # One wandb.init per pod: the retries after the failed start did not wait on the server again.
    assert len(list((tmp_path / "wandb").glob("run-*"))) == 1
