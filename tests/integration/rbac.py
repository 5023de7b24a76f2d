"""The operator's production identity for integration tests.

`operator_kubeconfig` installs the operator's ServiceAccount, ClusterRole and ClusterRoleBinding exactly as
manifests/base renders them, and the install's admission policies, and returns a kubeconfig that authenticates
as that ServiceAccount (a TokenRequest token). An operator started with it has its production permissions and
nothing more, so a missing RBAC rule fails the integration tests instead of the first real install.

    kubeconfig = operator_kubeconfig(cluster, kubectl, tmp_path / "operator.kubeconfig")
    subprocess.Popen([sys.executable, "-m", "finetune_operator"], env={..., "KUBECONFIG": str(kubeconfig)})
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml

import localcluster
import strictyaml
from support.fixtures import Kubectl

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "manifests" / "base"
NAMESPACE = "finetune-system"
SERVICE_ACCOUNT = "finetune-operator"
CLUSTER_ROLE = "finetune-operator"
# Kinds (and names) that make up the identity; the rest of the base (CRDs, Deployment, ...) is not applied.
IDENTITY = {
    ("Namespace", NAMESPACE),
    ("ServiceAccount", SERVICE_ACCOUNT),
    ("ClusterRole", CLUSTER_ROLE),
    ("ClusterRoleBinding", CLUSTER_ROLE),
}


class Cluster(Protocol):
    """What this module needs from conftest's ClusterInfo."""

    @property
    def server(self) -> str: ...

    @property
    def ca_cert(self) -> Path: ...


def identity_objects(kubectl: Kubectl) -> list[dict[str, Any]]:
    """The Namespace, ServiceAccount, ClusterRole and ClusterRoleBinding of the operator from manifests/base."""
    rendered = strictyaml.load_all(kubectl("kustomize", str(BASE)))
    objects = [o for o in rendered if o and (o["kind"], o["metadata"]["name"]) in IDENTITY]
    assert len(objects) == len(IDENTITY), f"manifests/base lacks part of {sorted(IDENTITY)}"
    return objects


def _wait_until_namespace_is_not_terminating(kubectl: Kubectl, timeout: float = 120.0) -> None:
    # An uninstall (tests/integration/test_install.py) may have left the namespace terminating; objects
    # cannot be created in it until the namespace controller has finished.
    deadline = time.monotonic() + timeout
    while kubectl("get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "jsonpath={.status.phase}").strip() == (
        "Terminating"
    ):
        if time.monotonic() > deadline:
            raise AssertionError(f"namespace {NAMESPACE} still terminating after {timeout:.0f} s")
        time.sleep(0.5)


def username(account: str = SERVICE_ACCOUNT) -> str:
    return f"system:serviceaccount:{NAMESPACE}:{account}"


