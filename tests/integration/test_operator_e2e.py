"""End to end on the real control plane: the operator, real curation and real training of tiny-gpt on CPU.

The node agent (tests/nodeagent) runs the curation and training pods as local processes with the PVC mounted,
so everything from `kubectl apply` to the ModelVersion is the product's own code doing real work.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_harness import OperatorProcess, get_job, wait_phase

import localcluster
from support.fixtures import Kubectl

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SESSIONS = REPO / "manifests" / "samples" / "data" / "sessions.jsonl"
ORDER = ["Pending", "Queued", "Running", "Evaluating", "Completed"]


def quickstart(name: str, epochs: int = 2) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((REPO / "manifests" / "samples" / "quickstart.yaml").read_text())
    body["metadata"]["name"] = name
    body["spec"]["training"]["epochs"] = epochs
    body["spec"]["storage"]["retainPolicy"] = "Retain"
    return body


def setup(kubectl: Kubectl, namespace: str, *jobs: dict[str, Any]) -> None:
    config_map = kubectl(
        "-n", namespace, "create", "configmap", "quickstart-sessions",
        f"--from-file=sessions.jsonl={SESSIONS}", "--dry-run=client", "-o", "yaml",
    )  # fmt: skip
    kubectl("-n", namespace, "apply", "-f", "-", stdin=config_map)
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump_all(jobs))


def claim_folder(cluster: localcluster.ClusterInfo, kubectl: Kubectl, namespace: str, claim: str) -> Path:
    volume = kubectl("-n", namespace, "get", "pvc", claim, "-o", "jsonpath={.spec.volumeName}")
    host_path = Path(kubectl("get", "pv", volume, "-o", "jsonpath={.spec.hostPath.path}"))
    return cluster.volumes_dir / host_path.relative_to(localcluster.cluster.HOSTPATH_PROVISIONER_DIR)


def assert_in_order(seen: list[str]) -> None:
    """Phases only move forward (this job has no requeue)."""
    positions = [ORDER.index(phase) for phase in seen]
    assert positions == sorted(positions), f"phases went backwards: {seen}"


def children(kubectl: Kubectl, namespace: str, kind: str, job: str) -> list[str]:
    names = kubectl("-n", namespace, "get", kind, "-l", f"finetune.dev/job={job}", "-o", "name").split()
    return sorted(names)


def test_quickstart_curates_trains_evaluates_and_registers_for_real(
    kubectl: Kubectl,
    namespace: str,
    cluster: localcluster.ClusterInfo,
    operator_process: OperatorProcess,
) -> None:
    setup(kubectl, namespace, quickstart("real"))
    seen: list[str] = []
    job = wait_phase(kubectl, namespace, "real", ("Completed",), timeout=600, operator=operator_process, seen=seen)
    assert_in_order(seen)
    assert "Running" in seen and seen[-1] == "Completed"
    status = job["status"]

    # Real losses from real training, reported by the trainer.
    metrics = status["metrics"]
    for key in ("trainLoss", "evalLoss", "perplexity", "tokensPerSecond"):
        assert math.isfinite(metrics[key]) and metrics[key] > 0, (key, metrics)
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["evalLoss"]), rel=1e-3)
    assert status["progress"]["percent"] == 100

    # Curation counts in the status are the manifest's, and the ModelVersion's lineage points at the same data.
    workspace = claim_folder(cluster, kubectl, namespace, "real-workspace")
    manifest = json.loads((workspace / "dataset" / "manifest.json").read_text())
    dataset = status["dataset"]
    assert dataset["sourceRecords"] > dataset["samples"] > 0
    assert dataset["samples"] == dataset["trainSamples"] + dataset["evalSamples"]
    train_lines = (workspace / "dataset" / "train.jsonl").read_text().splitlines()
    assert len(train_lines) == dataset["trainSamples"]
    assert json.dumps(manifest).count(dataset["sha256"]) >= 1
    mv = json.loads(kubectl("-n", namespace, "get", "mv", status["model"]["modelVersion"], "-o", "json"))
    assert mv["spec"]["dataset"]["sha256"] == dataset["sha256"]
    assert mv["spec"]["dataset"]["trainSamples"] == dataset["trainSamples"]
    assert mv["spec"]["metrics"]["evalLoss"] == pytest.approx(metrics["evalLoss"])
    assert mv["spec"]["artifact"]["pvc"] == "real-workspace"

    # The trained model is on the workspace volume in Hugging Face format.
    model = workspace / mv["spec"]["artifact"]["path"]
    assert list(model.rglob("*.safetensors")), sorted(p.name for p in model.rglob("*"))
    assert (model / "metadata.json").exists()

    # Events tell the story, every transition in order (polling above can miss a short phase).
    events = json.loads(
        kubectl("-n", namespace, "get", "events", "--field-selector", "involvedObject.name=real", "-o", "json")
    )["items"]
    # Event timestamps have one-second resolution, so check each transition's direction, not their order.
    transitions = [tuple(e["message"].split(":")[0].split(" -> ")) for e in events if " -> " in e["message"]]
    assert ("New", "Pending") in transitions, transitions
    assert any(target == "Completed" for _, target in transitions), transitions
    for source, target in transitions:
        assert source == "New" or ORDER.index(target) > ORDER.index(source), transitions
    assert "ModelRegistered" in {e["reason"] for e in events}


def wait_reason(
    kubectl: Kubectl,
    namespace: str,
    name: str,
    reasons: set[str],
    operator: OperatorProcess,
    seen: list[str],
) -> dict[str, Any]:
    """Poll until the job's reason is one of `reasons` or it is Completed (curation can be too quick to catch)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        job = get_job(kubectl, namespace, name)
        status = job.get("status") or {}
        if status.get("phase") and (not seen or seen[-1] != status["phase"]):
            seen.append(status["phase"])
        if status.get("reason") in reasons or status.get("phase") in ("Completed", "Failed"):
            return job
        assert operator.alive(), operator.tail()
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {reasons}")


