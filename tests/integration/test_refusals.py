"""Children the real API server refuses, and names someone else holds: the job says so, never "starting" forever.

- A ConfigMap someone created under the job's `<job>-config` is never used: the job fails with NameCollision.
- The retained workspace of a deleted job with the same name is not adopted silently: NameCollision, naming it.
- A ResourceQuota that refuses the curation Job: the job waits with QuotaExceeded and the quota's words, and goes
  on by itself once the quota allows it (the sweep retries; freed quota sends the job no event).
- An admission policy that denies the job's Jobs: the job fails with CreateRefused and the policy's message.
- A LimitRange that refuses the curation pods (the Job exists, its pods never do; only a FailedCreate Event says
  why): the job fails with CreateRefused and the LimitRange's words, and the retrying Job is deleted.
- A workspace of an unknown StorageClass: the job waits with WorkspaceNotProvisioned in the provisioner's words.
- A multi-node group (an Indexed Job) whose pods a policy refuses: the job fails with CreateRefused and the
  policy's words, as a single-pod Job does; a group a GPU quota admits only in part waits with QuotaExceeded
  (its rank 0 would otherwise run alone until the rendezvous timeout). Before, both showed "training" for good.

Before these, each case left the job in Pending ("creating the workspace" or "starting curation") for good.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kwok_jobs import apply, gpu_job, sessions_config_map
from operator_harness import OperatorProcess, get_job, wait_phase
from test_operator_e2e import quickstart, setup

from support.fixtures import Kubectl

pytestmark = pytest.mark.integration

JOB = "refused"


def wait_reason(kubectl: Kubectl, namespace: str, reason: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = get_job(kubectl, namespace, JOB).get("status") or {}
        if status.get("reason") == reason:
            return status
        assert time.monotonic() < deadline, f"timed out waiting for reason {reason}: {status}"
        time.sleep(0.5)


def test_a_config_map_squatted_under_the_jobs_name_is_never_used(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    kubectl("-n", namespace, "create", "configmap", f"{JOB}-config", "--from-literal=job.json={}")
    setup(kubectl, namespace, quickstart(JOB))
    job = wait_phase(kubectl, namespace, JOB, ("Failed",), timeout=120, operator=operator_process)
    status = job["status"]
    assert (status["reason"], status["failureKind"]) == ("NameCollision", "User"), status
    assert f"ConfigMap {JOB}-config already exists and is not ours" in status["message"]
    squatted = kubectl("-n", namespace, "get", "configmap", f"{JOB}-config", "-o", "jsonpath={.data.job\\.json}")
    assert squatted == "{}"
    assert not kubectl("-n", namespace, "get", "jobs", "-o", "name").strip(), "a workload started anyway"


def test_the_retained_workspace_of_a_deleted_namesake_is_not_adopted(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    body = quickstart(JOB)  # retainPolicy Retain; no sessions yet, so the job waits in Pending after preparing
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(body))
    wait_reason(kubectl, namespace, "SourceNotFound")
    first_uid = get_job(kubectl, namespace, JOB)["metadata"]["uid"]
    kubectl("-n", namespace, "delete", "ftj", JOB, "--wait=true")

    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(body))
    job = wait_phase(kubectl, namespace, JOB, ("Failed",), timeout=120, operator=operator_process)
    status = job["status"]
    assert (status["reason"], status["failureKind"]) == ("NameCollision", "User"), status
    assert f"PersistentVolumeClaim {JOB}-workspace" in status["message"]
    assert f"retained PersistentVolumeClaim of an earlier job with this name (uid {first_uid})" in status["message"]
    labels = kubectl("-n", namespace, "get", "pvc", f"{JOB}-workspace", "-o", "jsonpath={.metadata.labels}")
    assert first_uid in labels  # untouched: still the earlier job's


def test_a_quota_refusal_is_waited_out(kubectl: Kubectl, namespace: str, operator_process: OperatorProcess) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-jobs", "namespace": namespace},
        "spec": {"hard": {"count/jobs.batch": "0"}},
    }
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(quota))
    setup(kubectl, namespace, quickstart(JOB))
    status = wait_reason(kubectl, namespace, "QuotaExceeded")
    assert status["phase"] == "Pending" and "failureKind" not in status, status
    assert f"Job {JOB}-curate" in status["message"] and "no-jobs" in status["message"], status["message"]

    kubectl("-n", namespace, "delete", "resourcequota", "no-jobs")
    deadline = time.monotonic() + 60
    while kubectl("-n", namespace, "get", "job", f"{JOB}-curate", "--ignore-not-found", "-o", "name") == "":
        assert time.monotonic() < deadline, f"curation never started: {get_job(kubectl, namespace, JOB)['status']}"
        time.sleep(0.5)
    assert get_job(kubectl, namespace, JOB)["status"]["reason"] != "QuotaExceeded"


def refusal(kubectl: Kubectl, obj: dict[str, Any]) -> str:
    """The API server's refusal of creating `obj` (a server-side dry run), or "" when it would be created."""
    try:
        kubectl("create", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(obj))
    except AssertionError as refused:
        return str(refused)
    return ""


