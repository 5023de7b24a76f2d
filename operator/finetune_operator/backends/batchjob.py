"""The first training backend: one training pod in a batch/v1 Job.

The Job controller gives retry accounting (`backoffLimit`), `podFailurePolicy` (user errors fail at once,
disruptions requeue without consuming a retry), `activeDeadlineSeconds` and Kueue's suspend/admit integration.
One attempt is one pod, so the attempt ids are pod names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from finetune_operator import naming, podenv
from finetune_operator.api.contract import USER_ERROR_EXIT_CODES
from finetune_operator.api.jobconfig import CHAMPION_DIR, CHAMPION_ENV
from finetune_operator.api.modelversion import ArtifactLocation
from finetune_operator.api.spec import BaseModelSpec
from finetune_operator.api.termination import TerminationMessage
from finetune_operator.backends.base import ObjectRef
from finetune_operator.children import (
    JobRef,
    placement,
    pod_metadata,
    pod_security_context,
    trainer_image_container,
    workspace_volumes,
)
from finetune_operator.config import Settings
from finetune_operator.observation import WorkloadState
from finetune_operator.observe import workload_state

Obj = dict[str, Any]
Observed = Mapping[str, Any]

COMPONENT = "training"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
MODEL_DIR = "model"
# "llama-3.1-8b", "Qwen2.5-0.5B-Instruct": the parameter count in billions, as model names spell it.
_BILLIONS = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)b(?![a-z])", re.IGNORECASE)
ASSUMED_BILLIONS = 8.0
"""A base model whose name or path states no size is sized like the common 8B LoRA case."""


class BatchJobBackend:
    component = COMPONENT

    def children(self, job: JobRef, settings: Settings) -> list[Obj]:
        return [training_job(job, settings)]

    def observe(self, workload: Observed | None, pods: Sequence[Observed]) -> WorkloadState:
        return workload_state(workload, pods)

    def stop(self, workload: Observed | None) -> list[ObjectRef]:
        # Deleting the Job deletes its pods (foreground or background, the pods get their grace period).
        return [ObjectRef("Job", str(workload["metadata"]["name"]))] if workload is not None else []

    def artifact(self, job_name: str, result: TerminationMessage) -> ArtifactLocation:
        claim = naming.workspace_pvc(job_name)
        model = result.model
        path = (model.path if model else None) or MODEL_DIR
        adapter = bool(model.adapter) if model else False
        return ArtifactLocation(pvc=claim, path=path, uri=f"pvc://{claim}/{path}", adapter=adapter)


def model_billions(base: BaseModelSpec) -> float:
    """The base model's size in billions of parameters, read from its name or path (0 for a builtin)."""
    if base.builtin is not None:
        return 0.0
    for text in (base.name, base.path or ""):
        found = _BILLIONS.search(text)
        if found:
            return float(found.group(1))
    return ASSUMED_BILLIONS


def default_requests(job: JobRef) -> Obj:
    """Host CPU and memory a training pod requests when the spec sets none (without requests it is BestEffort,
    evicted first): per rank ~4 GiB (Python, CUDA context, data loading) and 2 cores, plus one bf16 copy of the
    weights (ranks load straight onto their GPU, but the page cache of the shards and the saved model pass
    through host memory). Requests only: no limit, so a short peak above them is not an OOM kill.
    """
    if job.spec.base_model.builtin is not None:
        return {"cpu": "500m", "memory": "1Gi"}  # as curation: tiny-gpt trains in ~1 GB
    ranks = max(1, job.spec.resources.gpus)
    weights_gib = math.ceil(2 * model_billions(job.spec.base_model))
    return {"cpu": str(2 + 2 * ranks), "memory": f"{4 * ranks + weights_gib}Gi"}


def training_resources(job: JobRef) -> Obj:
    resources = job.spec.resources
    limits: Obj = {}
    requests: Obj = default_requests(job)
    if resources.gpus > 0:
        limits[resources.gpu_resource_name] = str(resources.gpus)
    if resources.cpu:
        limits["cpu"] = requests["cpu"] = resources.cpu
    if resources.memory:
        limits["memory"] = requests["memory"] = resources.memory
    out: Obj = {}
    if limits:
        out["limits"] = limits
    if requests:
        out["requests"] = requests
    return out


def champion_volumes(job: JobRef, volumes: list[Obj], mounts: list[Obj]) -> None:
    """The claim holding the evaluation.compareTo version's model, read-only (another job's workspace or a store)."""
    if job.champion is None:
        return
    claim = {"claimName": job.champion.claim, "readOnly": True}
    volumes.append({"name": "champion", "persistentVolumeClaim": claim})
    mounts.append({"name": "champion", "mountPath": CHAMPION_DIR, "readOnly": True})


def training_job(job: JobRef, settings: Settings) -> Obj:
    spec = job.spec
    volumes, mounts = workspace_volumes(job, with_source=False, with_base_model=True)
    champion_volumes(job, volumes, mounts)
    resources = training_resources(job)
    if spec.resources.gpus > 1:
        # NCCL needs more shared memory than a container's default 64 MiB. The tmpfs is memory the pod is charged
        # for: bounded by what the container asks for, it cannot grow past the pod's share of the node.
        shm = {"medium": "Memory", "sizeLimit": resources["requests"]["memory"]}
        volumes.append({"name": "dshm", "emptyDir": shm})
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    container = trainer_image_container(
        job, settings, name="train", module="finetune_trainer.train", resources=resources, mounts=mounts
    )
    container["env"] = [
        *container["env"],
        # Fewer visible GPUs than this fails at once (GPUsNotVisible) instead of training on the CPU.
        {"name": "FINETUNE_EXPECTED_GPUS", "value": str(spec.resources.gpus)},
        # How long the ranks get to checkpoint after SIGTERM before the trainer's supervisor kills them.
        {"name": "FINETUNE_GRACE_SECONDS", "value": str(settings.termination_grace_seconds)},
        *([{"name": CHAMPION_ENV, "value": job.champion.model_dump_json(by_alias=True)}] if job.champion else []),
        *podenv.s3_credentials(spec.base_model.s3, podenv.BASE_MODEL),
    ]
    pod_spec: Obj = {
        "restartPolicy": "Never",
        "serviceAccountName": naming.trainer_identity(job.name),
        # The trainer saves a checkpoint on SIGTERM; give it the time to finish writing.
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": volumes,
        **placement(job),
    }
    if spec.resources.priority_class_name:
        pod_spec["priorityClassName"] = spec.resources.priority_class_name
    metadata = job.metadata(naming.training_job(job.name), COMPONENT)
    job_spec: Obj = {
        "backoffLimit": spec.run_policy.backoff_limit,
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {
                        "containerName": "train",
                        "operator": "In",
                        "values": list(USER_ERROR_EXIT_CODES),
                    },
                },
                # Evictions, preemptions and lost nodes requeue without consuming a retry.
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            ]
        },
        "template": {"metadata": pod_metadata(job, COMPONENT), "spec": pod_spec},
    }
    if spec.run_policy.active_deadline_seconds:
        job_spec["activeDeadlineSeconds"] = spec.run_policy.active_deadline_seconds
    if spec.queue_name:
        # Kueue admits suspended Jobs that carry its queue label.
        metadata["labels"][KUEUE_QUEUE_LABEL] = spec.queue_name
        job_spec["suspend"] = True
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec}