def test_operator_killed_at_each_stage_resumes_without_duplicates(
    kubectl: Kubectl,
    namespace: str,
    operator_process: OperatorProcess,
) -> None:
    setup(kubectl, namespace, quickstart("crashy", epochs=4))
    seen: list[str] = []
    killed_at: list[str] = []
    for reasons in ({"Curating"}, {"Training"}, {"Evaluating", "Registering"}):
        job = wait_reason(kubectl, namespace, "crashy", reasons, operator_process, seen)
        if job["status"]["phase"] in ("Completed", "Failed"):
            break
        operator_process.kill()  # SIGKILL: no last write, no cleanup
        killed_at.append(job["status"]["reason"])
        operator_process.start()
    job = wait_phase(kubectl, namespace, "crashy", ("Completed",), timeout=600, operator=operator_process, seen=seen)
    # Training and evaluation last long enough to be caught; curation may finish between two polls.
    assert {"Training"} <= set(killed_at), killed_at
    assert_in_order(seen)
    assert children(kubectl, namespace, "jobs.batch", "crashy") == ["job.batch/crashy-curate", "job.batch/crashy-train"]
    assert len(children(kubectl, namespace, "pvc", "crashy")) == 1
    versions = kubectl("-n", namespace, "get", "mv", "-o", "jsonpath={.items[*].spec.version}").split()
    assert versions == ["0.0.1"], versions
    assert job["status"]["attempts"] == 1
    assert job["status"]["model"]["version"] == "0.0.1"


def test_evicted_training_resumes_from_its_checkpoint_without_consuming_a_retry(
    kubectl: Kubectl,
    namespace: str,
    cluster: localcluster.ClusterInfo,
    operator_process: OperatorProcess,
) -> None:
    body = quickstart("evicted", epochs=8)
    body["spec"]["runPolicy"]["backoffLimit"] = 0  # only a requeue that is not a failure can still complete
    setup(kubectl, namespace, body)
    deadline = time.monotonic() + 600
    while True:
        status = get_job(kubectl, namespace, "evicted").get("status") or {}
        workspace = claim_folder_or_none(cluster, kubectl, namespace)
        if status.get("reason") == "Training" and workspace and list(workspace.glob("checkpoints/*/COMPLETE")):
            break
        assert status.get("phase") not in ("Completed", "Failed"), status
        assert time.monotonic() < deadline, status
        time.sleep(0.3)
    pod = kubectl(
        "-n", namespace, "get", "pods", "-l", "app.kubernetes.io/component=training",
        "-o", "jsonpath={.items[0].metadata.name}",
    )  # fmt: skip
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": namespace}}
    kubectl(
        "create", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pod}/eviction", "-f", "-", stdin=json.dumps(eviction)
    )
    job = wait_phase(kubectl, namespace, "evicted", ("Completed",), timeout=600, operator=operator_process)
    assert job["status"]["attempts"] == 2, job["status"]
    assert len(job["status"]["trainingPods"]) == 2
    events = kubectl("-n", namespace, "get", "events", "--field-selector", "involvedObject.name=evicted")
    assert "AttemptStarted" in events
    # The second attempt resumed from the first one's checkpoint: nothing trained so far was lost.
    second = job["status"]["trainingPods"][-1]
    logs = list((cluster.state_dir / "node-agent" / "logs").glob(f"{namespace}_{second}_*/train.log"))
    assert logs, "no log of the second training pod"
    assert '"resuming"' in logs[0].read_text()


def claim_folder_or_none(cluster: localcluster.ClusterInfo, kubectl: Kubectl, namespace: str) -> Path | None:
    if not kubectl(
        "-n", namespace, "get", "pvc", "evicted-workspace", "-o", "jsonpath={.spec.volumeName}", check=False
    ):
        return None
    return claim_folder(cluster, kubectl, namespace, "evicted-workspace")


BAD_SESSIONS = {
    # Binary garbage and truncated JSON: far over the 10% malformed threshold.
    "garbage": ("\x00\x01\x02 not json\n" * 20 + '{"id": "s1", "success_rate": 0.99, "instr\n', "CurationFailed"),
    # Well-formed, but no session succeeded often enough: a silent empty model is never trained.
    "low-success": (
        "".join(
            json.dumps({"id": f"s{i}", "success_rate": 0.2, "instruction": "q", "input": "", "output": "a"}) + "\n"
            for i in range(30)
        ),
        "NoSamplesAfterCuration",
    ),
    "empty-file": ("", "NoSamplesAfterCuration"),
}


@pytest.mark.parametrize("case", sorted(BAD_SESSIONS))
def test_bad_session_data_fails_with_a_clear_reason_and_trains_nothing(
    case: str, kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    content, reason = BAD_SESSIONS[case]
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "quickstart-sessions"},
        "data": {"sessions.jsonl": content},
    }
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(config_map))
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(quickstart("bad")))
    job = wait_phase(kubectl, namespace, "bad", ("Failed",), timeout=300, operator=operator_process)
    status = job["status"]
    assert status["reason"] == reason, status
    assert status["failureKind"] == "User"
    assert status["message"], status
    # A user-data error fails at once: one curation pod, no retry, no training workload.
    assert len(children(kubectl, namespace, "pods", "bad")) == 1
    assert children(kubectl, namespace, "jobs.batch", "bad") == ["job.batch/bad-curate"]