@pytest.fixture
def deny_jobs(kubectl: Kubectl, namespace: str) -> Iterator[str]:
    """A cluster policy (as Kyverno or Gatekeeper would set) that denies batch Jobs in the test's namespace."""
    probe = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "probe", "namespace": namespace}}
    probe["spec"] = {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}}
    rule = {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["jobs"]}
    yield from denying_policy(kubectl, namespace, rule, "true", "Jobs here need a cost-center label", probe)


@pytest.fixture
def deny_training_pods(kubectl: Kubectl, namespace: str) -> Iterator[str]:
    """A cluster policy that denies the training pods (not the curation pods) in the test's namespace: only the
    Job controller meets it, when it creates the group's pods."""
    labels = {"app.kubernetes.io/component": "training"}
    probe = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": namespace, "labels": labels}}
    probe["spec"] = {"containers": [{"name": "c", "image": "x"}]}
    rule = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}
    key = "app.kubernetes.io/component"
    labels_ = "object.metadata.labels"
    training = f"has({labels_}) && '{key}' in {labels_} && {labels_}['{key}'] == 'training'"
    yield from denying_policy(kubectl, namespace, rule, training, "training pods here need a signed image", probe)


def denying_policy(
    kubectl: Kubectl, namespace: str, rule: dict[str, Any], condition: str, message: str, probe: dict[str, Any]
) -> Iterator[str]:
    """A ValidatingAdmissionPolicy denying the creations `rule` matches in `namespace` where `condition` (CEL)
    holds, with `message`; in force once the server refuses `probe` (a dry run); removed afterwards."""
    name = f"deny-{uuid.uuid4().hex[:6]}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [rule]},
            "matchConditions": [
                {"name": "this-namespace", "expression": f"request.namespace == '{namespace}'"},
                {"name": "selected", "expression": condition},
            ],
            "validations": [{"expression": "false", "message": message}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"]},
    }
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all([policy, binding]))
    deadline = time.monotonic() + 30
    while message not in refusal(kubectl, probe):
        assert time.monotonic() < deadline, "the policy never took effect"
        time.sleep(0.5)
    yield message
    kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, "--ignore-not-found")


def test_a_child_denied_by_a_policy_fails_the_job_with_the_policys_message(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess, deny_jobs: str
) -> None:
    setup(kubectl, namespace, quickstart(JOB))
    job = wait_phase(kubectl, namespace, JOB, ("Failed",), timeout=120, operator=operator_process)
    status = job["status"]
    assert (status["reason"], status["failureKind"]) == ("CreateRefused", "User"), status
    assert f"refused to create Job {JOB}-curate" in status["message"] and deny_jobs in status["message"]


