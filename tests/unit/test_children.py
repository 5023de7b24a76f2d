"""The pure child builders (finetune_operator.children): names, ownership, labels, the two batch/v1 Jobs, the
trainer's identity, job.json, and the restricted Pod Security Standard on every pod.

Expected objects are written out by hand from docs/runtime-contract.md, never computed with the module under
test.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from finetune_operator import children, naming, publish
from finetune_operator.api import FineTuningJobSpec
from finetune_operator.api.contract import USER_ERROR_EXIT_CODES
from finetune_operator.api.jobconfig import Champion
from finetune_operator.api.termination import ProducedModel
from finetune_operator.backends import batchjob
from finetune_operator.config import Settings
from support.podsecurity import restricted_violations

Obj = dict[str, Any]

NAME = "demo"
NAMESPACE = "ml"
UID = "6f1c2a9e-1d3b-4c7a-9e0f-2b5d8c4a7e11"
SETTINGS = Settings(trainer_image="registry.local/trainer:9.9", python_command="python3", termination_grace_seconds=77)
OWNER = {
    "apiVersion": "finetune.dev/v1alpha1",
    "kind": "FineTuningJob",
    "name": NAME,
    "uid": UID,
    "controller": True,
}


def spec(**overrides: Any) -> FineTuningJobSpec:
    """A small valid spec (wire format); top-level keys in `overrides` replace the defaults."""
    wire: Obj = {
        "baseModel": {"name": "tiny", "builtin": "tiny-gpt"},
        "dataset": {"source": {"configMap": {"name": "sessions", "key": "sessions.jsonl"}}},
        "output": {"modelName": "support-bot"},
        "resources": {"gpus": 0},
    }
    wire.update(overrides)
    return FineTuningJobSpec.model_validate(wire)


def ref(s: FineTuningJobSpec | None = None, name: str = NAME) -> children.JobRef:
    return children.JobRef(name, NAMESPACE, UID, s if s is not None else spec())


def all_children(job: children.JobRef) -> list[Obj]:
    return [
        children.workspace_pvc(job),
        children.config_map(job),
        children.trainer_service_account(job),
        children.trainer_role(job),
        children.trainer_role_binding(job),
        children.curation_job(job, SETTINGS),
        batchjob.training_job(job, SETTINGS),
    ]


def pod_spec(job: Obj) -> Obj:
    return job["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def container(job: Obj) -> Obj:
    (only,) = pod_spec(job)["containers"]
    return only  # type: ignore[no-any-return]


def by_name(items: list[Obj]) -> dict[str, Obj]:
    return {item["name"]: item for item in items}


# ------------------------------------------------------------------------ restricted Pod Security Standard
# The checker is tests/support/podsecurity.py, shared with the manifests' tests.

SPECS_FOR_PODS: dict[str, FineTuningJobSpec] = {
    "cpu-configmap-builtin": spec(),
    "gpus-pvc-source-pvc-model": spec(
        baseModel={"name": "llama", "path": "/models/llama", "pvc": "models"},
        dataset={"source": {"pvc": {"claimName": "logs", "path": "sessions/*.jsonl"}}},
        resources={
            "gpus": 8,
            "cpu": 32,
            "memory": "256Gi",
            "nodeSelector": {"gpu": "h100"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "priorityClassName": "training",
        },
        queueName="team-a",
    ),
}


def workloads() -> Iterator[tuple[str, Obj]]:
    for label, s in SPECS_FOR_PODS.items():
        job = ref(s)
        yield f"{label}/curation", children.curation_job(job, SETTINGS)
        yield f"{label}/training", batchjob.training_job(job, SETTINGS)
        stored = ref(s.model_copy(update={"output": s.output.model_copy(update={"pvc": "store"})}))
        yield f"{label}/publish", publish.publish_job(stored, SETTINGS, "1.0.0", "model")


@pytest.mark.parametrize(("where", "workload"), list(workloads()), ids=[w for w, _ in workloads()])
def test_every_pod_meets_the_restricted_pod_security_standard(where: str, workload: Obj) -> None:
    pod = pod_spec(workload)
    assert restricted_violations(pod) == [], where
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsUser"] == 1000
    ctx = container(workload)["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["readOnlyRootFilesystem"] is True


WEAKENINGS: dict[str, Callable[[Obj], object]] = {
    "privileged": lambda p: p["containers"][0]["securityContext"].update(privileged=True),
    "escalation": lambda p: p["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
    "caps": lambda p: p["containers"][0]["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
    "no-drop": lambda p: p["containers"][0]["securityContext"]["capabilities"].update(drop=[]),
    "root": lambda p: p["securityContext"].update(runAsNonRoot=False),
    "no-non-root": lambda p: (
        p["securityContext"].pop("runAsNonRoot"),
        p["containers"][0]["securityContext"].pop("runAsNonRoot"),
    ),
    "uid0": lambda p: p["containers"][0]["securityContext"].update(runAsUser=0),
    "seccomp": lambda p: p["securityContext"].pop("seccompProfile"),
    "unconfined": lambda p: p["securityContext"].update(seccompProfile={"type": "Unconfined"}),
    "hostPath": lambda p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
    "hostNetwork": lambda p: p.update(hostNetwork=True),
    "hostPort": lambda p: p["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}]),
    "writable-root": lambda p: p["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
    "init-container": lambda p: p.update(initContainers=[{"name": "init", "image": "busybox"}]),
    "sysctl": lambda p: p["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
}


@pytest.mark.parametrize("weakening", sorted(WEAKENINGS))
def test_restricted_check_catches_each_weakening(weakening: str) -> None:
    pod = copy.deepcopy(pod_spec(batchjob.training_job(ref(), SETTINGS)))
    assert restricted_violations(pod) == []
    WEAKENINGS[weakening](pod)
    assert restricted_violations(pod) != []


# ------------------------------------------------------------------------------- names, owners, labels


def test_children_have_the_contract_names() -> None:
    kinds_and_names = [(obj["kind"], obj["metadata"]["name"]) for obj in all_children(ref())]
    assert kinds_and_names == [
        ("PersistentVolumeClaim", "demo-workspace"),
        ("ConfigMap", "demo-config"),
        ("ServiceAccount", "demo-trainer"),
        ("Role", "demo-trainer"),
        ("RoleBinding", "demo-trainer"),
        ("Job", "demo-curate"),
        ("Job", "demo-train"),
    ]
    for obj in all_children(ref()):
        assert obj["metadata"]["namespace"] == "ml"


def test_builders_are_deterministic() -> None:
    assert all_children(ref()) == all_children(ref())
    s = SPECS_FOR_PODS["gpus-pvc-source-pvc-model"]
    assert all_children(ref(s)) == all_children(ref(s))
    # job.json is serialised identically too (sorted keys), so the immutable ConfigMap never differs.
    assert children.config_map(ref(s))["data"] == children.config_map(ref(s))["data"]


def test_every_child_but_a_retained_workspace_is_owned_by_the_job() -> None:
    for obj in all_children(ref()):
        if obj["kind"] == "PersistentVolumeClaim":
            assert "ownerReferences" not in obj["metadata"]  # storage.retainPolicy defaults to Retain
        else:
            assert obj["metadata"]["ownerReferences"] == [OWNER], obj["kind"]


def test_workspace_with_retain_policy_retain_has_no_owner() -> None:
    pvc = children.workspace_pvc(ref(spec(storage={"retainPolicy": "Retain"})))
    assert "ownerReferences" not in pvc["metadata"]


def test_workspace_with_retain_policy_delete_is_owned() -> None:
    pvc = children.workspace_pvc(ref(spec(storage={"retainPolicy": "Delete"})))
    assert pvc["metadata"]["ownerReferences"] == [OWNER]


def test_workspace_pvc_spec() -> None:
    assert children.workspace_pvc(ref())["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "10Gi"}},
    }
    pvc = children.workspace_pvc(ref(spec(storage={"size": "200Gi", "storageClassName": "fast-ssd"})))
    assert pvc["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "200Gi"}},
        "storageClassName": "fast-ssd",
    }


EXPECTED_COMPONENTS = {
    "PersistentVolumeClaim": "workspace",
    "ConfigMap": "config",
    "ServiceAccount": "trainer-identity",
    "Role": "trainer-identity",
    "RoleBinding": "trainer-identity",
}


def test_common_labels_on_every_child_and_pod_template() -> None:
    for obj in all_children(ref()):
        name = obj["metadata"]["name"]
        component = EXPECTED_COMPONENTS.get(obj["kind"]) or ("curation" if name.endswith("curate") else "training")
        expected = {
            "app.kubernetes.io/name": "finetuningjob",
            "app.kubernetes.io/instance": "demo",
            "app.kubernetes.io/managed-by": "finetune-operator",
            "app.kubernetes.io/part-of": "finetune-operator",
            "app.kubernetes.io/component": component,
            "finetune.dev/job": "demo",
            "finetune.dev/job-uid": UID,
        }
        assert obj["metadata"]["labels"] == expected, name
        if obj["kind"] == "Job":
            assert obj["spec"]["template"]["metadata"]["labels"] == expected


def test_long_job_names_stay_within_kubernetes_limits_and_unique() -> None:
    long_a = "a" * 240 + "-first"
    long_b = "a" * 240 + "-second"
    objects_a = all_children(ref(name=long_a))
    objects_b = all_children(ref(name=long_b))
    for obj in objects_a + objects_b:
        meta = obj["metadata"]
        limit = 63 if obj["kind"] == "Job" else 253
        assert len(meta["name"]) <= limit, obj["kind"]
        for value in meta["labels"].values():
            assert len(value) <= 63
            assert value[0].isalnum() and value[-1].isalnum()
        if obj["kind"] == "Job":
            for value in obj["spec"]["template"]["metadata"]["labels"].values():
                assert len(value) <= 63
    names_a = {(o["kind"], o["metadata"]["name"]) for o in objects_a}
    names_b = {(o["kind"], o["metadata"]["name"]) for o in objects_b}
    assert not names_a & names_b
    assert (
        objects_a[0]["metadata"]["labels"]["finetune.dev/job"] != objects_b[0]["metadata"]["labels"]["finetune.dev/job"]
    )
    # The pods find their (bounded) identity, workspace and config by the same names.
    training = objects_a[-1]
    volumes = by_name(pod_spec(training)["volumes"])
    assert pod_spec(training)["serviceAccountName"] == objects_a[2]["metadata"]["name"]
    assert volumes["workspace"]["persistentVolumeClaim"]["claimName"] == objects_a[0]["metadata"]["name"]
    assert volumes["config"]["configMap"]["name"] == objects_a[1]["metadata"]["name"]
    binding = objects_a[4]
    assert binding["roleRef"]["name"] == objects_a[3]["metadata"]["name"]
    assert binding["subjects"][0]["name"] == objects_a[2]["metadata"]["name"]


# -------------------------------------------------------------------------------------- trainer identity


def test_role_grants_only_this_jobs_status_and_metrics_and_reading_the_pacing() -> None:
    role = children.trainer_role(ref())
    assert role["apiVersion"] == "rbac.authorization.k8s.io/v1"
    assert role["rules"] == [
        {
            "apiGroups": ["finetune.dev"],
            "resources": ["finetuningjobs/status"],
            "resourceNames": ["demo"],
            "verbs": ["get", "patch"],
        },
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["demo-metrics"], "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["finetune-report-pacing"], "verbs": ["get"]},
    ]


def test_metrics_config_map_is_owned_labelled_for_the_dashboard_and_empty() -> None:
    config_map = children.metrics_config_map(ref())
    meta = config_map["metadata"]
    assert meta["name"] == "demo-metrics" and config_map["data"] == {}
    assert meta["labels"]["app.kubernetes.io/component"] == "metrics"
    assert meta["labels"]["finetune.dev/job"] == "demo"
    assert meta["ownerReferences"][0]["uid"] == UID
    assert "immutable" not in config_map


def test_role_binding_binds_the_trainer_service_account() -> None:
    binding = children.trainer_role_binding(ref())
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "demo-trainer"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "demo-trainer", "namespace": "ml"}]
    sa = children.trainer_service_account(ref())
    assert sa["apiVersion"] == "v1"
    assert set(sa) == {"apiVersion", "kind", "metadata"}  # no secrets, no image pull secrets


def test_publish_job_mounts_the_store_and_copies_the_reported_folder_for_its_version() -> None:
    job = ref(spec(output={"modelName": "chat", "pvc": "store"}))
    workload = publish.publish_job(job, SETTINGS, "1.3.0-rc.1", "model")
    assert workload["metadata"]["name"] == "demo-publish"
    assert workload["metadata"]["labels"]["finetune.dev/version"] == "1.3.0-rc.1"
    assert workload["spec"]["activeDeadlineSeconds"] > 0
    pod = pod_spec(workload)
    volumes = by_name(pod["volumes"])
    assert volumes["model-store"]["persistentVolumeClaim"] == {"claimName": "store"}
    assert "source" not in volumes and "base-model" not in volumes
    assert pod["automountServiceAccountToken"] is False and "serviceAccountName" not in pod
    command = container(workload)["command"] + container(workload)["args"]
    assert command[-6:] == ["--source", "model", "--version", "1.3.0-rc.1", "--store", "/mnt/model-store"]
    assert "finetune_trainer.publish" in command


def test_publish_job_to_a_bucket_mounts_no_store_and_gets_only_the_outputs_credentials_by_reference() -> None:
    bucket = {"uri": "s3://trained/agents", "endpoint": "http://minio:9000", "secretRef": {"name": "writer"}}
    job = ref(spec(output={"modelName": "chat", "s3": bucket}))
    workload = publish.publish_job(job, SETTINGS, "1.3.0", "model")
    volumes = by_name(pod_spec(workload)["volumes"])
    assert "model-store" not in volumes and "source" not in volumes
    env = {entry["name"]: entry for entry in container(workload)["env"]}
    credentials = {name: entry for name, entry in env.items() if name.startswith("FINETUNE_S3_")}
    assert set(credentials) == {
        "FINETUNE_S3_OUTPUT_ACCESS_KEY_ID",
        "FINETUNE_S3_OUTPUT_SECRET_ACCESS_KEY",
        "FINETUNE_S3_OUTPUT_SESSION_TOKEN",
    }
    assert credentials["FINETUNE_S3_OUTPUT_ACCESS_KEY_ID"] == {
        "name": "FINETUNE_S3_OUTPUT_ACCESS_KEY_ID",
        "valueFrom": {"secretKeyRef": {"name": "writer", "key": "AWS_ACCESS_KEY_ID"}},
    }


def test_a_copy_in_a_bucket_is_the_model_versions_artifact_with_its_digest() -> None:
    digest = "sha256:" + "c" * 64
    model = ProducedModel(uri="s3://trained/agents/chat/1.3.0/", version="1.3.0", digest=digest, adapter=True)
    location = publish.artifact(model)
    assert location is not None
    assert location.to_wire() == {"uri": "s3://trained/agents/chat/1.3.0/", "adapter": True, "digest": digest}
    # No copy reported (no model store): the ModelVersion points at the workspace instead.
    assert publish.artifact(None) is None and publish.artifact(ProducedModel(path="model")) is None


def test_curation_and_training_run_as_the_jobs_own_identity_and_publishing_gets_no_token() -> None:
    curation = pod_spec(children.curation_job(ref(), SETTINGS))
    training = pod_spec(batchjob.training_job(ref(), SETTINGS))
    publishing = pod_spec(
        publish.publish_job(ref(spec(output={"modelName": "m", "pvc": "store"})), SETTINGS, "1.0.0", "model")
    )
    assert curation["serviceAccountName"] == training["serviceAccountName"] == "demo-trainer"
    assert curation.get("automountServiceAccountToken", True) is True  # it reports its progress
    assert training.get("automountServiceAccountToken", True) is True
    assert publishing["automountServiceAccountToken"] is False


# ---------------------------------------------------------------------------------------------- job.json


def config_of(job: children.JobRef) -> Obj:
    cm = children.config_map(job)
    assert set(cm["data"]) == {"job.json"}
    return json.loads(cm["data"]["job.json"])  # type: ignore[no-any-return]


def test_config_map_is_immutable_and_holds_job_json() -> None:
    cm = children.config_map(ref())
    assert cm["immutable"] is True
    assert cm["apiVersion"] == "v1"
    config = config_of(ref())
    assert config["apiVersion"] == "finetune.dev/v1alpha1"
    assert config["job"] == {"name": "demo", "namespace": "ml", "uid": UID}


def test_job_json_spec_has_every_default_applied() -> None:
    assert config_of(ref())["spec"] == {
        "baseModel": {"name": "tiny", "builtin": "tiny-gpt"},
        "dataset": {
            "source": {"configMap": {"name": "sessions", "key": "sessions.jsonl"}},
            "curation": {"minSuccessRate": 0.9, "dedup": True, "evalFraction": 0.05},
        },
        "training": {"method": "lora", "epochs": 3, "precision": "auto", "quantization": "none", "sharding": "auto"},
        "resources": {"gpus": 0, "nodes": 1, "gpuResourceName": "nvidia.com/gpu"},
        "evaluation": {},
        "output": {"modelName": "support-bot", "bump": "patch"},
        "storage": {"size": "10Gi", "accessMode": "ReadWriteOnce", "retainPolicy": "Retain"},
        "runPolicy": {"backoffLimit": 2},
        "cancel": False,
    }


def test_job_json_paths_for_a_configmap_source_and_builtin_model() -> None:
    assert config_of(ref())["paths"] == {
        "workspace": "/workspace",
        "sourceGlob": "/mnt/source/sessions.jsonl",
        "sourceStaging": None,
        "baseModel": None,
    }


def test_job_json_paths_for_a_pvc_source_and_pvc_base_model() -> None:
    s = spec(
        baseModel={"name": "llama-3-8b", "path": "/llama-3-8b", "pvc": "models"},
        dataset={"source": {"pvc": {"claimName": "logs", "path": "/sessions/*.jsonl"}}},
    )
    assert config_of(ref(s))["paths"] == {
        "workspace": "/workspace",
        "sourceGlob": "/mnt/source/sessions/*.jsonl",
        "sourceStaging": None,
        "baseModel": "/mnt/base-model/llama-3-8b",
    }


def test_job_json_base_model_path_inside_the_image() -> None:
    s = spec(baseModel={"name": "llama", "path": "/opt/models/llama"})
    assert config_of(ref(s))["paths"]["baseModel"] == "/opt/models/llama"


# -------------------------------------------------------------------------------------------- curation


def test_curation_job() -> None:
    job = children.curation_job(ref(), SETTINGS)
    assert job["apiVersion"] == "batch/v1"
    assert job["spec"]["backoffLimit"] == 1
    assert job["spec"]["activeDeadlineSeconds"] == 24 * 3600  # a stalled source never holds the job forever
    assert job["spec"]["podFailurePolicy"] == {
        "rules": [
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [10, 11, 12, 13]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        ]
    }
    assert "suspend" not in job["spec"]
    pod = pod_spec(job)
    assert pod["restartPolicy"] == "Never"
    c = container(job)
    assert c["name"] == "curate"
    assert c["image"] == "registry.local/trainer:9.9"
    assert c["command"] == ["python3", "-m", "finetune_trainer.curate"]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["resources"] == {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["FINETUNE_CONFIG"] == "/etc/finetune/job.json"
    assert env["FINETUNE_TERMINATION_LOG"] == "/dev/termination-log"


def test_curation_never_asks_for_gpus() -> None:
    job = children.curation_job(ref(SPECS_FOR_PODS["gpus-pvc-source-pvc-model"]), SETTINGS)
    resources = container(job)["resources"]
    assert all("gpu" not in key for part in resources.values() for key in part)
    # Kueue only gates the training Job; curation is never suspended.
    assert "suspend" not in job["spec"]
    assert batchjob.KUEUE_QUEUE_LABEL not in job["metadata"]["labels"]


def test_curation_mounts_a_configmap_source() -> None:
    job = children.curation_job(ref(), SETTINGS)
    volumes = by_name(pod_spec(job)["volumes"])
    assert volumes["source"] == {
        "name": "source",
        "configMap": {"name": "sessions", "items": [{"key": "sessions.jsonl", "path": "sessions.jsonl"}]},
    }
    assert volumes["workspace"]["persistentVolumeClaim"] == {"claimName": "demo-workspace"}
    assert volumes["config"]["configMap"] == {"name": "demo-config"}
    mounts = by_name(container(job)["volumeMounts"])
    assert mounts["source"] == {"name": "source", "mountPath": "/mnt/source", "readOnly": True}
    assert mounts["workspace"] == {"name": "workspace", "mountPath": "/workspace"}
    assert mounts["config"] == {"name": "config", "mountPath": "/etc/finetune", "readOnly": True}
    assert mounts["tmp"]["mountPath"] == "/tmp"  # a read-only root needs a writable /tmp
    # HF_HOME and the Triton/Inductor caches live there (trainer-image/Dockerfile): bounded.
    assert volumes["tmp"]["emptyDir"] == {"sizeLimit": "8Gi"}
    assert "base-model" not in volumes


def test_curation_mounts_a_pvc_source_read_only() -> None:
    s = spec(dataset={"source": {"pvc": {"claimName": "logs", "path": "sessions/*.jsonl"}}})
    volumes = by_name(pod_spec(children.curation_job(ref(s), SETTINGS))["volumes"])
    assert volumes["source"] == {"name": "source", "persistentVolumeClaim": {"claimName": "logs", "readOnly": True}}


def test_trainer_image_override_applies_to_both_jobs() -> None:
    job = ref(spec(trainerImage="my.registry/trainer@sha256:" + "a" * 64))
    for workload in (children.curation_job(job, SETTINGS), batchjob.training_job(job, SETTINGS)):
        assert container(workload)["image"] == "my.registry/trainer@sha256:" + "a" * 64


# -------------------------------------------------------------------------------------------- training


def test_training_job_defaults() -> None:
    job = batchjob.training_job(ref(), SETTINGS)
    assert job["apiVersion"] == "batch/v1"
    assert job["kind"] == "Job"
    job_spec = job["spec"]
    assert job_spec["backoffLimit"] == 2
    assert "activeDeadlineSeconds" not in job_spec
    assert "suspend" not in job_spec
    assert batchjob.KUEUE_QUEUE_LABEL not in job["metadata"]["labels"]
    pod = pod_spec(job)
    assert pod["restartPolicy"] == "Never"
    assert pod["terminationGracePeriodSeconds"] == 77
    for absent in ("nodeSelector", "tolerations", "priorityClassName"):
        assert absent not in pod
    c = container(job)
    assert c["name"] == "train"
    assert c["image"] == "registry.local/trainer:9.9"
    assert c["command"] == ["python3", "-m", "finetune_trainer.train"]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["resources"] == {"requests": BUILTIN_REQUESTS}  # gpus 0, no cpu or memory set

    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["FINETUNE_CONFIG"] == "/etc/finetune/job.json"
    assert env["FINETUNE_TERMINATION_LOG"] == c["terminationMessagePath"]
    # The source is curation's input only; the builtin model needs no volume.
    assert set(by_name(pod["volumes"])) == {"workspace", "config", "tmp"}


def test_fail_job_exit_codes_are_exactly_the_trainer_images_user_errors() -> None:
    """The podFailurePolicy fails at once on exactly the exit codes of the contract's user errors."""
    from finetune_operator.api.contract import ExitCode, FailureKind, Reason, exit_code_for, failure_kind_for

    user_codes = {int(exit_code_for(reason)) for reason in Reason if failure_kind_for(reason) is FailureKind.USER}
    assert user_codes == {int(code) for code in ExitCode if 10 <= code < 20}
    assert sorted(user_codes) == list(USER_ERROR_EXIT_CODES)


