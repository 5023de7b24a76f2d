"""The install's ValidatingAdmissionPolicies (manifests/base/admission) on the real API server.

- A job's training pods (`<job>-trainer`, or anyone impersonating it) change only status.progress, status.metrics,
  status.checkpoint and status.memoryPlan: phase, model and conditions cannot be forged.
- The operator's ServiceAccount is refused what RBAC alone would let it do (kube-system, privileged or host
  workloads, other identities), while the children it really creates all pass.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from rbac import Cluster, kubectl_as, operator_kubeconfig, token_kubeconfig

from finetune_operator import children, naming, publish
from finetune_operator.api import FineTuningJobSpec
from finetune_operator.backends import batchjob
from finetune_operator.config import Settings
from support.fixtures import Kubectl

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ADMISSION = REPO / "manifests" / "base" / "admission"
JOB = "forge"
SPEC = {
    "baseModel": {"name": "tiny", "builtin": "tiny-gpt"},
    "dataset": {"source": {"configMap": {"name": "sessions", "key": "sessions.jsonl"}}},
    "output": {"modelName": "chat", "pvc": "store"},
}


def apply_policies(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ADMISSION))


def job_ref(kubectl: Kubectl, namespace: str) -> children.JobRef:
    manifest = {"apiVersion": "finetune.dev/v1alpha1", "kind": "FineTuningJob", "metadata": {"name": JOB}, "spec": SPEC}
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))
    uid = kubectl("get", "ftj", JOB, "-n", namespace, "-o", "jsonpath={.metadata.uid}")
    return children.JobRef(JOB, namespace, uid, FineTuningJobSpec.model_validate(SPEC))


def status_patch(status: dict[str, Any]) -> tuple[str, ...]:
    return ("patch", "ftj", JOB, "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}))


@pytest.fixture
def trainer(cluster: Cluster, kubectl: Kubectl, crds: object, namespace: str, tmp_path: Path) -> Path:
    """The kubeconfig of the job's training pods: its <job>-trainer identity, as the operator creates it."""
    apply_policies(kubectl)
    job = job_ref(kubectl, namespace)
    for obj in (children.trainer_service_account(job), children.trainer_role(job), children.trainer_role_binding(job)):
        kubectl("apply", "-f", "-", stdin=json.dumps(obj))
    kubectl(*status_patch({"phase": "Running", "reason": "Training", "message": "training"}), "-n", namespace)
    account = naming.trainer_identity(JOB)
    token = kubectl("create", "token", account, "-n", namespace, "--duration=1h").strip()
    user = f"system:serviceaccount:{namespace}:{account}"
    return token_kubeconfig(cluster, token, tmp_path / "trainer.kubeconfig", user=user, namespace=namespace)


def test_the_trainer_reports_progress_metrics_and_checkpoint(kubectl: Kubectl, namespace: str, trainer: Path) -> None:
    report = {
        "progress": {"stage": "Training", "step": 3},
        "metrics": {"trainLoss": 2.5},
        "checkpoint": {"step": 2},
        "memoryPlan": {"estimatedGib": 1.5},
    }
    result = kubectl_as(trainer, *status_patch(report), "-n", namespace)
    assert result.returncode == 0, result.stderr
    status = json.loads(kubectl("get", "ftj", JOB, "-n", namespace, "-o", "json"))["status"]
    assert status["progress"]["step"] == 3 and status["metrics"]["trainLoss"] == 2.5 and status["phase"] == "Running"
    assert status["memoryPlan"] == {"estimatedGib": 1.5}


@pytest.mark.parametrize(
    ("forged", "field"),
    [
        ({"phase": "Completed"}, "phase"),
        ({"model": {"name": "chat", "version": "9.9.9", "uri": "pvc://elsewhere/x"}}, "model"),
        ({"conditions": [{"type": "Ready", "status": "True", "reason": "ModelRegistered"}]}, "conditions"),
        ({"reason": None}, "reason"),  # removing a field is a change too
        ({"progress": {"step": 4}, "attempts": 0}, "attempts"),  # allowed fields do not carry others along
    ],
)
def test_the_trainer_cannot_forge_the_operators_fields(
    kubectl: Kubectl, namespace: str, trainer: Path, forged: dict[str, Any], field: str
) -> None:
    result = kubectl_as(trainer, *status_patch(forged), "-n", namespace)
    assert result.returncode != 0, f"the trainer changed status.{field}"
    assert f"status.{field} is the operator's" in result.stderr, result.stderr
    # Nor can anyone (an editor of the namespace, say) impersonating the training pods' identity.
    user = f"system:serviceaccount:{namespace}:{naming.trainer_identity(JOB)}"
    with pytest.raises(AssertionError, match=f"status.{field} is the operator's"):
        kubectl(*status_patch(forged), "-n", namespace, f"--as={user}")
    assert json.loads(kubectl("get", "ftj", JOB, "-n", namespace, "-o", "json"))["status"]["phase"] == "Running"


def test_the_policy_binds_only_trainer_identities(kubectl: Kubectl, namespace: str, trainer: Path) -> None:
    kubectl(*status_patch({"phase": "Failed", "reason": "Cancelled"}), "-n", namespace)  # the cluster admin
    assert "Failed" in kubectl("get", "ftj", JOB, "-n", namespace, "-o", "jsonpath={.status.phase}")


# ------------------------------------------------------------------------------------ the operator's limits


