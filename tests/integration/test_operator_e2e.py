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
from crashpoints import armed, creations
from kubernetes import client
from kwok_jobs import PhaseRecorder, backward_steps, poll
from operator_harness import OperatorProcess, get_job, wait_phase
from rbac import username
from trained import TrainedQuickstart, quickstart, setup

import localcluster
from finetune_operator.config import Settings
from finetune_trainer.train import lineage
from localcluster import audit
from support.fixtures import Kubectl

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ORDER = ["Pending", "Queued", "Running", "Evaluating", "Completed"]


def claim_folder(cluster: localcluster.ClusterInfo, kubectl: Kubectl, namespace: str, claim: str) -> Path:
    volume = kubectl("-n", namespace, "get", "pvc", claim, "-o", "jsonpath={.spec.volumeName}")
    host_path = Path(kubectl("get", "pv", volume, "-o", "jsonpath={.spec.hostPath.path}"))
    return cluster.volumes_dir / host_path.relative_to(localcluster.cluster.HOSTPATH_PROVISIONER_DIR)


def children(kubectl: Kubectl, namespace: str, kind: str, job: str) -> list[str]:
    names = kubectl("-n", namespace, "get", kind, "-l", f"finetune.dev/job={job}", "-o", "name").split()
    return sorted(names)


def trainer_reports(cluster: localcluster.ClusterInfo, since: int, namespace: str, job: str) -> list[dict[str, Any]]:
    """The status patches the training pod's own ServiceAccount sent (audit log, request bodies)."""
    trainer = f"system:serviceaccount:{namespace}:{job}-trainer"
    return [
        e
        for e in audit.events(cluster.state_dir, since)
        if e["user"]["username"] == trainer and audit.resource(e) == "finetuningjobs/status"
    ]


def assert_trainer_reported_live(
    cluster: localcluster.ClusterInfo, since: int, kubectl: Kubectl, namespace: str, job: str,
    watched: list[dict[str, Any]],
) -> None:  # fmt: skip
    """The trainer's live reports: mid-run progress by its identity, Evaluating reached through its report, none
    refused, and no failed report in the training log (failures are swallowed by design, so nothing else shows)."""
    reports = trainer_reports(cluster, since, namespace, job)
    assert reports and all(audit.code(e) == 200 for e in reports), [
        (audit.code(e), e["requestObject"]) for e in reports
    ]
    # Reports carry progress, or only the memory plan the trainer sends before loading the weights.
    progress = [e["requestObject"]["status"]["progress"] for e in reports if "progress" in e["requestObject"]["status"]]
    # Curation reports through the same identity (records read, no steps).
    assert any(p.get("stage") == "Training" and 0 < p.get("step", 0) < p.get("totalSteps", 0) for p in progress), (
        progress
    )
    # What a user watching the job saw: a step below the total while Running.
    mid_run = [s for s in watched if s.get("phase") == "Running" and 0 < (s.get("progress") or {}).get("step", 0)
               < (s.get("progress") or {}).get("totalSteps", 0)]  # fmt: skip
    assert mid_run, [(s.get("phase"), s.get("progress")) for s in watched]
    # Evaluating came from the trainer's stage report (reason Evaluating), not from the pod's exit (Registering).
    events = list(audit.events(cluster.state_dir, since))
    reported = next(i for i, e in enumerate(events) if e in reports and
                    e["requestObject"]["status"].get("progress", {}).get("stage") == "Evaluating")  # fmt: skip
    evaluating = [i for i, e in enumerate(events) if e["user"]["username"] == username()
                  and (e.get("objectRef") or {}).get("namespace") == namespace
                  and audit.resource(e) == "finetuningjobs/status"
                  and (e.get("requestObject") or {}).get("status", {}).get("reason") == "Evaluating"]  # fmt: skip
    assert evaluating and evaluating[0] > reported, (reported, evaluating)
    pod = kubectl("-n", namespace, "get", "pods", "-l", "app.kubernetes.io/component=training",
                  "-o", "jsonpath={.items[0].metadata.name}")  # fmt: skip
    training_log = kubectl("-n", namespace, "logs", pod)  # through the node agent's log endpoint
    assert '"event": "succeeded"' in training_log, training_log[-2000:]
    assert "status update failed" not in training_log, training_log


def assert_lineage(mv: dict[str, Any], metadata: dict[str, Any], workspace: Path) -> None:
    """The ModelVersion records what training really used: the trainer's resolved configuration (the same
    configHash as the model folder's metadata.json, defaults the spec never set included), the base model's
    location and config+weight-index digest, and the operator's default trainer image."""
    resolved = mv["hyperparameters"]
    assert resolved["configHash"] == metadata["configHash"]
    for snake, value in metadata["training"].items():
        camel = snake.split("_")[0] + "".join(part.capitalize() for part in snake.split("_")[1:])
        if camel not in ("baseModel", "datasetSha256"):
            assert resolved[camel] == value, (camel, resolved.get(camel), value)
    assert mv["baseModelLocation"] == "builtin://tiny-gpt"
    assert mv["baseModelDigest"] == lineage.base_model_digest(workspace / "builtin-model" / "tiny-gpt")
    assert (mv["trainerImage"], mv["trainerImageDefault"]) == (Settings().trainer_image, True)