def test_training_pod_failure_policy() -> None:
    job = batchjob.training_job(ref(), SETTINGS)
    assert job["spec"]["podFailurePolicy"] == {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": "train", "operator": "In", "values": [10, 11, 12, 13]},
            },
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        ]
    }


def test_default_settings_image_and_grace_period() -> None:
    job = batchjob.training_job(ref(), Settings())
    assert container(job)["image"] == "ghcr.io/finetune-operator/trainer:0.1.0"
    assert container(job)["command"][0] == "python"
    assert pod_spec(job)["terminationGracePeriodSeconds"] == 120


BUILTIN_REQUESTS = {"cpu": "500m", "memory": "1Gi"}


@pytest.mark.parametrize(
    ("name", "path", "gpus", "requests"),
    [
        # 4 GiB and 2 cores per rank, 2 cores for the pod, one bf16 copy of the weights (2 bytes/parameter).
        ("llama-3.1-8b", "models/llama", 1, {"cpu": "4", "memory": "20Gi"}),
        ("llama-3.1-8b", "models/llama", 8, {"cpu": "18", "memory": "48Gi"}),
        ("support", "Qwen2.5-0.5B-Instruct", 1, {"cpu": "4", "memory": "5Gi"}),
        ("support", "models/support", 2, {"cpu": "6", "memory": "24Gi"}),  # no size stated: sized as 8B
    ],
)
def test_training_pods_request_host_resources_by_model_size(name: str, path: str, gpus: int, requests: Obj) -> None:
    """Without requests a training pod is BestEffort: the first evicted under node memory pressure."""
    s = spec(baseModel={"name": name, "path": path}, resources={"gpus": gpus})
    assert container(batchjob.training_job(ref(s), SETTINGS))["resources"]["requests"] == requests


