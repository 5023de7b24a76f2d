"""Install, check and uninstall the manifests on a real API server, with the commands docs/install.md gives.

Server-side apply proves what `kubectl kustomize` cannot: every object passes the API server's validation,
the restricted Pod Security admission of finetune-system admits the operator's pods, ClusterRole aggregation
folds our user roles into `edit` and `view`, and the operator's identity has exactly the access it needs.

The uninstall keeps the CustomResourceDefinitions, as docs/install.md prescribes: deleting a CRD deletes every
FineTuningJob and ModelVersion in the cluster, and the session's other tests use them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from rbac import NAMESPACE, SERVICE_ACCOUNT, Cluster, operator_kubeconfig

import localcluster
import strictyaml
from support.fixtures import Kubectl, WaitFor
from support.install import WAIT_FOR_ESTABLISHED

# The uninstalls delete finetune-system's ServiceAccount, whose tokens the other tests' operators use.
pytestmark = [pytest.mark.integration, pytest.mark.uninstalls_operator]

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
SAMPLES = sorted((MANIFESTS / "samples").glob("*.yaml"))
CRDS = "app.kubernetes.io/part-of=finetune-operator,app.kubernetes.io/component=crd"
NOT_CRDS = "app.kubernetes.io/component!=crd"
SERVICEMONITOR_CRD = "servicemonitors.monitoring.coreos.com"

MODEL_VERSION: dict[str, Any] = {
    "apiVersion": "finetune.dev/v1alpha1",
    "kind": "ModelVersion",
    "metadata": {"name": "support-agent-1.0.0"},
    "spec": {
        "modelName": "support-agent",
        "version": "1.0.0",
        "baseModel": "llama-3.1-8b",
        "artifact": {"pvc": "support-agent-lora-workspace", "path": "model"},
        "job": {"name": "support-agent-lora", "uid": "0b6f4a1e-2f4e-4d8b-9a57-0c6d2f0e9a11"},
    },
}


def install(kubectl: Kubectl, kustomization: Path) -> None:
    """docs/install.md: the CRDs first (objects of new kinds need them served), then everything."""
    # --force-conflicts: other tests of the session apply the same CRDs with other field managers.
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(MANIFESTS / "crds"))
    kubectl("wait", WAIT_FOR_ESTABLISHED, "--timeout=60s", "crd", "-l", CRDS)
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(kustomization))


def uninstall(kubectl: Kubectl, kustomization: Path) -> None:
    """docs/install.md: everything but the CRDs (which would take every job and ModelVersion with them)."""
    kubectl("delete", "-k", str(kustomization), "-l", NOT_CRDS, "--ignore-not-found", "--timeout=180s")


def get(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kubectl("get", *args, "-o", "json"))
    return result


def monitoring_overlay(directory: Path) -> Path:
    """production + the ServiceMonitor component, as docs/install.md shows it."""
    directory.mkdir()
    (directory / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                # kustomize accepts only relative paths to other kustomizations.
                "resources": [os.path.relpath(MANIFESTS / "overlays/production", directory)],
                "components": [os.path.relpath(MANIFESTS / "components/servicemonitor", directory)],
            }
        )
    )
    return directory


@pytest.mark.parametrize(
    ("target", "replicas"),
    [("base", 1), ("overlays/dev", 1), ("overlays/production", 2), ("production+servicemonitor", 2)],
)
def test_install_and_uninstall(
    kubectl: Kubectl,
    wait_for: WaitFor,
    namespace: str,
    tmp_path: Path,
    target: str,
    replicas: int,
    request: pytest.FixtureRequest,
) -> None:
    if target == "production+servicemonitor":
        assert request.getfixturevalue("servicemonitor_crd") == SERVICEMONITOR_CRD
        kustomization = monitoring_overlay(tmp_path / "monitoring")
    else:
        kustomization = MANIFESTS / target

    install(kubectl, kustomization)
    try:
        deployment = get(kubectl, "deployment", "finetune-operator", "-n", NAMESPACE)
        assert deployment["spec"]["replicas"] == replicas
        get(kubectl, "clusterkopfpeering", "finetune-operator")
        labels = get(kubectl, "namespace", NAMESPACE)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        if replicas > 1:
            assert get(kubectl, "pdb", "finetune-operator", "-n", NAMESPACE)["spec"]["minAvailable"] == 1

        # The ReplicaSet's pods pass the namespace's restricted Pod Security admission (else FailedCreate).
        def pods_created() -> bool:
            pods = get(kubectl, "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/name=finetune-operator")
            return len(pods["items"]) == replicas

        try:
            wait_for(pods_created, f"{replicas} operator pod(s) admitted", timeout=60)
        except AssertionError:
            events = kubectl("get", "events", "-n", NAMESPACE, check=False)
            raise AssertionError(f"operator pods were not created; events:\n{events}") from None

        # ClusterRole aggregation (kube-controller-manager) folds the user roles into the built-in ones.
        def aggregated(role: str, resource: str, verb: str) -> bool:
            rules = get(kubectl, "clusterrole", role).get("rules") or []
            return any(resource in r.get("resources", []) and verb in r.get("verbs", []) for r in rules)

        wait_for(lambda: aggregated("edit", "finetuningjobs", "create"), "finetuningjobs in the edit role")
        wait_for(lambda: aggregated("admin", "finetuningjobs", "delete"), "finetuningjobs in the admin role")
        wait_for(lambda: aggregated("view", "modelversions", "list"), "modelversions in the view role")
        assert not aggregated("view", "finetuningjobs", "create")
        assert not aggregated("edit", "modelversions", "create")

        if target == "production+servicemonitor":
            get(kubectl, "servicemonitor", "finetune-operator", "-n", NAMESPACE)

        # A registered model, which the uninstall must keep.
        kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(MODEL_VERSION))
    finally:
        uninstall(kubectl, kustomization)

    assert not kubectl("get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "name").strip()
    assert not kubectl("get", "clusterrole", "finetune-operator", "--ignore-not-found", "-o", "name").strip()
    get(kubectl, "modelversion", MODEL_VERSION["metadata"]["name"], "-n", namespace)
    kept = kubectl("get", "crd", "-l", CRDS, "-o", "name").split()
    assert sorted(kept) == [
        "customresourcedefinition.apiextensions.k8s.io/clusterkopfpeerings.kopf.dev",
        "customresourcedefinition.apiextensions.k8s.io/finetuningjobs.finetune.dev",
        "customresourcedefinition.apiextensions.k8s.io/kopfpeerings.kopf.dev",
        "customresourcedefinition.apiextensions.k8s.io/modelversions.finetune.dev",
        "customresourcedefinition.apiextensions.k8s.io/registeredmodels.finetune.dev",
    ]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_sample_applies(kubectl: Kubectl, crds: object, namespace: str, sample: Path) -> None:
    name = strictyaml.load(sample.read_text())["metadata"]["name"]
    kubectl("apply", "--server-side", "--validate=strict", "-n", namespace, "-f", str(sample))
    stored = get(kubectl, "finetuningjob", name, "-n", namespace)
    # The CRD's defaults were applied: the stored object is complete, not just what the sample says.
    assert stored["spec"]["runPolicy"]["backoffLimit"] >= 0
    assert stored["spec"]["storage"]["retainPolicy"] in {"Retain", "Delete"}
    kubectl("delete", "-n", namespace, "-f", str(sample), "--timeout=60s")
    assert not kubectl("get", "finetuningjob", name, "-n", namespace, "--ignore-not-found", "-o", "name").strip()


def test_operator_identity_has_its_permissions_and_no_more(
    cluster: Cluster, kubectl: Kubectl, crds: object, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = operator_kubeconfig(cluster, kubectl, tmp_path / "operator.kubeconfig")
    whoami = localcluster.run_kubectl(kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}", whoami.stderr

    kubectl("apply", "-n", namespace, "-f", str(MANIFESTS / "samples" / "quickstart.yaml"))
    patched = localcluster.run_kubectl(
        kubeconfig,
        *("patch", "finetuningjob", "quickstart", "-n", namespace, "--subresource=status", "--type=merge"),
        *("-p", '{"status": {"phase": "Pending", "reason": "Accepted"}}'),
    )
    assert patched.returncode == 0, patched.stderr
    assert get(kubectl, "finetuningjob", "quickstart", "-n", namespace)["status"]["phase"] == "Pending"

    secrets = localcluster.run_kubectl(kubeconfig, "get", "secrets", "-A")
    assert secrets.returncode != 0
    assert "forbidden" in secrets.stderr.lower()

    def can(verb: str, group: str, resource: str, subresource: str = "") -> bool:
        # A SelfSubjectAccessReview rather than `kubectl auth can-i`, which mangles kinds the cluster does
        # not serve (Kueue's workloads here) into a core-group resource name.
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                    "subresource": subresource,
                }
            },
        }
        answer = localcluster.run_kubectl(
            kubeconfig, "create", "-f", "-", "-o", "jsonpath={.status.allowed}", stdin=json.dumps(review)
        )
        assert answer.returncode == 0, answer.stderr
        return answer.stdout == "true"

    for verb, group, resource, *subresource in [
        ("patch", "finetune.dev", "finetuningjobs", "status"),
        ("watch", "finetune.dev", "finetuningjobs"),
        ("create", "finetune.dev", "modelversions"),
        ("create", "batch", "jobs"),
        ("create", "rbac.authorization.k8s.io", "roles"),
        ("create", "", "events"),
        ("watch", "", "pods"),
        ("watch", "kueue.x-k8s.io", "workloads"),
        ("patch", "kopf.dev", "clusterkopfpeerings"),
        ("watch", "apiextensions.k8s.io", "customresourcedefinitions"),
    ]:
        assert can(verb, group, resource, *subresource), f"the operator cannot {verb} {group}/{resource}"
    for verb, group, resource, *subresource in [
        ("list", "", "secrets"),
        ("update", "finetune.dev", "finetuningjobs"),
        ("delete", "finetune.dev", "modelversions"),
        ("create", "", "pods"),
        ("create", "rbac.authorization.k8s.io", "clusterroles"),
        ("update", "kueue.x-k8s.io", "workloads"),
        # Verbs nothing uses (docs/install.md; test_admission checks ConfigMaps and pods): Kopf writes no
        # annotation or finalizer to a job (only on-event handlers and indexes), versions are never read by
        # name, a RegisteredModel's status is only patched, and Events are only created, in core/v1.
        ("patch", "finetune.dev", "finetuningjobs"),
        ("get", "finetune.dev", "modelversions"),
        ("get", "finetune.dev", "registeredmodels", "status"),
        ("patch", "", "events"),
        ("create", "events.k8s.io", "events"),
    ]:
        assert not can(verb, group, resource, *subresource), f"the operator may {verb} {group}/{resource}"

    # The per-job trainer Role (docs/runtime-contract.md): the API server lets the operator create it only
    # because the operator holds those permissions itself, and refuses anything beyond them.
    def role(rules: list[dict[str, Any]]) -> str:
        return yaml.safe_dump(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "quickstart-trainer", "namespace": namespace},
                "rules": rules,
            }
        )

    escalating = role([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}])
    refused = localcluster.run_kubectl(kubeconfig, "create", "-f", "-", stdin=escalating)
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower()
    trainer = role(
        [
            {
                "apiGroups": ["finetune.dev"],
                "resources": ["finetuningjobs/status"],
                "resourceNames": ["quickstart"],
                "verbs": ["get", "patch"],
            }
        ]
    )
    created = localcluster.run_kubectl(kubeconfig, "create", "-f", "-", stdin=trainer)
    assert created.returncode == 0, created.stderr