def privileged(job: dict[str, Any]) -> dict[str, Any]:
    context = job["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    context.update({"privileged": True, "allowPrivilegeEscalation": True})  # the API server wants both
    return job


def host_path(job: dict[str, Any]) -> dict[str, Any]:
    job["spec"]["template"]["spec"]["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    return job


def other_identity(job: dict[str, Any]) -> dict[str, Any]:
    job["spec"]["template"]["spec"]["serviceAccountName"] = "default"
    return job


def escalating(job: dict[str, Any]) -> dict[str, Any]:
    job["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    return job


def host_network(job: dict[str, Any]) -> dict[str, Any]:
    job["spec"]["template"]["spec"]["hostNetwork"] = True
    return job


@pytest.fixture
def as_operator(cluster: Cluster, kubectl: Kubectl, crds: object, tmp_path: Path) -> Path:
    """The operator's production identity, bound by the install's policies (operator_kubeconfig applies them)."""
    return operator_kubeconfig(cluster, kubectl, tmp_path / "operator.kubeconfig")


def test_the_operators_real_children_are_admitted(kubectl: Kubectl, namespace: str, as_operator: Path) -> None:
    job = job_ref(kubectl, namespace)
    settings = Settings()
    objects = [
        children.workspace_pvc(job),
        children.config_map(job),
        children.trainer_service_account(job),
        children.trainer_role(job),
        children.trainer_role_binding(job),
        children.curation_job(job, settings),
        *batchjob.BatchJobBackend().children(job, settings),
        publish.publish_job(job, settings, "0.0.1", "model"),
    ]
    for obj in objects:
        if obj["kind"] == "Job":
            # Admission judges the object; suspended, it starts no pods that would hold the cluster's GPUs.
            obj["spec"]["suspend"] = True
        created = kubectl_as(as_operator, "create", "-f", "-", stdin=json.dumps(obj))
        assert created.returncode == 0, f"{obj['kind']} {obj['metadata']['name']}: {created.stderr}"


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        (privileged, "never run privileged"),
        (escalating, "never run privileged"),
        (host_path, "no hostPath volumes"),
        (host_network, "no host namespaces"),
        (other_identity, "<job>-trainer ServiceAccount or none"),
    ],
    ids=["privileged", "privilege-escalation", "hostPath", "hostNetwork", "other-service-account"],
)
def test_the_operator_cannot_start_a_dangerous_workload(
    kubectl: Kubectl, namespace: str, as_operator: Path, change: Callable[[Any], Any], refusal: str
) -> None:
    job = job_ref(kubectl, namespace)
    workload = change(children.curation_job(job, Settings()))
    workload["metadata"]["name"] = f"bad-{uuid.uuid4().hex[:6]}"
    workload["spec"]["suspend"] = True  # should the policy let it through, it starts no pod
    refused = kubectl_as(as_operator, "create", "-f", "-", stdin=json.dumps(workload))
    assert refused.returncode != 0 and refusal in refused.stderr, refused.stderr


def test_the_operator_is_refused_outside_its_remit(kubectl: Kubectl, namespace: str, as_operator: Path) -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"x-{uuid.uuid4().hex[:6]}"}}
    refused = kubectl_as(as_operator, "create", "-n", "kube-system", "-f", "-", stdin=json.dumps(config_map))
    assert refused.returncode != 0 and "nothing in kube-system" in refused.stderr, refused.stderr

    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer", "namespace": namespace}}
    refused = kubectl_as(as_operator, "create", "-f", "-", stdin=json.dumps(account))
    assert refused.returncode != 0 and "<job>-trainer ServiceAccounts" in refused.stderr, refused.stderr

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }
    refused = kubectl_as(as_operator, "create", "-f", "-", stdin=json.dumps(pod))
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower(), refused.stderr

    job = job_ref(kubectl, namespace)
    # A trainer Role that would let training pods rewrite another object (here the job's own config) is refused.
    role = children.trainer_role(job)
    role["rules"][1]["resourceNames"] = [naming.config_map(JOB)]
    refused = kubectl_as(as_operator, "create", "-f", "-", stdin=json.dumps(role))
    assert refused.returncode != 0 and "the operator's Roles grant only" in refused.stderr, refused.stderr

    kubectl("apply", "-f", "-", stdin=json.dumps(children.trainer_role(job)))  # so RBAC lets the binding through
    binding = children.trainer_role_binding(job)
    binding["metadata"]["name"] = "to-default"
    binding["subjects"] = [{"kind": "ServiceAccount", "name": "default", "namespace": namespace}]
    refused = kubectl_as(as_operator, "create", "-f", "-", stdin=json.dumps(binding))
    assert refused.returncode != 0 and "binds only" in refused.stderr, refused.stderr


@pytest.mark.parametrize(
    "request_args",
    [("get", "configmaps"), ("get", "configmaps", "--watch-only", "--request-timeout=5s"), ("get", "pod", "any")],
    ids=["list-configmaps", "watch-configmaps", "get-one-pod"],
)
def test_the_operator_holds_no_verb_it_does_not_use(
    namespace: str, as_operator: Path, request_args: tuple[str, ...]
) -> None:
    """RBAC itself, not a policy: verbs the operator never uses are not in its ClusterRole (least privilege)."""
    refused = kubectl_as(as_operator, *request_args, "-n", namespace)
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower(), refused.stderr
