"""Pure builders of a FineTuningJob's child objects, as plain Kubernetes JSON.

Design: curation and training are two batch/v1 Jobs rather than one pod with an init container, so curation
runs on a CPU node without holding GPUs, and the training Job gets the Job controller's retry accounting,
`podFailurePolicy` (data errors and a failed evaluation gate fail at once; evictions and preemptions do not
count as retries), `activeDeadlineSeconds`, and Kueue's native suspend/admit integration.
"""

from __future__ import annotations

import json
from typing import Any

from finetune_operator import naming, podenv
from finetune_operator.api import API_VERSION, FineTuningJobSpec, RetainPolicy, reporting
from finetune_operator.api.contract import USER_ERROR_EXIT_CODES
from finetune_operator.api.finetuningjob import KIND
from finetune_operator.api.jobconfig import (
    CONFIG_DIR,
    CONFIG_KEY,
    CONFIG_PATH,
    Champion,
    JobConfig,
    JobIdentity,
    JobPaths,
)
from finetune_operator.config import CURATION_DEADLINE_SECONDS, Settings

Obj = dict[str, Any]

WORKSPACE = "/workspace"
SOURCE_DIR = "/mnt/source"
SOURCE_STAGING = "sources"
# spec.baseModel.s3: where the training pod downloads the base model (finetune_trainer.objectstore).
BASE_MODEL_STAGING = "base-model"
BASE_MODEL_DIR = "/mnt/base-model"
TERMINATION_LOG = "/dev/termination-log"
UID = 1000
TMP_SIZE_LIMIT = "8Gi"


class JobRef:
    """The identity of the parent FineTuningJob that every child carries."""

    def __init__(
        self, name: str, namespace: str, uid: str, spec: FineTuningJobSpec, champion: Champion | None = None
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.spec = spec
        self.champion = champion
        """The version evaluation.compareTo resolved to, for the training pod (None: nothing to compare)."""

    def owner_reference(self) -> Obj:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
        }

    def metadata(self, name: str, component: str, owned: bool = True) -> Obj:
        meta: Obj = {
            "name": name,
            "namespace": self.namespace,
            "labels": naming.labels(self.name, self.uid, component),
        }
        if owned:
            meta["ownerReferences"] = [self.owner_reference()]
        return meta


def workspace_pvc(job: JobRef) -> Obj:
    storage = job.spec.storage
    # Retain: the workspace (dataset, checkpoints, the trained model) outlives the job; no owner, no GC.
    owned = storage.retain_policy is RetainPolicy.DELETE
    spec: Obj = {"accessModes": [storage.access_mode.value], "resources": {"requests": {"storage": storage.size}}}
    if storage.storage_class_name:
        spec["storageClassName"] = storage.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": job.metadata(naming.workspace_pvc(job.name), "workspace", owned=owned),
        "spec": spec,
    }


def source_staging(spec: FineTuningJobSpec) -> str | None:
    """Where curation downloads sessions from a bucket: in the workspace, so a retried pod resumes."""
    return f"{WORKSPACE}/{SOURCE_STAGING}" if spec.dataset.source.s3 is not None else None


def source_glob(spec: FineTuningJobSpec) -> str:
    source = spec.dataset.source
    if source.s3 is not None:
        # Every downloaded file, at any depth: the bucket glob already chose them.
        return f"{WORKSPACE}/{SOURCE_STAGING}/**/*"
    if source.config_map is not None:
        return f"{SOURCE_DIR}/{source.config_map.key}"
    assert source.pvc is not None
    return f"{SOURCE_DIR}/{source.pvc.path.lstrip('/')}"


def base_model_path(spec: FineTuningJobSpec) -> str | None:
    base = spec.base_model
    if base.s3 is not None:
        return f"{WORKSPACE}/{BASE_MODEL_STAGING}"
    if base.path is None:
        return None
    if base.pvc:
        return f"{BASE_MODEL_DIR}/{base.path.lstrip('/')}"
    return base.path


def job_config(job: JobRef) -> JobConfig:
    """The resolved configuration both entrypoints read (`/etc/finetune/job.json`)."""
    return JobConfig(
        job=JobIdentity(name=job.name, namespace=job.namespace, uid=job.uid),
        spec=job.spec,
        paths=JobPaths(
            workspace=WORKSPACE,
            source_glob=source_glob(job.spec),
            source_staging=source_staging(job.spec),
            base_model=base_model_path(job.spec),
        ),
    )


def config_map(job: JobRef) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": job.metadata(naming.config_map(job.name), "config"),
        "data": {CONFIG_KEY: json.dumps(job_config(job).to_wire(), indent=2, sort_keys=True)},
        "immutable": True,
    }


def metrics_config_map(job: JobRef) -> Obj:
    """The trainer's metric history (`history.json`, docs/runtime-contract.md), empty until it reports.

    Created here because RBAC cannot narrow `create` to one name, while `patch` of this one object can be
    granted to the trainer. The operator never watches ConfigMaps, so history writes cost it nothing.
    """
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": job.metadata(reporting.metrics_config_map(job.name), reporting.METRICS_COMPONENT),
        "data": {},
    }


def trainer_service_account(job: JobRef) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": job.metadata(naming.trainer_identity(job.name), "trainer-identity"),
    }


