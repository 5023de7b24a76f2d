"""The trainer's MLflow reporting against a real `mlflow server`: params, metric history, artifact, link; and a
server that is down never raises into training."""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from finetune_trainer.tracking.mlflow import MlflowClient
from finetune_trainer.tracking.mlflow_backend import JOB_UID_TAG, MlflowBackend
from finetune_trainer.tracking.tracker import Tracker
from localservers import MlflowServer, free_port

from .conftest import rest


def train_loss_history(server: MlflowServer, run_id: str) -> list[dict[str, Any]]:
    found = rest(server.url, "mlflow/metrics/get-history", {"run_id": run_id, "metric_key": "trainLoss"})
    return list(found["metrics"])


def backend(url: str, experiment: str) -> MlflowBackend:
    # A generous timeout: a slow answer on a loaded test machine is not what these tests are about.
    return MlflowBackend(MlflowClient(url, {}, timeout=60), url, experiment, "ml/support-agent")


def test_a_run_gets_params_metric_history_artifact_and_a_link(mlflow_server: MlflowServer, tmp_path: Path) -> None:
    experiment, uid = f"e-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    tracker = Tracker([backend(mlflow_server.url, experiment)])
    tracker.start({"learningRate": 0.0002, "epochs": 3}, {JOB_UID_TAG: uid, "finetune.dev/job": "support-agent"})
    for step in range(1, 6):
        tracker.log_metrics(step, {"trainLoss": 3.0 - step * 0.1})
    tracker.log_metrics(5, {"evalLoss": 2.4})
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"outcome": "Succeeded", "samples": 12}))
    tracker.log_artifact(manifest, "dataset/manifest.json")
    tracker.finish(succeeded=True)

    assert tracker.degraded() == []
    reference = tracker.summary()["mlflow"]
    assert isinstance(reference, dict)
    run = rest(mlflow_server.url, "mlflow/runs/get", {"run_id": reference["runId"]})["run"]
    assert run["info"]["status"] == "FINISHED"
    assert {p["key"]: p["value"] for p in run["data"]["params"]} == {"learningRate": "0.0002", "epochs": "3"}
    assert {t["key"]: t["value"] for t in run["data"]["tags"]}[JOB_UID_TAG] == uid
    history = train_loss_history(mlflow_server, reference["runId"])
    assert [point["step"] for point in history] == [1, 2, 3, 4, 5]
    artifact_path = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    url = f"{mlflow_server.url}/api/2.0/mlflow-artifacts/artifacts/{artifact_path}/dataset/manifest.json"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert json.loads(response.read()) == {"outcome": "Succeeded", "samples": 12}
    # The link names this experiment and run, and the UI serves it.
    experiment_id = run["info"]["experiment_id"]
    assert reference["url"] == f"{mlflow_server.url}/#/experiments/{experiment_id}/runs/{reference['runId']}"
    with urllib.request.urlopen(reference["url"], timeout=10) as page:
        assert page.status == 200


def test_a_retried_pod_continues_its_jobs_run(mlflow_server: MlflowServer) -> None:
    experiment, uid = f"e-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    first = Tracker([backend(mlflow_server.url, experiment)])
    first.start({"epochs": "3"}, {JOB_UID_TAG: uid})
    first.log_metrics(1, {"trainLoss": 3.0})
    second = Tracker([backend(mlflow_server.url, experiment)])
    second.start({"epochs": "3"}, {JOB_UID_TAG: uid})
    second.log_metrics(2, {"trainLoss": 2.5})
    first_run, second_run = first.summary()["mlflow"], second.summary()["mlflow"]
    assert isinstance(first_run, dict) and isinstance(second_run, dict)
    assert first_run["runId"] == second_run["runId"]
    history = train_loss_history(mlflow_server, first_run["runId"])
    assert [point["step"] for point in history] == [1, 2]


class CountingClient(MlflowClient):
    requests = 0

    def _request(self, method: str, path: str, body: bytes | None, headers: object) -> object:  # type: ignore[override]
        CountingClient.requests += 1
        return super()._request(method, path, body, headers)  # type: ignore[arg-type]


def test_a_server_that_is_down_degrades_tracking_without_raising_and_catches_up(mlflow_server: MlflowServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens here: connections are refused
    client = CountingClient(dead, {}, timeout=1.0)
    mlflow = MlflowBackend(client, dead, f"e-{uuid.uuid4().hex[:8]}", "run")
    now = [0.0]
    tracker = Tracker([mlflow], clock=lambda: now[0], retry_seconds=30.0)
    tracker.start({"epochs": "1"}, {JOB_UID_TAG: str(uuid.uuid4())})
    for step in range(1, 101):
        tracker.log_metrics(step, {"trainLoss": 1.0 / step})
    (message,) = tracker.degraded()
    assert message.startswith("mlflow: starting the run failed") and "127.0.0.1" in message
    assert CountingClient.requests == 1, "within the retry interval a failing server is not asked again"
    assert tracker.summary()["mlflow"] == {"degraded": message, "unsentSteps": 100}

    # The server answers again (here: the route to it is back) after the retry interval.
    client.base, client.timeout = mlflow_server.url, 60
    mlflow.tracking_uri = mlflow_server.url
    now[0] = 31.0
    tracker.log_metrics(101, {"trainLoss": 0.001})
    tracker.finish(succeeded=True)
    reference = tracker.summary()["mlflow"]
    assert isinstance(reference, dict) and "unsentSteps" not in reference
    history = train_loss_history(mlflow_server, reference["runId"])
    assert len(history) == 101, "the steps logged while it was down were sent when it came back"
    assert reference["degraded"] == message, "the job still says tracking was degraded"
