"""manifests/dashboard: renders, runs under the restricted Pod Security Standard, and only reads (no Secrets)."""

from __future__ import annotations

from test_manifests import MANIFESTS, find, pod_templates, render, restricted_violations, rule_permissions

DASHBOARD_PERMISSIONS = {
    ("finetune.dev", "finetuningjobs"): {"get", "list", "watch"},
    ("finetune.dev", "modelversions"): {"get", "list", "watch"},
    ("finetune.dev", "registeredmodels"): {"get", "list", "watch"},
    ("", "events"): {"get", "list", "watch"},
    ("", "pods"): {"get", "list", "watch"},
    ("", "pods/log"): {"get"},
    ("", "configmaps"): {"get", "list", "watch"},
}


def test_dashboard_role_is_read_only_and_never_secrets() -> None:
    objects = render(MANIFESTS / "dashboard")
    role = find(objects, "ClusterRole", "finetune-dashboard")
    granted = rule_permissions(role["rules"])
    assert granted == DASHBOARD_PERMISSIONS
    assert all(verbs <= {"get", "list", "watch"} for verbs in granted.values())
    assert not any(resource.startswith("secrets") or resource == "*" for _, resource in granted)
    binding = find(objects, "ClusterRoleBinding", "finetune-dashboard")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "finetune-dashboard", "namespace": "finetune-system"}
    ]


def test_dashboard_deployment_is_restricted_and_runs_the_dashboard() -> None:
    objects = render(MANIFESTS / "dashboard")
    templates = dict(pod_templates(objects))
    pod = templates["Deployment/finetune-dashboard"]
    assert restricted_violations(pod) == []
    assert pod["serviceAccountName"] == "finetune-dashboard"
    assert pod["containers"][0]["command"][:3] == ["python", "-m", "finetune_dashboard"]
    assert find(objects, "Service", "finetune-dashboard")["spec"]["selector"] == pod_templates_labels(objects)


def pod_templates_labels(objects: list[dict[str, object]]) -> object:
    deployment = find(objects, "Deployment", "finetune-dashboard")
    return deployment["spec"]["selector"]["matchLabels"]  # type: ignore[index]
