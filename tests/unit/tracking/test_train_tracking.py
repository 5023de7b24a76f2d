"""spec.tracking in a training run (finetune_trainer.train.tracking) against a real `mlflow server`: the run a job
gets (params = resolved hyperparameters, tags naming the job), the Trainer's log records as metric histories
under the status metric names, and what `finish` hands the termination message."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from finetune_operator.api.termination import TerminationMessage
from finetune_trainer.train import tracking
from localservers import MlflowServer, free_port

from .conftest import rest
from .jobs import UID, job_config, trainer_log


def test_a_jobs_run_has_its_params_tags_step_metrics_and_manifest(mlflow_server: MlflowServer, tmp_path: Path) -> None:
    experiment = f"agents-{uuid.uuid4().hex[:8]}"
    hyperparameters = {"epochs": 2, "learningRate": 0.0002, "method": "lora", "lora": {"r": 8}, "seed": None}
    tracker = tracking.start(
        job_config({"mlflow": {"trackingUri": mlflow_server.url, "experiment": experiment}}), {}, hyperparameters
    )
    assert tracker is not None
    callback = tracking.TrackingCallback(tracker)
    for step in (1, 2, 3):
        trainer_log(callback, step, {"loss": 3.0 - step / 10, "learning_rate": 1e-4, "grad_norm": 0.5, "epoch": 1.0})
    trainer_log(callback, 3, {"eval_loss": 2.5, "eval_runtime": 0.1})
    trainer_log(callback, 3, {"train_runtime": 9.0})  # nothing tracked: no entry
    (tmp_path / "manifest.json").write_text(json.dumps({"outcome": "Succeeded"}))
    summary = tracking.finish(tracker, tmp_path, 3, {"evalLoss": 2.4, "trainLoss": 2.7}, succeeded=True)

    reference = TerminationMessage.model_validate({"outcome": "Succeeded", "tracking": summary}).tracking
    assert reference is not None and reference.mlflow is not None and reference.mlflow.degraded is None
    run = rest(mlflow_server.url, "mlflow/runs/get", {"run_id": reference.mlflow.run_id})["run"]
    assert run["info"]["status"] == "FINISHED"
    assert run["info"]["run_name"] == "ml/support-agent"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params == {"epochs": "2", "learningRate": "0.0002", "method": "lora", "lora": '{"r": 8}'}
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert {key: tags[key] for key in tags if key.startswith("finetune.dev/")} == {
        "finetune.dev/job": "support-agent",
        "finetune.dev/namespace": "ml",
        "finetune.dev/job-uid": UID,
        "finetune.dev/model": "support-bot",
        "finetune.dev/model-version": "1.2.0",
        "finetune.dev/base-model": "tiny",
    }
    history = rest(
        mlflow_server.url, "mlflow/metrics/get-history", {"run_id": reference.mlflow.run_id, "metric_key": "trainLoss"}
    )["metrics"]
    assert [(point["step"], round(point["value"], 3)) for point in history] == [(1, 2.9), (2, 2.8), (3, 2.7), (3, 2.7)]
    evals = rest(
        mlflow_server.url, "mlflow/metrics/get-history", {"run_id": reference.mlflow.run_id, "metric_key": "evalLoss"}
    )["metrics"]
    assert [point["value"] for point in evals] == [2.5, 2.4]
    artifacts = rest(mlflow_server.url, "mlflow/artifacts/list", {"run_id": reference.mlflow.run_id, "path": "dataset"})
    assert [entry["path"] for entry in artifacts["files"]] == ["dataset/manifest.json"]


def test_without_spec_tracking_there_is_no_tracker() -> None:
    assert tracking.start(job_config(None), {}, {"epochs": 1}) is None
    assert tracking.finish(None, Path("/nonexistent"), 0, {}, succeeded=True) == {}


def test_a_server_that_never_answers_leaves_a_bounded_degraded_note_that_fits_the_status(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    tracker = tracking.start(job_config({"mlflow": {"trackingUri": url, "experiment": "e"}}), {}, {"epochs": 1})
    assert tracker is not None
    trainer_log(tracking.TrackingCallback(tracker), 1, {"loss": 1.0})
    summary = tracking.finish(tracker, tmp_path, 1, {"evalLoss": 1.0}, succeeded=True)
    reference = TerminationMessage.model_validate({"outcome": "Succeeded", "tracking": summary}).tracking
    assert reference is not None and reference.mlflow is not None
    assert reference.mlflow.run_id is None
    assert reference.mlflow.degraded is not None and url in reference.mlflow.degraded
    assert reference.mlflow.unsent_steps == 2