def test_training_pods_know_the_gpu_count_and_grace_period() -> None:
    job = batchjob.training_job(ref(spec(resources={"gpus": 4})), SETTINGS)
    env = {e["name"]: e["value"] for e in container(job)["env"]}
    assert env["FINETUNE_EXPECTED_GPUS"] == "4" and env["FINETUNE_GRACE_SECONDS"] == "77"


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ({"gpus": 0}, {"requests": BUILTIN_REQUESTS}),
        ({"gpus": 1}, {"limits": {"nvidia.com/gpu": "1"}, "requests": BUILTIN_REQUESTS}),
        (
            {"gpus": 4, "gpuResourceName": "amd.com/gpu"},
            {"limits": {"amd.com/gpu": "4"}, "requests": BUILTIN_REQUESTS},
        ),
        ({"gpus": 0, "cpu": 2}, {"limits": {"cpu": "2"}, "requests": {"cpu": "2", "memory": "1Gi"}}),
        ({"gpus": 0, "memory": "8Gi"}, {"limits": {"memory": "8Gi"}, "requests": {"cpu": "500m", "memory": "8Gi"}}),
        (
            {"gpus": 2, "cpu": "1500m", "memory": "64Gi"},
            {
                "limits": {"nvidia.com/gpu": "2", "cpu": "1500m", "memory": "64Gi"},
                "requests": {"cpu": "1500m", "memory": "64Gi"},
            },
        ),
    ],
)
def test_training_resources(resources: Obj, expected: Obj) -> None:
    job = batchjob.training_job(ref(spec(resources=resources)), SETTINGS)
    assert container(job)["resources"] == expected


