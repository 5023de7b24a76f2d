"""Experiment tracking with a real MLflow tracking server (`mlflow server`, SQLite, proxied artifacts), on the
real control plane: the run has the params, a metric history of the training steps and the dataset manifest;
the ModelVersion links it; and a server stopped mid-run costs the job nothing but a `degraded` note. The same
training job also reports to Weights & Biases offline (the real `wandb` SDK): its run files in the workspace.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_harness import OperatorProcess, get_job, wait_phase
from test_operator_e2e import claim_folder

import localcluster
from finetune_operator.children import WORKSPACE
from finetune_trainer.tracking.mlflow import MlflowClient
from localservers import MlflowServer
from support import wandbfile

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SESSIONS = REPO / "manifests" / "samples" / "data" / "sessions.jsonl"


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start(timeout=300)
    # The first run search takes seconds (lazy imports): paid here, not by the trainer's 10 s request timeout.
    MlflowClient(server.url, {}, timeout=300).call("POST", "runs/search", {"experiment_ids": ["0"], "max_results": 1})
    yield server
    server.stop()


def rest(server: MlflowServer, endpoint: str, query: dict[str, str]) -> Any:
    with urllib.request.urlopen(f"{server.url}/api/2.0/{endpoint}?{urllib.parse.urlencode(query)}", timeout=30) as r:
        return json.loads(r.read())


def tracked_job(
    kubectl: Callable[..., str], namespace: str, name: str, server: MlflowServer, epochs: int, wandb: bool = False
) -> str:
    config_map = kubectl(
        "-n", namespace, "create", "configmap", "quickstart-sessions",
        f"--from-file=sessions.jsonl={SESSIONS}", "--dry-run=client", "-o", "yaml",
    )  # fmt: skip
    kubectl("-n", namespace, "apply", "-f", "-", stdin=config_map)
    body: dict[str, Any] = yaml.safe_load((REPO / "manifests" / "samples" / "quickstart.yaml").read_text())
    body["metadata"]["name"] = name
    body["spec"]["training"]["epochs"] = epochs
    experiment = f"agents-{uuid.uuid4().hex[:8]}"
    body["spec"]["tracking"] = {"mlflow": {"trackingUri": server.url, "experiment": experiment}}
    if wandb:
        body["spec"]["tracking"]["wandb"] = {"project": experiment, "mode": "offline"}
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(body))
    return experiment


def test_the_run_has_params_step_metrics_the_manifest_and_the_model_version_links_it(
    cluster: localcluster.ClusterInfo,
    kubectl: Callable[..., str],
    namespace: str,
    operator_process: OperatorProcess,
    mlflow_server: MlflowServer,
) -> None:
    experiment = tracked_job(kubectl, namespace, "tracked", mlflow_server, epochs=2, wandb=True)
    job = wait_phase(kubectl, namespace, "tracked", ("Completed",), timeout=600, operator=operator_process)
    run_ref = job["status"]["tracking"]["mlflow"]
    assert "degraded" not in run_ref, run_ref
    run = rest(mlflow_server, "mlflow/runs/get", {"run_id": run_ref["runId"]})["run"]
    assert run["info"]["status"] == "FINISHED"
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert (params["epochs"], params["method"]) == ("2", "full"), params
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert (tags["finetune.dev/job"], tags["finetune.dev/namespace"]) == ("tracked", namespace)
    assert tags["finetune.dev/job-uid"] == job["metadata"]["uid"]

    # One trainLoss point per logged optimizer step (every step in a short run) and the final one.
    history = rest(mlflow_server, "mlflow/metrics/get-history", {"run_id": run_ref["runId"], "metric_key": "trainLoss"})
    steps = [point["step"] for point in history["metrics"]]
    last = job["status"]["progress"]["step"]
    assert steps == [*range(1, last + 1), last], steps
    final = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert final["evalLoss"] == pytest.approx(job["status"]["metrics"]["evalLoss"])

    artifact = run["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    url = f"{mlflow_server.url}/api/2.0/mlflow-artifacts/artifacts/{artifact}/dataset/manifest.json"
    with urllib.request.urlopen(url, timeout=30) as response:
        manifest = json.loads(response.read())
    assert manifest["outcome"] == "Succeeded"

    mv = json.loads(kubectl("-n", namespace, "get", "mv", job["status"]["model"]["modelVersion"], "-o", "json"))
    assert mv["spec"]["tracking"]["mlflow"]["runId"] == run_ref["runId"]
    link = mv["spec"]["tracking"]["mlflow"]["url"]
    assert link == f"{mlflow_server.url}/#/experiments/{run['info']['experiment_id']}/runs/{run_ref['runId']}"
    with urllib.request.urlopen(link, timeout=30) as page:
        assert page.status == 200

    # The same job's W&B run, offline: its files in the workspace, found from the job's status.
    uid = job["metadata"]["uid"]
    wandb_ref = job["status"]["tracking"]["wandb"]
    assert "degraded" not in wandb_ref, wandb_ref
    assert (wandb_ref["runId"], wandb_ref["path"]) == (uid, f"{experiment}/{uid}")
    assert mv["spec"]["tracking"]["wandb"] == wandb_ref
    workspace = claim_folder(cluster, kubectl, namespace, "tracked-workspace")
    [run_file] = wandbfile.run_files(workspace)
    assert run_file.parent == workspace / wandb_ref["directory"]
    wandb_run = wandbfile.read(run_file)
    assert (wandb_run.run_id, wandb_run.config["epochs"], wandb_run.exit_code) == (uid, 2, 0)
    assert wandb_run.config["finetune"]["namespace"] == namespace
    assert [row["_step"] for row in wandb_run.history if "trainLoss" in row] == list(range(1, last + 1))
    [dataset] = wandb_run.artifacts
    staged = Path(dataset["files"]["manifest.json"]).relative_to(WORKSPACE)  # the pod's path of its copy
    assert json.loads((workspace / staged).read_text()) == manifest


def test_a_tracking_server_stopped_mid_run_costs_the_job_nothing_but_says_so(
    kubectl: Callable[..., str], namespace: str, operator_process: OperatorProcess, mlflow_server: MlflowServer
) -> None:
    tracked_job(kubectl, namespace, "untracked", mlflow_server, epochs=6)
    deadline = time.monotonic() + 600
    while (get_job(kubectl, namespace, "untracked").get("status") or {}).get("reason") != "Training":
        assert time.monotonic() < deadline, "never reached Training"
        time.sleep(0.2)
    mlflow_server.stop()  # last test of the module: the server stays down
    job = wait_phase(kubectl, namespace, "untracked", ("Completed",), timeout=900, operator=operator_process)
    mlflow = job["status"]["tracking"]["mlflow"]
    assert "mlflow" in mlflow["degraded"] and "127.0.0.1" in mlflow["degraded"], mlflow
    assert mlflow.get("unsentSteps", 0) > 0, mlflow
    events = json.loads(
        kubectl("-n", namespace, "get", "events", "--field-selector", "involvedObject.name=untracked", "-o", "json")
    )["items"]
    warnings = [e for e in events if e["reason"] == "TrackingDegraded"]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning", warnings
    assert mlflow["degraded"] in warnings[0]["message"]
