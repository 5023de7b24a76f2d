"""Multi-node jobs on the real control plane: an Indexed Job of two pods that the node agent runs for real.

The two pods meet through torch's rendezvous at pod 0's stable hostname (`<job>-train-0.<job>-train`), which the
node agent resolves from the headless Service the operator created (docs/testing.md: the agent's /etc/hosts
records). Real gloo training of tiny-gpt across the two pods, in which a deleted pod restarts the whole group from
its checkpoint (one test: CI's time is short); a group whose second pod cannot be scheduled fails with
RendezvousTimeout within the bound.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_harness import OperatorProcess, get_job, operator, wait_phase

import localcluster
import strictyaml
from support.fixtures import Kubectl

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SESSIONS = REPO / "manifests" / "samples" / "data" / "sessions.jsonl"
TRAINING = "app.kubernetes.io/component=training"


@pytest.fixture
def group_operator(
    cluster: localcluster.ClusterInfo, crds: Any, namespace: str, production_identity: Path, request: Any
) -> Iterator[OperatorProcess]:
    """The operator as its production identity; the pods of a group wait for each other at most 150 s, or as
    long as the test's parameter says."""
    seconds = getattr(request, "param", "150")
    process = operator(
        cluster, namespace, request.node.name, production_identity, FTO_RENDEZVOUS_TIMEOUT_SECONDS=seconds
    ).start()
    yield process
    process.stop()
    print(f"--- operator log ({process.log}) ---\n{process.tail()}")


def two_node_job(name: str, epochs: int = 1, cpu: str = "500m") -> dict[str, Any]:
    body: dict[str, Any] = strictyaml.load((REPO / "manifests" / "samples" / "quickstart.yaml").read_text())
    body["metadata"]["name"] = name
    spec = body["spec"]
    spec["training"]["epochs"] = epochs
    spec["resources"].update({"nodes": 2, "cpu": cpu, "memory": "1Gi"})
    spec["storage"].update({"retainPolicy": "Retain", "accessMode": "ReadWriteMany"})
    spec["runPolicy"]["backoffLimit"] = 1
    return body


def setup(kubectl: Kubectl, namespace: str, body: dict[str, Any]) -> None:
    config_map = kubectl(
        "-n", namespace, "create", "configmap", "quickstart-sessions",
        f"--from-file=sessions.jsonl={SESSIONS}", "--dry-run=client", "-o", "yaml",
    )  # fmt: skip
    kubectl("-n", namespace, "apply", "-f", "-", stdin=config_map)
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(body))


def training_pods(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = json.loads(kubectl("-n", namespace, "get", "pods", "-l", TRAINING, "-o", "json"))[
        "items"
    ]
    return pods


def index_of(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"])


def workspace(cluster: localcluster.ClusterInfo, kubectl: Kubectl, namespace: str, claim: str) -> Path | None:
    volume = kubectl("-n", namespace, "get", "pvc", claim, "-o", "jsonpath={.spec.volumeName}", check=False)
    if not volume:
        return None
    host_path = Path(kubectl("get", "pv", volume, "-o", "jsonpath={.spec.hostPath.path}"))
    return cluster.volumes_dir / host_path.relative_to(localcluster.cluster.HOSTPATH_PROVISIONER_DIR)


def model_versions(kubectl: Kubectl, namespace: str) -> list[str]:
    return kubectl("-n", namespace, "get", "mv", "-o", "name").split()


def test_two_pods_train_one_model_and_a_deleted_pod_restarts_the_group_from_its_checkpoint(
    cluster: localcluster.ClusterInfo, kubectl: Kubectl, namespace: str, group_operator: OperatorProcess
) -> None:
    setup(kubectl, namespace, two_node_job("restarted", epochs=3))
    deadline = time.monotonic() + 900
    while True:
        status = get_job(kubectl, namespace, "restarted").get("status") or {}
        folder = workspace(cluster, kubectl, namespace, "restarted-workspace")
        if status.get("reason") == "Training" and folder and list(folder.glob("checkpoints/*/COMPLETE")):
            break
        assert status.get("phase") not in ("Completed", "Failed"), status
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    first = {index_of(p): p["metadata"]["name"] for p in training_pods(kubectl, namespace)}
    kubectl("-n", namespace, "delete", "pod", first["1"], "--wait=false")
    job = wait_phase(kubectl, namespace, "restarted", ("Completed",), timeout=900, operator=group_operator)
    status = job["status"]
    assert status["attempts"] == 2, status
    assert len(status["trainingPods"]) == 2 and len(status["retriedAttempts"]) == 1, status
    assert len(model_versions(kubectl, namespace)) == 1
    second = {index_of(p): p["metadata"]["name"] for p in training_pods(kubectl, namespace)}
    assert set(second.values()).isdisjoint(first.values())
    # The new group resumed from the checkpoint the first group wrote (rank 0 logs it; the others log warnings only),
    # as one world of two ranks, one in each pod.
    log = kubectl("-n", namespace, "logs", second["0"])
    assert '"resuming"' in log
    config = next(json.loads(line) for line in log.splitlines() if '"event": "config"' in line)
    assert config["world_size"] == 2, config
    pods = training_pods(kubectl, namespace)
    assert sorted(p["status"]["phase"] for p in pods) == ["Succeeded", "Succeeded"]
    service = json.loads(kubectl("-n", namespace, "get", "service", "restarted-train", "-o", "json"))
    assert service["spec"]["clusterIP"] == "None"
    events = kubectl("-n", namespace, "get", "events", "--field-selector", "involvedObject.name=restarted")
    assert "RestartingGroup" in events


@pytest.mark.parametrize("group_operator", ["30"], indirect=True)
def test_a_group_whose_second_pod_cannot_be_scheduled_fails_with_rendezvous_timeout(
    kubectl: Kubectl, namespace: str, group_operator: OperatorProcess
) -> None:
    # Each pod asks for all of the node agent's CPUs: one pod fits on its node, the other never does.
    body = two_node_job("apart", cpu=str(os.cpu_count() or 1))
    body["spec"]["runPolicy"]["backoffLimit"] = 0
    setup(kubectl, namespace, body)
    seen: list[str] = []
    deadline = time.monotonic() + 600
    while True:
        status = get_job(kubectl, namespace, "apart").get("status") or {}
        if status.get("reason") and status.get("reason") not in seen:
            seen.append(status["reason"])
        if status.get("phase") == "Failed":
            break
        assert status.get("phase") != "Completed", status
        assert time.monotonic() < deadline, status
        time.sleep(0.3)
    assert status["reason"] == "RendezvousTimeout", status
    assert "within 30 s" in status["message"] and "node rank" in status["message"], status["message"]
    assert status["failureKind"] == "System"
    # While it waited, the job said which pod the scheduler could not place.
    assert "WaitingForCapacity" in seen, seen
    assert model_versions(kubectl, namespace) == []