def test_gpus_default_to_one() -> None:
    wire = spec().to_wire()
    del wire["resources"]
    job = batchjob.training_job(ref(FineTuningJobSpec.model_validate(wire)), SETTINGS)
    assert container(job)["resources"] == {"limits": {"nvidia.com/gpu": "1"}, "requests": BUILTIN_REQUESTS}


@pytest.mark.parametrize(("gpus", "has_shm"), [(0, False), (1, False), (2, True), (8, True)])
def test_dev_shm_only_for_more_than_one_gpu(gpus: int, has_shm: bool) -> None:
    job = batchjob.training_job(ref(spec(resources={"gpus": gpus})), SETTINGS)
    volumes = by_name(pod_spec(job)["volumes"])
    mounts = by_name(container(job)["volumeMounts"])
    assert ("dshm" in volumes) is has_shm
    assert ("dshm" in mounts) is has_shm
    if has_shm:
        # Bounded: a tmpfs without a sizeLimit can take the node's memory when the pod has no memory limit.
        memory = container(job)["resources"]["requests"]["memory"]
        assert volumes["dshm"] == {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": memory}}
        assert mounts["dshm"] == {"name": "dshm", "mountPath": "/dev/shm"}


def test_every_empty_dir_is_bounded() -> None:
    job = batchjob.training_job(ref(spec(resources={"gpus": 4})), SETTINGS)
    for built in (job, children.curation_job(ref(), SETTINGS)):
        empty_dirs = [v["emptyDir"] for v in pod_spec(built)["volumes"] if "emptyDir" in v]
        assert empty_dirs and all("sizeLimit" in e for e in empty_dirs), empty_dirs


def test_training_placement() -> None:
    s = spec(
        resources={
            "gpus": 1,
            "nodeSelector": {"gpu": "h100", "zone": "a"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "spot", "operator": "Equal", "value": "yes", "effect": "NoExecute", "tolerationSeconds": 30},
            ],
            "priorityClassName": "high",
        }
    )
    pod = pod_spec(batchjob.training_job(ref(s), SETTINGS))
    assert pod["nodeSelector"] == {"gpu": "h100", "zone": "a"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "spot", "operator": "Equal", "value": "yes", "effect": "NoExecute", "tolerationSeconds": 30},
    ]
    assert pod["priorityClassName"] == "high"