def test_quickstart_curates_trains_evaluates_and_registers_for_real(
    kubectl: Kubectl, cluster: localcluster.ClusterInfo, trained_quickstart: TrainedQuickstart
) -> None:
    namespace, name, job = trained_quickstart.namespace, trained_quickstart.name, trained_quickstart.job
    seen = trained_quickstart.phases
    assert backward_steps(seen) == [], seen
    assert seen[-3:] == ["Running", "Evaluating", "Completed"], seen
    status = job["status"]
    assert_trainer_reported_live(
        cluster, trained_quickstart.since, kubectl, namespace, name, trained_quickstart.statuses
    )

    # Real losses from real training, reported by the trainer.
    metrics = status["metrics"]
    for key in ("trainLoss", "evalLoss", "perplexity", "tokensPerSecond"):
        assert math.isfinite(metrics[key]) and metrics[key] > 0, (key, metrics)
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["evalLoss"]), rel=1e-3)
    assert status["progress"]["percent"] == 100

    # Curation counts in the status are the manifest's, and the ModelVersion's lineage points at the same data.
    workspace = claim_folder(cluster, kubectl, namespace, f"{name}-workspace")
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
    assert mv["spec"]["artifact"]["pvc"] == f"{name}-workspace"

    # The trained model is on the workspace volume in Hugging Face format.
    model = workspace / mv["spec"]["artifact"]["path"]
    assert list(model.rglob("*.safetensors")), sorted(p.name for p in model.rglob("*"))
    assert (model / "metadata.json").exists()
    assert_lineage(mv["spec"], json.loads((model / "metadata.json").read_text()), workspace)

    # Events tell the story, every transition in order (polling above can miss a short phase).
    events = json.loads(
        kubectl("-n", namespace, "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json")
    )["items"]
    # Event timestamps have one-second resolution, so check each transition's direction, not their order.
    transitions = [tuple(e["message"].split(":")[0].split(" -> ")) for e in events if " -> " in e["message"]]
    assert ("New", "Pending") in transitions, transitions
    assert any(target == "Completed" for _, target in transitions), transitions
    for source, target in transitions:
        assert source == "New" or ORDER.index(target) > ORDER.index(source), transitions
    assert "ModelRegistered" in {e["reason"] for e in events}


def test_operator_killed_at_each_stage_resumes_without_duplicates(
    kubectl: Kubectl,
    kube: client.ApiClient,
    namespace: str,
    cluster: localcluster.ClusterInfo,
    production_identity: Path,
    operator_process: OperatorProcess,
) -> None:
    """Killed in the middle of reconciliations, and during training only once the trainer has reported a step."""
    since = audit.offset(cluster.state_dir)
    operator_process.stop()
    setup(kubectl, namespace, quickstart("crashy", epochs=4))
    killed_at: list[str] = []

    def hold_and_kill(point: str) -> None:
        with armed(kubectl, point, namespace, "crashy", production_identity, username(), cluster.state_dir) as held:
            if not operator_process.alive():
                operator_process.start()
            poll(held.refusals, f"the operator held at {point}", 600, operator_process)
            operator_process.kill()
            killed_at.append(point)

    with PhaseRecorder(kube, namespace) as recorder:
        hold_and_kill("curation-created")
        operator_process.start()

        def trainer_reported_a_step() -> bool:
            progress = (get_job(kubectl, namespace, "crashy").get("status") or {}).get("progress") or {}
            return progress.get("stage") == "Training" and 0 < progress.get("step", 0) < progress["totalSteps"]

        poll(trainer_reported_a_step, "the trainer's first step report", 600, operator_process)
        operator_process.kill()
        killed_at.append("training-step")
        hold_and_kill("registered")
        operator_process.start()
        job = wait_phase(kubectl, namespace, "crashy", ("Completed",), timeout=600, operator=operator_process)
        poll(lambda: recorder.of("crashy")[-1:] == ["Completed"], "the watch to see Completed", 30)
    assert killed_at == ["curation-created", "training-step", "registered"]
    assert backward_steps(recorder.of("crashy")) == [], recorder.of("crashy")
    created = creations(cluster.state_dir, since, namespace)
    by_operator = {(resource, name): n for (user, resource, name), n in created.items() if user == username()}
    assert by_operator == {
        ("persistentvolumeclaims", "crashy-workspace"): 1,
        ("configmaps", "crashy-config"): 1,
        ("configmaps", "crashy-metrics"): 1,
        ("configmaps", "finetune-report-pacing"): 1,
        ("serviceaccounts", "crashy-trainer"): 1,
        ("roles", "crashy-trainer"): 1,
        ("rolebindings", "crashy-trainer"): 1,
        ("jobs", "crashy-curate"): 1,
        ("jobs", "crashy-train"): 1,
        ("modelversions", "quickstart-tiny-gpt-v0.0.1"): 1,
        ("registeredmodels", "quickstart-tiny-gpt"): 1,
    }, by_operator
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
    assert '"resuming"' in kubectl("-n", namespace, "logs", second)


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