def test_pods_a_limit_range_refuses_fail_the_job_with_its_words(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    # The curation container's memory limit is 2Gi: every pod of the curation Job is refused.
    limits = {"type": "Container", "max": {"memory": "1Gi"}}
    limit_range = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "small", "namespace": namespace}}
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump({**limit_range, "spec": {"limits": [limits]}}))
    setup(kubectl, namespace, quickstart(JOB))
    job = wait_phase(kubectl, namespace, JOB, ("Failed",), timeout=120, operator=operator_process)
    status = job["status"]
    assert (status["reason"], status["failureKind"]) == ("CreateRefused", "User"), status
    assert f"the pods of Job {JOB}-curate" in status["message"], status["message"]
    assert "maximum memory usage per Container is 1Gi" in status["message"], status["message"]
    wait_job_deleted(kubectl, namespace, f"{JOB}-curate", "the curation Job")


def test_an_unknown_storage_class_is_named_while_the_job_waits(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    body = quickstart(JOB)
    body["spec"]["storage"]["storageClassName"] = "no-such-class"
    setup(kubectl, namespace, body)
    status = wait_reason(kubectl, namespace, "WorkspaceNotProvisioned")
    assert status["phase"] == "Pending" and "failureKind" not in status, status
    assert f"waiting for the workspace volume {JOB}-workspace" in status["message"], status["message"]
    assert "no-such-class" in status["message"], status["message"]


def wait_job_deleted(kubectl: Kubectl, namespace: str, name: str, what: str) -> None:
    """A refused workload's Job retries its pods forever: the operator must delete it (within a minute)."""
    deadline = time.monotonic() + 60
    while kubectl("-n", namespace, "get", "job", name, "--ignore-not-found", "-o", "name"):
        assert time.monotonic() < deadline, f"{what}, which retries its pods forever, was not deleted"
        time.sleep(0.5)


def group_job() -> dict[str, Any]:
    """A 2-node group of 1 GPU per pod whose pods run on the KWOK GPU nodes (curation included) for 2 s each."""
    body = gpu_job(JOB, gpus=1, storage={"size": "1Gi", "accessMode": "ReadWriteMany"})
    body["spec"]["resources"]["nodes"] = 2
    return body


def test_a_group_whose_pods_a_policy_refuses_fails_the_job_with_its_words(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess, deny_training_pods: str
) -> None:
    apply(kubectl, namespace, sessions_config_map(), group_job())
    job = wait_phase(kubectl, namespace, JOB, ("Failed",), timeout=180, operator=operator_process)
    status = job["status"]
    assert (status["reason"], status["failureKind"]) == ("CreateRefused", "User"), status
    assert f"the pods of Job {JOB}-train" in status["message"] and deny_training_pods in status["message"], status
    wait_job_deleted(kubectl, namespace, f"{JOB}-train", "the group's Job")


def test_a_group_that_a_quota_admits_in_part_waits_with_the_quotas_words_then_completes(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    # count/pods counts finished pods too: the curation pod and one pod of the group fit, the other never does
    # (a quota on "pods" or GPUs would free up as soon as the first pod of this 2 s group ended).
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "two-pods", "namespace": namespace},
        "spec": {"hard": {"count/pods": "2"}},
    }
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(quota))
    apply(kubectl, namespace, sessions_config_map(), group_job())
    status = wait_reason(kubectl, namespace, "QuotaExceeded", timeout=180)
    assert status["phase"] == "Running" and "failureKind" not in status, status
    assert f"the pods of Job {JOB}-train" in status["message"] and "two-pods" in status["message"], status["message"]
    pods = kubectl("-n", namespace, "get", "pods", "-l", "app.kubernetes.io/component=training", "-o", "name")
    assert len(pods.split()) == 1, pods  # one rank only: its peer is refused

    # A wait, not a failure: with room for the missing pod the Job controller creates it and the group completes.
    kubectl(
        "-n",
        namespace,
        "patch",
        "resourcequota",
        "two-pods",
        "--type=merge",
        "-p",
        '{"spec":{"hard":{"count/pods":"3"}}}',
    )
    job = wait_phase(kubectl, namespace, JOB, ("Completed",), timeout=240, operator=operator_process)
    assert job["status"]["attempts"] == 1, job["status"]