def test_run_policy() -> None:
    s = spec(runPolicy={"backoffLimit": 5, "activeDeadlineSeconds": 3600})
    job = batchjob.training_job(ref(s), SETTINGS)
    assert job["spec"]["backoffLimit"] == 5
    assert job["spec"]["activeDeadlineSeconds"] == 3600
    zero = batchjob.training_job(ref(spec(runPolicy={"backoffLimit": 0})), SETTINGS)
    assert zero["spec"]["backoffLimit"] == 0


def test_kueue_label_and_suspend_only_with_a_queue_name() -> None:
    queued = batchjob.training_job(ref(spec(queueName="team-a")), SETTINGS)
    assert queued["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert queued["spec"]["suspend"] is True
    # The queue label goes on the Job (Kueue's integration), not on the pod template.
    assert "kueue.x-k8s.io/queue-name" not in queued["spec"]["template"]["metadata"]["labels"]
    plain = batchjob.training_job(ref(), SETTINGS)
    assert "kueue.x-k8s.io/queue-name" not in plain["metadata"]["labels"]
    assert "suspend" not in plain["spec"]


def test_training_mounts_a_base_model_pvc_read_only() -> None:
    s = spec(baseModel={"name": "llama", "path": "llama-3-8b", "pvc": "models"})
    job = batchjob.training_job(ref(s), SETTINGS)
    volumes = by_name(pod_spec(job)["volumes"])
    mounts = by_name(container(job)["volumeMounts"])
    assert volumes["base-model"] == {
        "name": "base-model",
        "persistentVolumeClaim": {"claimName": "models", "readOnly": True},
    }
    assert mounts["base-model"] == {"name": "base-model", "mountPath": "/mnt/base-model", "readOnly": True}
    assert "source" not in volumes


def test_builders_do_not_mutate_or_share_the_spec() -> None:
    s = SPECS_FOR_PODS["gpus-pvc-source-pvc-model"]
    before = s.model_dump()
    first = batchjob.training_job(ref(s), SETTINGS)
    pod_spec(first)["nodeSelector"]["gpu"] = "changed"
    pod_spec(first)["tolerations"].clear()
    second = batchjob.training_job(ref(s), SETTINGS)
    assert pod_spec(second)["nodeSelector"] == {"gpu": "h100"}
    assert len(pod_spec(second)["tolerations"]) == 1
    assert s.model_dump() == before


def test_children_are_json_serialisable() -> None:
    for obj in all_children(ref(SPECS_FOR_PODS["gpus-pvc-source-pvc-model"])):
        assert json.loads(json.dumps(obj)) == obj


def test_label_selector_value_matches_naming() -> None:
    # The operator finds children by these labels; they must equal what naming.labels produces.
    job = batchjob.training_job(ref(), SETTINGS)
    assert job["metadata"]["labels"][naming.LABEL_JOB] == "demo"
    assert job["metadata"]["labels"][naming.LABEL_JOB_UID] == UID


def test_training_pod_mounts_the_champion_read_only_and_names_it() -> None:
    champion = Champion(
        model="chat", alias="champion", version="1.4.0", model_version="chat-v1.4.0", claim="earlier-workspace",
        path="/mnt/champion/model", adapter=True, max_regression=0.05,
    )  # fmt: skip
    job = children.JobRef(NAME, NAMESPACE, UID, spec(), champion)
    pod = pod_spec(batchjob.training_job(job, SETTINGS))
    [container] = pod["containers"]
    assert {"name": "champion", "persistentVolumeClaim": {"claimName": "earlier-workspace", "readOnly": True}} in (
        pod["volumes"]
    )
    assert {"name": "champion", "mountPath": "/mnt/champion", "readOnly": True} in container["volumeMounts"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert Champion.model_validate_json(env["FINETUNE_CHAMPION"]) == champion
    # Without a champion, neither.
    plain = pod_spec(batchjob.training_job(ref(), SETTINGS))
    assert "champion" not in {v["name"] for v in plain["volumes"]}
    assert "FINETUNE_CHAMPION" not in {e["name"] for e in plain["containers"][0]["env"]}
