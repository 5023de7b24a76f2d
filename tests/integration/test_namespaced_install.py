"""The namespaced install mode on the real API server (manifests/overlays/namespaced, docs/install.md).

- The documented overlay installs and uninstalls; the served namespaces (the users') survive the uninstall.
- Its identity creates a job's children in a served namespace, and RBAC itself refuses it Jobs, ServiceAccounts,
  Roles and pods in any other namespace and in kube-system: no ClusterRoleBinding grants it writes anywhere.
- The operator running as that identity trains a job in its namespace to Completed (registration included), under
  mandatory namespaced peering, and leaves a job in another namespace alone.

The identity tests use a ServiceAccount of their own with the install's exact rules (`rbac.namespaced_operator_
kubeconfig`): the install's own ServiceAccount is bound cluster-wide for the session's other operators.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from namespaces import fresh_namespace
from operator_harness import operator, wait_phase
from rbac import NAMESPACE, Cluster, kubectl_as, namespaced_operator_kubeconfig, remove_identity
from test_admission import job_ref
from test_install import MANIFESTS, get, install, uninstall
from trained import quickstart, setup

from finetune_operator import children
from finetune_operator.config import Settings
from support.fixtures import Kubectl, WaitFor

pytestmark = pytest.mark.integration

OVERLAY = MANIFESTS / "overlays" / "namespaced"
OVERLAY_NAMESPACES = ["team-a", "team-b"]  # what the overlay serves (its FTO_NAMESPACES)


@pytest.fixture
def unserved(kube: client.ApiClient, wait_for: WaitFor) -> Iterator[str]:
    """A namespace the operator does not serve."""
    with fresh_namespace(kube, wait_for, "unserved") as name:
        yield name


@pytest.fixture
def namespaced_identity(
    cluster: Cluster, kubectl: Kubectl, crds: object, namespace: str, tmp_path: Path
) -> Iterator[Path]:
    """The kubeconfig of the namespaced install's identity, serving only the test's namespace."""
    account = f"fto-namespaced-{uuid.uuid4().hex[:6]}"
    try:
        yield namespaced_operator_kubeconfig(cluster, kubectl, tmp_path / "namespaced", [namespace], account)
    finally:
        remove_identity(kubectl, account)


def pod(namespace: str) -> dict[str, Any]:
    spec = {"containers": [{"name": "c", "image": "x"}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def test_the_identity_writes_in_served_namespaces_only(
    kubectl: Kubectl, namespace: str, unserved: str, namespaced_identity: Path
) -> None:
    job = job_ref(kubectl, namespace)
    curation = children.curation_job(job, Settings())
    curation["spec"]["suspend"] = True  # admitted is all this test needs; suspended, it starts no pod
    mine = [
        children.workspace_pvc(job),
        children.config_map(job),
        children.trainer_service_account(job),
        children.trainer_role(job),  # RBAC lets it grant these only because the RoleBinding gives it them here
        children.trainer_role_binding(job),
        curation,
    ]
    for obj in mine:
        created = kubectl_as(namespaced_identity, "create", "-f", "-", stdin=json.dumps(obj))
        assert created.returncode == 0, f"{obj['kind']} {obj['metadata']['name']}: {created.stderr}"
    listed = kubectl_as(namespaced_identity, "get", "namespaces", "-o", "name")  # Kopf's read, cluster-wide
    assert f"namespace/{namespace}" in listed.stdout.split(), listed.stderr

    refused_everywhere = [pod(namespace)]
    for elsewhere in (unserved, "kube-system"):
        for obj in (curation, children.trainer_service_account(job), children.trainer_role(job), pod(elsewhere)):
            moved = json.loads(json.dumps(obj))
            moved["metadata"]["namespace"] = elsewhere
            refused_everywhere.append(moved)
    for obj in refused_everywhere:
        where = f"{obj['kind']} in {obj['metadata']['namespace']}"
        refused = kubectl_as(namespaced_identity, "create", "-f", "-", stdin=json.dumps(obj))
        assert refused.returncode != 0, f"the namespaced operator created a {where}"
        assert "is forbidden" in refused.stderr and "cannot create resource" in refused.stderr, (where, refused.stderr)
    for reads in (("get", "jobs", "-A"), ("get", "finetuningjobs", "-n", unserved), ("get", "pods", "-n", unserved)):
        refused = kubectl_as(namespaced_identity, *reads)
        assert refused.returncode != 0 and "is forbidden" in refused.stderr, (reads, refused.stderr)


def test_the_operator_trains_in_its_namespace_on_the_namespaced_identity_and_ignores_others(
    cluster: Any, kubectl: Kubectl, namespace: str, unserved: str, namespaced_identity: Path
) -> None:
    # As the namespaced overlay runs it: the namespace's KopfPeering, mandatory (paused until elected).
    env = {"FTO_PEERING": "finetune-operator", "FTO_PEERING_MANDATORY": "true"}
    process = operator(cluster, namespace, "namespaced-install", namespaced_identity, **env).start()
    try:
        setup(kubectl, unserved, quickstart("ignored", epochs=1))
        setup(kubectl, namespace, quickstart("served", epochs=1))
        job = wait_phase(kubectl, namespace, "served", ("Completed",), timeout=600, operator=process)
        model = job["status"]["model"]["modelVersion"]
        assert get(kubectl, "modelversion", model, "-n", namespace)["spec"]["job"]["name"] == "served"
        peers = get(kubectl, "kopfpeering", "finetune-operator", "-n", namespace).get("status") or {}
        assert peers, "the operator sent no keep-alive to its namespace's KopfPeering"

        assert "status" not in get(kubectl, "finetuningjob", "ignored", "-n", unserved)
        for kind in ("jobs", "persistentvolumeclaims", "serviceaccounts"):
            made = kubectl("get", kind, "-n", unserved, "-l", "finetune.dev/job=ignored", "-o", "name").strip()
            assert not made, f"the operator made {made} in a namespace it does not serve"
        log = process.log.read_text(errors="replace")
        assert "forbidden" not in log.lower(), process.tail(200)
    finally:
        process.stop()
        print(f"--- operator log ({process.log}) ---\n{process.tail()}")


@pytest.mark.uninstalls_operator  # the uninstall deletes the ServiceAccount other tests' operators use
def test_the_namespaced_overlay_installs_and_uninstalls(kubectl: Kubectl, wait_for: WaitFor) -> None:
    # docs/install.md: the served namespaces exist before the install; they are the users', never the install's.
    created = [ns for ns in OVERLAY_NAMESPACES if not kubectl("get", "namespace", ns, "--ignore-not-found").strip()]
    for ns in created:
        kubectl("create", "namespace", ns)
    try:
        install(kubectl, OVERLAY)
        try:
            for ns in OVERLAY_NAMESPACES:
                binding = get(kubectl, "rolebinding", "finetune-operator", "-n", ns)
                assert binding["roleRef"]["name"] == "finetune-operator"
                get(kubectl, "kopfpeering", "finetune-operator", "-n", ns)
            read = get(kubectl, "clusterrolebinding", "finetune-operator-cluster-read")
            assert read["subjects"][0]["name"] == "finetune-operator"
            deployment = get(kubectl, "deployment", "finetune-operator", "-n", NAMESPACE)
            (container,) = deployment["spec"]["template"]["spec"]["containers"]
            assert {"name": "FTO_NAMESPACES", "value": ",".join(OVERLAY_NAMESPACES)} in container["env"]

            def pods_created() -> bool:
                selector = "app.kubernetes.io/name=finetune-operator"
                return len(get(kubectl, "pods", "-n", NAMESPACE, "-l", selector)["items"]) == 2

            wait_for(pods_created, "2 operator pods admitted", timeout=60)
        finally:
            uninstall(kubectl, OVERLAY)
        for ns in OVERLAY_NAMESPACES:
            assert get(kubectl, "namespace", ns)["status"]["phase"] == "Active", "the uninstall took a user namespace"
            assert not kubectl("get", "rolebinding,kopfpeering", "-n", ns, "-o", "name").strip()
        assert not kubectl("get", "clusterrolebinding", "finetune-operator-cluster-read", "--ignore-not-found").strip()
    finally:
        for ns in created:
            kubectl("delete", "namespace", ns, "--wait=false")
