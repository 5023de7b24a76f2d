"""The operator against the real control plane, with KWOK GPU nodes standing in for the training pods.

KWOK pods follow the `kwok.finetune.dev/*` annotations (hack/localcluster/kwok.py), which a job puts on its
pods through `spec.podMetadata`: they run for a while and exit with a code and a termination message, so
scheduling, queueing, failures and registration are exercised without a GPU. Real curation and training
run in test_operator_e2e.py on the node agent.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from kwok_jobs import apply, gpu_job, sessions_config_map
from operator_harness import OperatorProcess, get_job, isolated, operator, wait_phase

from support.fixtures import Kubectl

pytestmark = pytest.mark.integration


def test_job_completes_and_registers_a_model_version(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    apply(kubectl, namespace, sessions_config_map(), gpu_job("ok", gpus=1))
    seen: list[str] = []
    job = wait_phase(kubectl, namespace, "ok", ("Completed",), timeout=120, operator=operator_process, seen=seen)
    status = job["status"]
    assert seen[-1] == "Completed" and "Running" in seen, seen
    assert status["model"]["version"] == "0.0.1"
    assert status["dataset"]["samples"] == 40
    assert status["metrics"]["evalLoss"] == pytest.approx(1.7)
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert ready["Ready"] == "True" and ready["Succeeded"] == "True" and ready["Failed"] == "False"
    mv = json.loads(kubectl("-n", namespace, "get", "mv", status["model"]["modelVersion"], "-o", "json"))
    assert mv["spec"]["job"]["uid"] == job["metadata"]["uid"]
    assert mv["spec"]["dataset"]["sha256"] == "0" * 64
    assert "ownerReferences" not in mv["metadata"]
    pods = json.loads(kubectl("-n", namespace, "get", "pods", "-o", "json"))["items"]
    training = [p for p in pods if p["metadata"]["labels"]["app.kubernetes.io/component"] == "training"]
    assert training and training[0]["spec"]["nodeName"].startswith("gpu-node-")
    limits = training[0]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"
    events = kubectl("-n", namespace, "get", "events", "--field-selector", "involvedObject.kind=FineTuningJob")
    assert "ModelRegistered" in events


def test_gpu_jobs_queue_until_capacity_frees(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    # Two KWOK nodes with 8 GPUs each: two 8-GPU jobs run, the third waits in Queued.
    apply(kubectl, namespace, sessions_config_map())
    apply(kubectl, namespace, *(gpu_job(f"big-{i}", gpus=8, run_for="12s") for i in range(3)))

    def queued() -> list[dict[str, Any]]:
        jobs = [get_job(kubectl, namespace, f"big-{i}") for i in range(3)]
        return [j for j in jobs if (j.get("status") or {}).get("phase") == "Queued"]

    deadline = time.monotonic() + 90
    waiting: list[dict[str, Any]] = []
    while not waiting and time.monotonic() < deadline:
        waiting = queued()
        time.sleep(0.5)
    assert waiting, "no job was Queued while the GPUs were full"
    status = waiting[0]["status"]
    assert status["reason"] == "WaitingForCapacity"
    assert "8 nvidia.com/gpu" in status["message"]
    for i in range(3):
        wait_phase(kubectl, namespace, f"big-{i}", ("Completed",), timeout=180, operator=operator_process)
    versions = sorted(
        json.loads(kubectl("-n", namespace, "get", "mv", "-o", "json"))["items"], key=lambda mv: mv["spec"]["version"]
    )
    assert [mv["spec"]["version"] for mv in versions] == ["0.0.1", "0.0.2", "0.0.3"]


def test_training_failure_reports_exit_code_and_message(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    gate = {"outcome": "Failed", "reason": "EvaluationGateFailed", "failureKind": "User"}
    failing = gpu_job("gate", gpus=1, exit_code=12, message={**gate, "message": "evalLoss 3.1 > 2.0"})
    apply(kubectl, namespace, sessions_config_map(), failing)
    job = wait_phase(kubectl, namespace, "gate", ("Failed",), timeout=120, operator=operator_process)
    # Curation shares the annotations, so it is the curation step that fails here with the pod's message.
    assert job["status"]["reason"] == "EvaluationGateFailed"
    assert job["status"]["failureKind"] == "User"
    assert "evalLoss 3.1" in job["status"]["message"]


def test_missing_source_waits_then_fails(
    kubectl: Kubectl,
    namespace: str,
    cluster: Any,
    crds: Any,
    production_identity: Path,
    request: pytest.FixtureRequest,
) -> None:
    process = operator(cluster, namespace, request.node.name, production_identity, FTO_SOURCE_WAIT_SECONDS="6")
    process.start()
    try:
        apply(kubectl, namespace, gpu_job("nosource", gpus=1))
        seen: list[str] = []
        job = wait_phase(kubectl, namespace, "nosource", ("Failed",), timeout=60, operator=process, seen=seen)
        assert seen[0] == "Pending"
        assert job["status"]["reason"] == "SourceNotFound"
        assert "ConfigMap sessions" in job["status"]["message"]
        assert job["status"]["failureKind"] == "User"
    finally:
        process.stop()


def test_cancel_stops_pods_and_keeps_the_workspace(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    long_running = gpu_job("cancel-me", gpus=1, run_for="1h")
    apply(kubectl, namespace, sessions_config_map(), long_running)
    wait_phase(kubectl, namespace, "cancel-me", ("Running",), timeout=60, operator=operator_process)
    kubectl("-n", namespace, "patch", "ftj", "cancel-me", "--type=merge", "-p", '{"spec":{"cancel":true}}')
    job = wait_phase(kubectl, namespace, "cancel-me", ("Cancelled",), timeout=60, operator=operator_process)
    assert job["status"]["reason"] == "Cancelled"
    remaining = kubectl("-n", namespace, "get", "jobs.batch", "-o", "name")
    assert remaining.strip() == ""
    assert "cancel-me-workspace" in kubectl("-n", namespace, "get", "pvc", "-o", "name")
    # Cancel cannot be undone: the API server refuses it (CEL transition rule).
    kubectl(
        "-n", namespace, "patch", "ftj", "cancel-me", "--type=merge", "-p", '{"spec":{"cancel":false}}', check=False
    )
    assert kubectl("-n", namespace, "get", "ftj", "cancel-me", "-o", "jsonpath={.spec.cancel}") == "true"


def test_delete_cascades_and_keeps_retained_workspace_and_model(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    apply(kubectl, namespace, sessions_config_map(), gpu_job("gone", gpus=1))
    wait_phase(kubectl, namespace, "gone", ("Completed",), timeout=120, operator=operator_process)
    kubectl("-n", namespace, "delete", "ftj", "gone", "--wait=true", "--timeout=60s")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        leftovers = kubectl("-n", namespace, "get", "jobs.batch,configmaps,serviceaccounts,roles", "-o", "name")
        if not any("gone-" in line for line in leftovers.split()):
            break
        time.sleep(1)
    else:
        raise AssertionError(f"owned children were not garbage-collected: {leftovers}")
    assert "gone-workspace" in kubectl("-n", namespace, "get", "pvc", "-o", "name")
    assert "support-agent-v0.0.1" in kubectl("-n", namespace, "get", "mv", "-o", "name")


def training_job_of(kubectl: Kubectl, namespace: str, job: str) -> dict[str, Any]:
    return json.loads(kubectl("-n", namespace, "get", "jobs.batch", f"{job}-train", "-o", "json"))  # type: ignore[no-any-return]


def test_kueue_queue_name_creates_a_suspended_workload_that_runs_once_admitted(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    apply(kubectl, namespace, sessions_config_map(), gpu_job("queued", gpus=1, queueName="team-a"))
    job = wait_phase(kubectl, namespace, "queued", ("Queued",), timeout=90, operator=operator_process)
    assert job["status"]["reason"] == "WaitingForAdmission"
    assert "LocalQueue team-a" in job["status"]["message"]
    workload = training_job_of(kubectl, namespace, "queued")
    assert workload["spec"]["suspend"] is True
    assert workload["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    # Admission as Kueue does it: unsuspend the Job.
    kubectl("-n", namespace, "patch", "jobs.batch", "queued-train", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait_phase(kubectl, namespace, "queued", ("Completed",), timeout=120, operator=operator_process)


def test_deadline_exceeded(kubectl: Kubectl, namespace: str, operator_process: OperatorProcess) -> None:
    # activeDeadlineSeconds bounds the training workload only: curation (8 s) finishes, training (8 s) cannot.
    body = gpu_job("slow", gpus=1, run_for="8s")
    body["spec"]["runPolicy"] = {"activeDeadlineSeconds": 3}
    apply(kubectl, namespace, sessions_config_map(), body)
    job = wait_phase(kubectl, namespace, "slow", ("Failed",), timeout=120, operator=operator_process)
    assert job["status"]["reason"] == "DeadlineExceeded", job["status"]
    assert "activeDeadlineSeconds" in job["status"]["message"]
    assert job["status"]["failureKind"] == "User"


def test_internal_errors_retry_then_fail_with_the_exit_code(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    # Exit code 20 is the trainer image's internal error: retried (curation allows one retry), then reported.
    apply(kubectl, namespace, sessions_config_map(), gpu_job("flaky", gpus=1, run_for="1s", exit_code=20))
    job = wait_phase(kubectl, namespace, "flaky", ("Failed",), timeout=120, operator=operator_process)
    assert job["status"]["reason"] == "BackoffLimitExceeded", job["status"]
    assert "exited with code 20" in job["status"]["message"]
    assert f"kubectl logs -n {namespace} job/flaky-curate" in job["status"]["message"]
    assert job["status"]["failureKind"] == "System"
    pods = kubectl("-n", namespace, "get", "pods", "-l", "app.kubernetes.io/component=curation", "-o", "name")
    assert len(pods.split()) == 2, pods


def test_ttl_after_finished_deletes_the_job_and_keeps_the_model(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    body = gpu_job("short-lived", gpus=1)
    body["spec"]["runPolicy"] = {"ttlSecondsAfterFinished": 3}
    apply(kubectl, namespace, sessions_config_map(), body)
    wait_phase(kubectl, namespace, "short-lived", ("Completed",), timeout=90, operator=operator_process)
    deadline = time.monotonic() + 60
    while kubectl("-n", namespace, "get", "ftj", "short-lived", "--ignore-not-found", "-o", "name").strip():
        assert time.monotonic() < deadline, "ttlSecondsAfterFinished did not delete the job"
        time.sleep(0.5)
    assert "support-agent-v0.0.1" in kubectl("-n", namespace, "get", "mv", "-o", "name")


def test_a_job_completes_with_only_the_operators_production_permissions(
    kubectl: Kubectl, namespace: str, cluster: Any, crds: Any, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    from rbac import operator_kubeconfig

    kubeconfig = operator_kubeconfig(cluster, kubectl, tmp_path / "operator.kubeconfig")
    log = cluster.state_dir / "logs" / f"operator-{request.node.name[:60]}.log"
    process = OperatorProcess(kubeconfig, log, env=isolated(namespace)).start()
    try:
        apply(kubectl, namespace, sessions_config_map(), gpu_job("least-privilege", gpus=1))
        job = wait_phase(kubectl, namespace, "least-privilege", ("Completed",), timeout=120, operator=process)
        assert job["status"]["model"]["version"] == "0.0.1"
        assert "Forbidden" not in process.tail(400) and "403" not in process.tail(400)
    finally:
        process.stop()
