"""Copying the trained model to the model store (output.pvc or output.s3): the copy Job and what the ModelVersion gets.

The copy runs in its own small batch Job (`<job>-publish`, the trainer image's `finetune_trainer.publish`), not in
the training pod, because:
- the destination `<modelName>/<version>/` needs the version, which the operator chooses only once training has
  passed its gate (versions follow the order in which models are registered, not the order jobs started);
- the training pod holds GPUs: a copy of many gigabytes must not keep them, and a copy that fails is retried
  without training again;
- it mounts only the workspace and the store, CPU only, under no ServiceAccount token.
Its termination message carries the copy's path, version and content digest; the ModelVersion points at the copy.
"""

from __future__ import annotations

from typing import Any

from finetune_operator import naming, podenv
from finetune_operator.api.contract import USER_ERROR_EXIT_CODES
from finetune_operator.api.modelversion import ArtifactLocation
from finetune_operator.api.termination import ProducedModel
from finetune_operator.children import JobRef, placement, pod_metadata, pod_security_context, trainer_image_container
from finetune_operator.children import workspace_volumes as base_volumes
from finetune_operator.config import Settings

Obj = dict[str, Any]

COMPONENT = "publish"
STORE_DIR = "/mnt/model-store"
# A copy of a large model takes a while, but never hours: a hung store fails the job instead of stalling it.
DEADLINE_SECONDS = 6 * 3600


def publish_job(job: JobRef, settings: Settings, version: str, source: str | None) -> Obj:
    """The copy Job for `version`; `source` is the model folder training reported, relative to the workspace."""
    assert source is not None, "the training backend's model is a folder of the workspace"
    output = job.spec.output
    assert output.store is not None, "only jobs with a model store publish"
    volumes, mounts = base_volumes(job, with_source=False, with_base_model=False)
    if output.pvc is not None:
        volumes.append({"name": "model-store", "persistentVolumeClaim": {"claimName": output.pvc}})
        mounts.append({"name": "model-store", "mountPath": STORE_DIR})
    resources = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
    container = trainer_image_container(
        job, settings, name="publish", module="finetune_trainer.publish", resources=resources, mounts=mounts
    )
    # A bucket is reached over the network, with the output's credentials (by reference) and nothing mounted.
    container["env"].extend(podenv.s3_credentials(output.s3, podenv.OUTPUT))
    container["args"] = ["--source", source, "--version", version, "--store", STORE_DIR]
    pod_spec: Obj = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": volumes,
        **placement(job),
    }
    metadata = job.metadata(naming.publish_job(job.name), COMPONENT)
    metadata["labels"][naming.LABEL_VERSION] = naming.label_value(version)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": DEADLINE_SECONDS,
            "podFailurePolicy": {
                "rules": [
                    {"action": "FailJob", "onExitCodes": {"operator": "In", "values": list(USER_ERROR_EXIT_CODES)}},
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                ]
            },
            "template": {"metadata": pod_metadata(job, COMPONENT), "spec": pod_spec},
        },
    }


def artifact(model: ProducedModel | None) -> ArtifactLocation | None:
    """Where the ModelVersion of a published model points: the copy in the store, with its digest; None when the
    copy Job reported no copy (no model store: the model stays in the workspace)."""
    if model is None:
        return None
    if model.uri is not None:
        return ArtifactLocation(uri=model.uri, adapter=bool(model.adapter), digest=model.digest)
    if not (model.store and model.path):
        return None
    return ArtifactLocation(
        pvc=model.store,
        path=model.path,
        uri=f"pvc://{model.store}/{model.path}",
        adapter=bool(model.adapter),
        digest=model.digest,
    )
