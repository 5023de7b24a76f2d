"""The dashboard's identities on the real API server.

- Deployed: the ServiceAccount of manifests/dashboard reads jobs, versions, events, pods, pod logs and
  ConfigMaps, writes nothing, and cannot read Secrets; the dashboard runs with exactly that identity.
- Local: run with a user's kubeconfig, it shows what that user may read. A user with `view` in one namespace
  sees that namespace's jobs and not another's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from dashboard_harness import DASHBOARD_MANIFESTS, REPO, DashboardProcess, token_kubeconfig

import localcluster
import strictyaml
from conftest import WaitFor

pytestmark = pytest.mark.integration

SA = "system:serviceaccount:finetune-system:finetune-dashboard"
JOB = {
    "apiVersion": "finetune.dev/v1alpha1",
    "kind": "FineTuningJob",
    "metadata": {"name": "seen"},
    "spec": {
        "baseModel": {"name": "tiny-gpt", "builtin": "tiny-gpt"},
        "dataset": {"source": {"configMap": {"name": "s", "key": "s.jsonl"}}},
        "output": {"modelName": "m"},
    },
}


def can(kubectl: Callable[..., str], user: str, verb: str, resource: str, namespace: str = "default") -> bool:
    answer = kubectl("auth", "can-i", verb, resource, "-n", namespace, f"--as={user}", check=False).strip()
    return answer == "yes"


@pytest.fixture
def second_namespace(kubectl: Callable[..., str]) -> Iterator[str]:
    name = f"dash-other-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false")


def install_identity(kubectl: Callable[..., str]) -> None:
    kubectl(
        "apply", "-f", "-", stdin=kubectl("create", "namespace", "finetune-system", "--dry-run=client", "-o", "yaml")
    )
    rendered = [o for o in strictyaml.load_all(kubectl("kustomize", str(DASHBOARD_MANIFESTS))) if o]
    identity = [o for o in rendered if o["kind"] in {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}]
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump_all(identity))


def install_user_roles(kubectl: Callable[..., str]) -> None:
    """manifests/base's finetune-operator-view/-edit, which aggregate into the built-in view/edit/admin roles."""
    rendered = [o for o in strictyaml.load_all(kubectl("kustomize", str(REPO / "manifests" / "base"))) if o]
    roles = [
        o for o in rendered if o["kind"] == "ClusterRole" and o["metadata"]["name"].startswith("finetune-operator-")
    ]
    assert roles, "manifests/base has no user roles"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump_all(roles))


def test_the_deployed_identity_reads_and_never_writes_nor_reads_secrets(
    kubectl: Callable[..., str], crds: object, namespace: str, cluster: localcluster.ClusterInfo, tmp_path: Path
) -> None:
    install_identity(kubectl)
    for resource in ("finetuningjobs", "modelversions", "registeredmodels", "events", "pods", "configmaps"):
        for verb in ("get", "list", "watch"):
            assert can(kubectl, SA, verb, resource, namespace), (verb, resource)
    assert can(kubectl, SA, "get", "pods/log", namespace)
    for verb in ("get", "list", "watch"):
        assert not can(kubectl, SA, verb, "secrets", namespace), verb
        assert not can(kubectl, SA, verb, "secrets", "kube-system"), verb
    for verb in ("create", "update", "patch", "delete"):
        written = ("finetuningjobs", "modelversions", "registeredmodels", "pods", "configmaps", "finetuningjobs/status")
        for resource in written:
            assert not can(kubectl, SA, verb, resource, namespace), (verb, resource)

    # The dashboard itself, running as that ServiceAccount, syncs every resource and shows the job.
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(JOB))
    token = kubectl("-n", "finetune-system", "create", "token", "finetune-dashboard", "--duration=1h").strip()
    kubeconfig = token_kubeconfig(cluster, token, "finetune-system", tmp_path / "sa.kubeconfig")
    with DashboardProcess(kubeconfig, tmp_path / "dashboard.log") as dashboard:
        status, html, _ = dashboard.get(f"/?namespace={namespace}")
        assert status == 200 and f'href="/jobs/{namespace}/seen"' in html
        assert 'role="alert"' not in html, html  # no resource it failed to read


def test_a_user_allowed_one_namespace_sees_only_that_namespace(
    kubectl: Callable[..., str],
    crds: object,
    namespace: str,
    second_namespace: str,
    cluster: localcluster.ClusterInfo,
    tmp_path: Path,
    wait_for: WaitFor,
) -> None:
    for where in (namespace, second_namespace):
        kubectl("-n", where, "apply", "-f", "-", stdin=yaml.safe_dump(JOB))
    # A ServiceAccount stands in for a person: `view` (which aggregates finetune-operator-view) in one namespace.
    install_user_roles(kubectl)
    kubectl("-n", namespace, "create", "serviceaccount", "alice")
    kubectl("-n", namespace, "create", "rolebinding", "alice-view", "--clusterrole=view",
            f"--serviceaccount={namespace}:alice")  # fmt: skip
    alice = f"system:serviceaccount:{namespace}:alice"
    wait_for(lambda: can(kubectl, alice, "list", "finetuningjobs", namespace), "view to aggregate finetuningjobs")
    assert not can(kubectl, alice, "list", "finetuningjobs", second_namespace)
    token = kubectl("-n", namespace, "create", "token", "alice", "--duration=1h").strip()
    kubeconfig = token_kubeconfig(cluster, token, namespace, tmp_path / "alice.kubeconfig")
    with DashboardProcess(kubeconfig, tmp_path / "dashboard.log") as dashboard:
        status, html, _ = dashboard.get("/")
        assert status == 200
        assert f'href="/jobs/{namespace}/seen"' in html
        assert second_namespace not in html
        assert "1 of 1 FineTuningJobs" in html
        assert dashboard.get(f"/jobs/{second_namespace}/seen")[0] == 404
        assert dashboard.get(f"/jobs/{namespace}/seen")[0] == 200