def replica_identity(account: str) -> list[dict[str, Any]]:
    """A ServiceAccount of its own with the operator's ClusterRole: writes in the audit log name the replica."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": account, "labels": {"finetune.dev/test": "replica-identity"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CLUSTER_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}],
    }
    account_object = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": account, "namespace": NAMESPACE},
    }
    return [account_object, binding]


def operator_kubeconfig(
    cluster: Cluster, kubectl: Kubectl, path: Path, duration: str = "4h", account: str = SERVICE_ACCOUNT
) -> Path:
    """Installs the operator's identity from manifests/base and writes a kubeconfig that uses it to `path`.

    Idempotent (server-side apply), so every caller may call it. The token expires after `duration`. Another
    `account` gets the same ClusterRole under a ServiceAccount of that name (one identity per replica).
    """
    _wait_until_namespace_is_not_terminating(kubectl)
    objects = identity_objects(kubectl) + ([] if account == SERVICE_ACCOUNT else replica_identity(account))
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump_all(objects))
    # The install's admission policies bound the identity too (manifests/base/admission): tests run under them.
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(BASE / "admission"))
    token = kubectl("create", "token", account, "-n", NAMESPACE, f"--duration={duration}").strip()
    assert token, "the TokenRequest returned no token"
    return token_kubeconfig(cluster, token, path, user=username(account), namespace=NAMESPACE)


def token_kubeconfig(cluster: Cluster, token: str, path: Path, user: str, namespace: str = "default") -> Path:
    """Writes a kubeconfig to `path` that authenticates to the cluster with a ServiceAccount `token`."""
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": cluster.server, "certificate-authority": str(cluster.ca_cert)}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "identity", "context": {"cluster": "local", "user": user, "namespace": namespace}}],
        "current-context": "identity",
    }
    path.write_text(yaml.safe_dump(kubeconfig))
    path.chmod(0o600)
    return path


def kubectl_as(kubeconfig: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """kubectl as the identity of `kubeconfig`: its result, refused or not (the tests read the refusal)."""
    return localcluster.run_kubectl(kubeconfig, *args, stdin=stdin)


# ------------------------------------------------------------------------------ the namespaced install's identity

MANIFESTS = REPO / "manifests"
# Kinds of the namespaced install that make up the identity (and the peering of each served namespace).
NAMESPACED_IDENTITY_KINDS = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "RoleBinding"}


def namespaced_overlay(directory: Path, served: Sequence[str], base: Path = BASE) -> Path:
    """An overlay of `base` in the namespaced install mode serving `served`, written as docs/install.md shows it."""
    directory.mkdir(parents=True)
    for namespace in served:
        (directory / namespace).mkdir()
        watched = os.path.relpath(MANIFESTS / "watched-namespace", directory / namespace)
        (directory / namespace / "kustomization.yaml").write_text(
            yaml.safe_dump({"namespace": namespace, "resources": [watched]})
        )
    # kustomize accepts only relative paths to other kustomizations.
    overlay = {
        "resources": [os.path.relpath(base, directory), *served],
        "components": [os.path.relpath(MANIFESTS / "components" / "namespaced", directory)],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    return directory


def namespaced_operator_kubeconfig(
    cluster: Cluster, kubectl: Kubectl, directory: Path, served: Sequence[str], account: str
) -> Path:
    """The identity of the namespaced install serving `served`, under the ServiceAccount `account` of the operator's
    namespace (not the install's own, whose ClusterRoleBinding the session's other operators hold), its namespaces'
    KopfPeerings, and a kubeconfig that uses it (written to `directory`/kubeconfig). Undo with `remove_identity`."""
    _wait_until_namespace_is_not_terminating(kubectl)
    rendered = strictyaml.load_all(kubectl("kustomize", str(namespaced_overlay(directory / "overlay", served))))
    objects = [o for o in rendered if o and o["kind"] in NAMESPACED_IDENTITY_KINDS | {"KopfPeering"}]
    roles = {CLUSTER_ROLE, f"{CLUSTER_ROLE}-cluster-read"}  # not the user roles of the base
    objects = [o for o in objects if o["kind"] != "ClusterRole" or o["metadata"]["name"] in roles]
    for obj in objects:
        if obj["kind"] == "ServiceAccount":
            obj["metadata"]["name"] = account
        if obj["kind"] == "ClusterRoleBinding":
            assert obj["roleRef"]["name"] != CLUSTER_ROLE, (
                "the namespaced install binds the operator's rules cluster-wide"
            )
            obj["metadata"]["name"] = account
        for subject in obj.get("subjects", []):
            subject["name"] = account
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(MANIFESTS / "crds"))  # KopfPeering's CRD
    localcluster.wait_established(cluster.kubeconfig, ["kopfpeerings.kopf.dev"])
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump_all(objects))
    token = kubectl("create", "token", account, "-n", NAMESPACE, "--duration=2h").strip()
    return token_kubeconfig(cluster, token, directory / "kubeconfig", user=username(account), namespace=NAMESPACE)


def remove_identity(kubectl: Kubectl, account: str) -> None:
    """Deletes what `namespaced_operator_kubeconfig` made outside the served namespaces."""
    kubectl("delete", "clusterrolebinding", account, "--ignore-not-found")
    kubectl("delete", "serviceaccount", account, "-n", NAMESPACE, "--ignore-not-found")