def trainer_role(job: JobRef) -> Obj:
    """The curation and training pods may report progress and history on their own job, read the pacing, and
    nothing else."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": job.metadata(naming.trainer_identity(job.name), "trainer-identity"),
        "rules": [
            {
                "apiGroups": ["finetune.dev"],
                "resources": ["finetuningjobs/status"],
                "resourceNames": [job.name],
                "verbs": ["get", "patch"],
            },
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [reporting.metrics_config_map(job.name)],
                "verbs": ["get", "patch"],
            },
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [reporting.REPORT_PACING],
                "verbs": ["get"],
            },
        ],
    }


def trainer_role_binding(job: JobRef) -> Obj:
    name = naming.trainer_identity(job.name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": job.metadata(name, "trainer-identity"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": job.namespace}],
    }


def pod_security_context() -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> Obj:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def workspace_volumes(job: JobRef, with_source: bool, with_base_model: bool) -> tuple[list[Obj], list[Obj]]:
    spec = job.spec
    volumes: list[Obj] = [
        {"name": "workspace", "persistentVolumeClaim": {"claimName": naming.workspace_pvc(job.name)}},
        {"name": "config", "configMap": {"name": naming.config_map(job.name)}},
        # Library caches (HF_HOME, Triton, Inductor; see trainer-image/Dockerfile): bounded, so a runaway cache
        # evicts this pod rather than filling the node's disk.
        {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}},
    ]
    mounts: list[Obj] = [
        {"name": "workspace", "mountPath": WORKSPACE},
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    source = spec.dataset.source
    # An S3 source needs no volume: curation downloads it into the workspace.
    if with_source and source.s3 is None:
        if source.config_map is not None:
            volumes.append(
                {
                    "name": "source",
                    "configMap": {
                        "name": source.config_map.name,
                        "items": [{"key": source.config_map.key, "path": source.config_map.key}],
                    },
                }
            )
        else:
            assert source.pvc is not None
            volumes.append(
                {
                    "name": "source",
                    "persistentVolumeClaim": {"claimName": source.pvc.claim_name, "readOnly": True},
                }
            )
        mounts.append({"name": "source", "mountPath": SOURCE_DIR, "readOnly": True})
    if with_base_model and spec.base_model.pvc:
        volumes.append(
            {
                "name": "base-model",
                "persistentVolumeClaim": {"claimName": spec.base_model.pvc, "readOnly": True},
            }
        )
        mounts.append({"name": "base-model", "mountPath": BASE_MODEL_DIR, "readOnly": True})
    return volumes, mounts


def common_env() -> list[Obj]:
    return [
        {"name": "FINETUNE_CONFIG", "value": CONFIG_PATH},
        {"name": "FINETUNE_TERMINATION_LOG", "value": TERMINATION_LOG},
        {"name": "HOME", "value": "/tmp"},
        {"name": "HF_HUB_OFFLINE", "value": "1"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]


def placement(job: JobRef) -> Obj:
    resources = job.spec.resources
    placement: Obj = {}
    if resources.node_selector:
        placement["nodeSelector"] = dict(resources.node_selector)
    if resources.tolerations:
        placement["tolerations"] = [t.to_wire() for t in resources.tolerations]
    return placement


def pod_metadata(job: JobRef, component: str) -> Obj:
    """Pod template metadata: the user's extra labels and annotations, our labels winning on conflicts."""
    extra = job.spec.pod_metadata
    metadata: Obj = {
        "labels": {**((extra.labels if extra else None) or {}), **naming.labels(job.name, job.uid, component)}
    }
    if extra and extra.annotations:
        metadata["annotations"] = dict(extra.annotations)
    return metadata


def trainer_image_container(
    job: JobRef, settings: Settings, *, name: str, module: str, resources: Obj, mounts: list[Obj]
) -> Obj:
    """A container of the trainer image running `python -m <module>`, restricted, reporting by termination log.

    It gets the operator's environment and the user's spec.env/envFrom."""
    container: Obj = {
        "name": name,
        "image": job.spec.trainer_image or settings.trainer_image,
        "command": [settings.python_command, "-m", module],
        "env": [*common_env(), *podenv.user_env(job.spec)],
        "resources": resources,
        "securityContext": container_security_context(),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
        "volumeMounts": mounts,
    }
    if job.spec.env_from:
        container["envFrom"] = podenv.user_env_from(job.spec)
    return container


def curation_job(job: JobRef, settings: Settings) -> Obj:
    """Curation: CPU only; deterministic, so one retry covers a lost node and user-data errors fail at once."""
    volumes, mounts = workspace_volumes(job, with_source=True, with_base_model=False)
    resources = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}
    container = trainer_image_container(
        job, settings, name="curate", module="finetune_trainer.curate", resources=resources, mounts=mounts
    )
    # Only this pod reads the dataset's bucket: only it gets those credentials (by reference).
    container["env"].extend(podenv.s3_credentials(job.spec.dataset.source.s3, podenv.DATASET))
    pod_spec: Obj = {
        "restartPolicy": "Never",
        # The job's own identity, as training's: it may patch this job's status (curation progress) and
        # nothing else of the cluster.
        "serviceAccountName": naming.trainer_identity(job.name),
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": volumes,
        **placement(job),
    }
    name = naming.curation_job(job.name)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": job.metadata(name, "curation"),
        "spec": {
            "backoffLimit": 1,
            "activeDeadlineSeconds": CURATION_DEADLINE_SECONDS,
            "podFailurePolicy": {
                "rules": [
                    {"action": "FailJob", "onExitCodes": {"operator": "In", "values": list(USER_ERROR_EXIT_CODES)}},
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                ]
            },
            "template": {
                "metadata": pod_metadata(job, "curation"),
                "spec": pod_spec,
            },
        },
    }
