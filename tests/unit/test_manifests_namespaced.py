"""The namespaced install (manifests/overlays/namespaced, components/namespaced, watched-namespace): the operator's
write access is granted per served namespace only, and what it holds cluster-wide is read-only.

tests/integration/test_namespaced_install.py proves the same on a real API server, with the operator running.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_manifests import MANIFESTS, NAMESPACE, OPERATOR_PERMISSIONS, find, pod_templates, render, rule_permissions

from support.podsecurity import restricted_violations

Obj = dict[str, Any]

SERVED = ["team-a", "team-b"]
OPERATOR = {"kind": "ServiceAccount", "name": "finetune-operator", "namespace": NAMESPACE}
# All the namespaced operator holds outside its namespaces: Kopf's reads of namespaces and CRDs.
CLUSTER_READ_PERMISSIONS: dict[tuple[str, str], set[str]] = {
    ("", "namespaces"): {"list", "watch"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
}
# The operator's ClusterRole rules a RoleBinding cannot grant (cluster-scoped kinds): inert in a served namespace.
CLUSTER_SCOPED = {
    ("", "namespaces"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("kopf.dev", "clusterkopfpeerings"),
}


@pytest.fixture(scope="module")
def objects() -> list[Obj]:
    return render(MANIFESTS / "overlays" / "namespaced")


def operator_env(objects: list[Obj]) -> dict[str, str]:
    (container,) = find(objects, "Deployment", "finetune-operator")["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_nothing_binds_the_operator_cluster_wide_but_the_read_only_role(objects: list[Obj]) -> None:
    bindings = [o for o in objects if o["kind"] == "ClusterRoleBinding" and OPERATOR in o.get("subjects", [])]
    assert [b["roleRef"]["name"] for b in bindings] == ["finetune-operator-cluster-read"]
    role = find(objects, "ClusterRole", "finetune-operator-cluster-read")
    assert rule_permissions(role["rules"]) == CLUSTER_READ_PERMISSIONS
    assert not [o for o in objects if o["kind"] == "ClusterKopfPeering"], "peering is per served namespace"


def test_each_served_namespace_gets_the_operators_rules_and_a_peering(objects: list[Obj]) -> None:
    env = operator_env(objects)
    assert env["FTO_NAMESPACES"].split(",") == SERVED
    bindings = [o for o in objects if o["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == SERVED
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "finetune-operator",
        }
        assert binding["subjects"] == [OPERATOR]  # kustomize's `namespace:` leaves the subject where it is
    peerings = [o for o in objects if o["kind"] == "KopfPeering"]
    assert sorted(p["metadata"]["namespace"] for p in peerings) == SERVED
    assert {p["metadata"]["name"] for p in peerings} == {env["FTO_PEERING"]}
    # The served namespaces are the user's: the install neither creates nor (on uninstall) deletes them.
    assert {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"} == {NAMESPACE}


def test_the_rules_granted_per_namespace_are_the_cluster_wide_installs(objects: list[Obj]) -> None:
    granted = rule_permissions(find(objects, "ClusterRole", "finetune-operator")["rules"])
    assert granted == OPERATOR_PERMISSIONS
    namespaced = {key: verbs for key, verbs in granted.items() if key not in CLUSTER_SCOPED}
    # What the served namespaces need from the cluster-scoped rules, the read-only role gives (Kopf's peering
    # is a namespaced KopfPeering in this mode).
    assert set(granted) - set(namespaced) - set(CLUSTER_READ_PERMISSIONS) == {("kopf.dev", "clusterkopfpeerings")}


def test_otherwise_it_is_the_production_install(objects: list[Obj]) -> None:
    production = render(MANIFESTS / "overlays" / "production")
    deployment = find(objects, "Deployment", "finetune-operator")
    assert deployment["spec"]["replicas"] == 2
    env = operator_env(objects)
    assert env["FTO_PEERING_MANDATORY"] == "true"
    assert {k: v for k, v in env.items() if k != "FTO_NAMESPACES"} == {
        k: v for k, v in operator_env(production).items() if k != "FTO_NAMESPACES"
    }
    find(objects, "PodDisruptionBudget", "finetune-operator")
    find(objects, "ValidatingAdmissionPolicy", "finetune-operator-limits")
    find(objects, "ValidatingAdmissionPolicy", "finetune-trainer-status")
    for where, pod in pod_templates(objects):
        assert restricted_violations(pod) == [], where
