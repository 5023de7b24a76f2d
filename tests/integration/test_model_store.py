"""spec.output.pvc on the real control plane: the trained model is copied to the model store and outlives the job.

Real curation, training and copy (the node agent runs the pods as local processes with their volumes mounted).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from operator_harness import OperatorProcess, get_job, wait_phase
from test_operator_e2e import claim_folder, quickstart, setup

import localcluster
from finetune_trainer.publish import tree_digest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STORE = "model-store"


def store_claim(namespace: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": STORE, "namespace": namespace},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }
    )


def wait_reason(kubectl: Callable[..., str], namespace: str, name: str, reason: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = get_job(kubectl, namespace, name)
        status = job.get("status") or {}
        if status.get("reason") == reason:
            return job
        assert status.get("phase") not in ("Completed", "Failed"), status
        assert time.monotonic() < deadline, f"timed out waiting for {reason}: {json.dumps(status)}"
        time.sleep(0.5)


def test_the_model_is_copied_to_the_store_and_outlives_the_job_and_its_workspace(
    kubectl: Callable[..., str],
    namespace: str,
    cluster: localcluster.ClusterInfo,
    operator_process: OperatorProcess,
) -> None:
    body = quickstart("stored")
    body["spec"]["output"]["pvc"] = STORE
    # Allowed only because the store keeps the model: the TTL deletes the job, Delete takes the workspace along.
    body["spec"]["storage"]["retainPolicy"] = "Delete"
    body["spec"].setdefault("runPolicy", {})["ttlSecondsAfterFinished"] = 5
    setup(kubectl, namespace, body)

    # Trained, but the store does not exist yet: the job waits, naming the cause.
    waiting = wait_reason(kubectl, namespace, "stored", "ModelStoreNotFound", timeout=600)
    assert waiting["status"]["phase"] == "Evaluating"
    assert STORE in waiting["status"]["message"]
    kubectl("apply", "-f", "-", stdin=store_claim(namespace))

    job = wait_phase(kubectl, namespace, "stored", ("Completed",), timeout=300, operator=operator_process)
    model_name = body["spec"]["output"]["modelName"]
    mv = json.loads(kubectl("-n", namespace, "get", "mv", job["status"]["model"]["modelVersion"], "-o", "json"))
    artifact = mv["spec"]["artifact"]
    version = mv["spec"]["version"]
    assert (artifact["pvc"], artifact["path"]) == (STORE, f"{model_name}/{version}")
    assert artifact["uri"] == f"pvc://{STORE}/{model_name}/{version}"
    assert job["status"]["model"]["uri"] == artifact["uri"]

    store = claim_folder(cluster, kubectl, namespace, STORE)
    copied = store / model_name / version
    assert list(copied.rglob("*.safetensors")) and (copied / "metadata.json").exists()
    assert artifact["digest"] == tree_digest(copied)
    assert [p.name for p in (store / model_name).iterdir()] == [version]  # no temporary folder left
    workspace_model = claim_folder(cluster, kubectl, namespace, "stored-workspace") / "model"
    assert tree_digest(workspace_model) == artifact["digest"]

    # The TTL deletes the job and (retainPolicy Delete) its workspace; the store's copy and the ModelVersion stay.
    deadline = time.monotonic() + 120
    while kubectl("-n", namespace, "get", "ftj,pvc", "-l", "finetune.dev/job=stored", "-o", "name").strip() or (
        kubectl("-n", namespace, "get", "ftj", "stored", "--ignore-not-found", "-o", "name").strip()
    ):
        assert time.monotonic() < deadline, "the TTL did not delete the job and its workspace"
        time.sleep(1)
    kubectl("-n", namespace, "get", "mv", mv["metadata"]["name"])
    assert tree_digest(copied) == artifact["digest"]
