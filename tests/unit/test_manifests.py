"""The install manifests: they render, run under the restricted Pod Security Standard, grant the operator
exactly the permissions docs/install.md lists, and the samples are valid FineTuningJobs.

Rendering uses the real `kubectl kustomize` (the one users run), so load restrictions and patch semantics are
kustomize's own. Schema checks use the generated CRD's openAPIV3Schema (what the API server enforces) and the
pydantic models (which also carry the CEL rules).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import localcluster
import strictyaml
from finetune_operator.api import FineTuningJob, memoryplan, modelshape
from support.podsecurity import restricted_violations

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
KUSTOMIZATIONS = ["base", "overlays/dev", "overlays/production"]
SAMPLES = sorted((MANIFESTS / "samples").glob("*.yaml"))
NAMESPACE = "finetune-system"

Obj = dict[str, Any]

# The operator's ClusterRole, rule by rule: (apiGroup, resource) -> verbs. docs/install.md explains each.
OPERATOR_PERMISSIONS: dict[tuple[str, str], set[str]] = {
    ("finetune.dev", "finetuningjobs"): {"get", "list", "watch", "delete"},  # no patch: Kopf writes no annotation
    ("finetune.dev", "finetuningjobs/status"): {"get", "patch"},
    ("finetune.dev", "modelversions"): {"list", "watch", "create", "patch"},
    ("finetune.dev", "registeredmodels"): {"get", "list", "watch", "create", "patch"},
    ("finetune.dev", "registeredmodels/status"): {"patch"},
    ("", "persistentvolumeclaims"): {"get", "list", "watch", "create"},
    ("", "configmaps"): {"get", "create", "patch"},  # no list/watch: it reads only named ConfigMaps
    ("", "serviceaccounts"): {"get", "create"},
    ("", "services"): {"get", "create"},
    ("", "pods"): {"list", "watch"},  # the watch index and the sweep's list; never one pod by name
    ("", "events"): {"create", "list"},  # core/v1 only, never patched
    ("rbac.authorization.k8s.io", "roles"): {"get", "create"},
    ("rbac.authorization.k8s.io", "rolebindings"): {"get", "create"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "delete"},
    ("kopf.dev", "kopfpeerings"): {"get", "list", "watch", "patch"},
    ("kopf.dev", "clusterkopfpeerings"): {"get", "list", "watch", "patch"},
    ("", "namespaces"): {"list", "watch"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    ("kueue.x-k8s.io", "workloads"): {"list", "watch"},
}

# The Role the operator creates for each job's training pods (docs/runtime-contract.md).
TRAINER_PERMISSIONS: dict[tuple[str, str], set[str]] = {
    ("finetune.dev", "finetuningjobs/status"): {"get", "patch"},
    ("", "configmaps"): {"get", "patch"},  # its own <job>-metrics (patch) and the namespace's pacing (get)
}


def render(directory: Path) -> list[Obj]:
    """`kubectl kustomize <directory>` as a list of objects."""
    command = [localcluster.kubectl_binary(), "kustomize", str(directory)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in strictyaml.load_all(result.stdout) if doc]


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def pod_templates(objects: list[Obj]) -> Iterator[tuple[str, Obj]]:
    for obj in objects:
        if obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}:
            yield f"{obj['kind']}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            yield f"Pod/{obj['metadata']['name']}", obj["spec"]


def rule_permissions(rules: list[Obj]) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert "nonResourceURLs" not in rule
        assert "resourceNames" not in rule, "the operator's rules are not meant to be per-object"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    return {name: render(MANIFESTS / name) for name in KUSTOMIZATIONS}


def crd_schema(filename: str) -> Obj:
    crd = strictyaml.load((ROOT / "crds" / filename).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    return strict(version["schema"]["openAPIV3Schema"])


def strict(schema: Obj) -> Obj:
    """The schema with unknown fields rejected, as `kubectl apply` (strict field validation) does.

    A structural schema only lists properties; the API server prunes or, with strict validation, rejects the
    rest. jsonschema would accept them silently, so a typo in a sample would pass.
    """
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: strict(v) for k, v in out["properties"].items()}
        if not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = strict(out["items"])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = strict(out["additionalProperties"])
    return out


def test_every_kustomization_renders(rendered: dict[str, list[Obj]]) -> None:
    for name, objects in rendered.items():
        kinds = {o["kind"] for o in objects}
        assert {"Namespace", "CustomResourceDefinition", "Deployment", "ClusterRole", "Service"} <= kinds, name
        crds = {o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition"}
        assert crds == {
            "finetuningjobs.finetune.dev",
            "modelversions.finetune.dev",
            "registeredmodels.finetune.dev",
            "kopfpeerings.kopf.dev",
            "clusterkopfpeerings.kopf.dev",
        }, name
        find(objects, "ClusterKopfPeering", "finetune-operator")


def test_namespaced_objects_live_in_the_operator_namespace(rendered: dict[str, list[Obj]]) -> None:
    cluster_scoped = {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterKopfPeering",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    for objects in rendered.values():
        for obj in objects:
            if obj["kind"] not in cluster_scoped:
                assert obj["metadata"].get("namespace") == NAMESPACE, obj["metadata"]["name"]


def test_namespace_enforces_restricted_pod_security(rendered: dict[str, list[Obj]]) -> None:
    labels = find(rendered["base"], "Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_pod_templates_meet_restricted_pod_security(rendered: dict[str, list[Obj]], name: str) -> None:
    templates = list(pod_templates(rendered[name]))
    assert templates
    for where, pod in templates:
        assert restricted_violations(pod) == [], where


def test_operator_deployment(rendered: dict[str, list[Obj]]) -> None:
    deployment = find(rendered["base"], "Deployment", "finetune-operator")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "finetune-operator"
    (container,) = pod["containers"]
    assert container["securityContext"]["runAsUser"] == 1000 or pod["securityContext"]["runAsUser"] == 1000
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 9090, "health": 8080}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["FTO_METRICS_PORT"] == "9090"
    assert env["FTO_HEALTH_PORT"] == "8080"
    assert env["FTO_PEERING"] == find(rendered["base"], "ClusterKopfPeering", "finetune-operator")["metadata"]["name"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    service = find(rendered["base"], "Service", "finetune-operator-metrics")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics"}]


def test_dev_overlay(rendered: dict[str, list[Obj]]) -> None:
    deployment = find(rendered["overlays/dev"], "Deployment", "finetune-operator")
    assert deployment["spec"]["replicas"] == 1
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["FTO_LOG_LEVEL"] == "DEBUG"


def test_production_overlay(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["overlays/production"]
    deployment = find(objects, "Deployment", "finetune-operator")
    assert deployment["spec"]["replicas"] == 2
    # Two replicas are never both active: each starts paused until peering elected it.
    (operator,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in operator["env"]}
    assert env["FTO_PEERING_MANDATORY"] == "true" and env["FTO_PEERING"] == "finetune-operator"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (term,) = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()
    pdb = find(objects, "PodDisruptionBudget", "finetune-operator")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert not [o for o in objects if o["kind"] == "ServiceMonitor"], "the ServiceMonitor must stay optional"


def test_servicemonitor_component_selects_the_metrics_service(tmp_path: Path) -> None:
    # kustomize refuses absolute paths to other kustomizations, so the overlay points back relatively.
    overlay = tmp_path / "monitoring"
    overlay.mkdir()
    production = os.path.relpath(MANIFESTS / "overlays/production", overlay)
    component = os.path.relpath(MANIFESTS / "components/servicemonitor", overlay)
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({"resources": [production], "components": [component]}))
    objects = render(overlay)
    monitor = find(objects, "ServiceMonitor", "finetune-operator")
    service = find(objects, "Service", "finetune-operator-metrics")
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [p["name"] for p in service["spec"]["ports"]]


def test_operator_cluster_role_is_exactly_least_privilege(rendered: dict[str, list[Obj]]) -> None:
    role = find(rendered["base"], "ClusterRole", "finetune-operator")
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
    assert rule_permissions(role["rules"]) == OPERATOR_PERMISSIONS


def test_operator_can_grant_the_trainer_role(rendered: dict[str, list[Obj]]) -> None:
    # RBAC escalation prevention: a Role can only be created by someone who holds its permissions.
    granted = rule_permissions(find(rendered["base"], "ClusterRole", "finetune-operator")["rules"])
    for key, verbs in TRAINER_PERMISSIONS.items():
        assert verbs <= granted.get(key, set()), key


def test_operator_binding(rendered: dict[str, list[Obj]]) -> None:
    binding = find(rendered["base"], "ClusterRoleBinding", "finetune-operator")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "finetune-operator",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "finetune-operator", "namespace": NAMESPACE}]


def test_user_roles_aggregate_into_builtin_roles(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["base"]
    edit = find(objects, "ClusterRole", "finetune-operator-edit")
    view = find(objects, "ClusterRole", "finetune-operator-view")
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert rule_permissions(edit["rules"]) == {
        ("finetune.dev", "finetuningjobs"): {
            "get",
            "list",
            "watch",
            "create",
            "update",
            "patch",
            "delete",
            "deletecollection",
        },
        ("finetune.dev", "modelversions"): {"get", "list", "watch"},
        ("finetune.dev", "registeredmodels"): {"get", "list", "watch", "create", "update", "patch"},
    }
    assert rule_permissions(view["rules"]) == {
        ("finetune.dev", "finetuningjobs"): {"get", "list", "watch"},
        ("finetune.dev", "modelversions"): {"get", "list", "watch"},
        ("finetune.dev", "registeredmodels"): {"get", "list", "watch"},
    }


def test_crds_install_on_their_own_and_are_labelled(rendered: dict[str, list[Obj]]) -> None:
    # docs/install.md applies manifests/crds first and waits for CRDs by label; uninstall keeps them by label.
    crds = render(MANIFESTS / "crds")
    assert {o["kind"] for o in crds} == {"CustomResourceDefinition"}
    in_base = [o for o in rendered["base"] if o["kind"] == "CustomResourceDefinition"]
    assert sorted(o["metadata"]["name"] for o in crds) == sorted(o["metadata"]["name"] for o in in_base)
    for obj in rendered["base"] + crds:
        labels = obj["metadata"].get("labels", {})
        is_crd = obj["kind"] == "CustomResourceDefinition"
        assert (labels.get("app.kubernetes.io/component") == "crd") == is_crd, obj["metadata"]["name"]
        assert labels.get("app.kubernetes.io/part-of") == "finetune-operator", obj["metadata"]["name"]


def test_samples_exist() -> None:
    assert {p.name for p in SAMPLES} >= {"quickstart.yaml", "lora-1gpu.yaml", "full-8gpu.yaml", "kueue.yaml"}


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_sample_is_valid(sample: Path) -> None:
    text = sample.read_text()
    assert text.startswith("#"), "each sample starts with a header comment that explains it"
    documents = [d for d in strictyaml.load_all(text) if d]
    assert [d["kind"] for d in documents] == ["FineTuningJob"]
    (job,) = documents
    assert "namespace" not in job["metadata"], "samples go into the namespace the user picks"
    jsonschema.Draft4Validator(crd_schema("finetune.dev_finetuningjobs.yaml")).validate(job)
    # The models also carry the CEL rules (exactly one source, one base model, ...).
    FineTuningJob.model_validate(job)


def test_crd_schema_check_rejects_a_typo() -> None:
    job = strictyaml.load((MANIFESTS / "samples" / "quickstart.yaml").read_text())
    job["spec"]["training"]["epoch"] = 2
    with pytest.raises(jsonschema.ValidationError, match="epoch"):
        jsonschema.Draft4Validator(crd_schema("finetune.dev_finetuningjobs.yaml")).validate(job)


def test_quickstart_runs_on_the_local_runner_from_the_demo_configmap() -> None:
    job = FineTuningJob.model_validate(strictyaml.load((MANIFESTS / "samples" / "quickstart.yaml").read_text()))
    assert job.spec.resources.gpus == 0
    assert job.spec.base_model.builtin is not None
    assert job.spec.resources.node_selector == {"finetune.dev/local-runner": "true"}
    # The node agent's node is tainted so that nothing else lands there (tests/nodeagent/node.py).
    tolerations = [t.model_dump(by_alias=True, exclude_none=True) for t in job.spec.resources.tolerations or []]
    assert tolerations == [
        {"key": "finetune.dev/local-runner", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    ]
    source = job.spec.dataset.source.config_map
    assert source is not None
    assert (source.name, source.key) == ("quickstart-sessions", "sessions.jsonl")


def test_the_real_cluster_quickstart_is_the_local_one_without_the_local_runner_placement() -> None:
    local = strictyaml.load((MANIFESTS / "samples" / "quickstart.yaml").read_text())
    cluster = strictyaml.load((MANIFESTS / "samples" / "quickstart-cluster.yaml").read_text())
    del local["spec"]["resources"]["nodeSelector"], local["spec"]["resources"]["tolerations"]
    assert cluster == local


def test_crds_folder_serves_both_kubectl_apply_f_and_kustomize() -> None:
    # `kubectl apply -f crds/` reads every .yaml file there, so each must be a CRD; the Kustomization (no
    # extension, hence not read by -f) must list every one of them, or the install would miss a new CRD.
    files = sorted(p.name for p in (ROOT / "crds").glob("*.y*ml"))
    for name in files:
        assert strictyaml.load((ROOT / "crds" / name).read_text())["kind"] == "CustomResourceDefinition", name
    assert sorted(strictyaml.load((ROOT / "crds" / "Kustomization").read_text())["resources"]) == files


@pytest.mark.parametrize(
    "example",
    [
        "kueue/gpu-queues.yaml",
        "gitops/flux-kustomizations.yaml",
        "gitops/argocd-application.yaml",
        "overlays/namespaced/kustomization.yaml",
        "overlays/namespaced/team-a/kustomization.yaml",
    ],
)
def test_install_md_shows_each_example_as_it_is_in_manifests(example: str) -> None:
    # The files are what the integration tests apply (or dry-run); the docs must show exactly them.
    lines = (MANIFESTS / example).read_text().splitlines()
    body = "\n".join(line for line in lines if not line.startswith("#"))
    assert f"```yaml\n{body}\n```" in (ROOT / "docs" / "install.md").read_text(), example


# The config.json fields the memory plan reads, for the base models the GPU samples name (the published configs).
SAMPLE_MODELS: dict[str, dict[str, Any]] = {
    "llama-3.1-8b": modelshape.LLAMA_3_1_8B,
    "llama-3.1-70b": modelshape.LLAMA_3_1_70B,
}
GPU_SAMPLES = [path for path in SAMPLES if "gpus: 0" not in path.read_text()]
H100_BYTES = 81_559 * 1024**2


@pytest.mark.parametrize("sample", GPU_SAMPLES, ids=lambda p: p.name)
def test_gpu_sample_fits_an_80_gb_gpu_by_the_memory_plan(sample: Path) -> None:
    """What the trainer would run on the sample's GPUs (its own config resolution) passes its own memory check."""
    from finetune_trainer.train import memory
    from finetune_trainer.train.config import Device, resolve

    spec = FineTuningJob.model_validate(strictyaml.load(sample.read_text())).spec
    gpus = spec.resources.gpus
    config = resolve(
        spec,
        base_model_path=Path("/models"),
        dataset_sha256="0" * 64,
        device=Device(cuda_devices=gpus, bf16_supported=True, world_size=gpus * spec.resources.nodes),
    )
    shape = modelshape.shape_from_config(SAMPLE_MODELS[spec.base_model.name])
    assert memoryplan.refusal(shape, memory.training_plan(config), H100_BYTES) is None
