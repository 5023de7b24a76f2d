"""The model registry: which version a job registers, and the ModelVersion object that records it (pure).

Uniqueness comes from the API server, not from locks: a ModelVersion's object name is derived from the
model name and version (`semver.object_name`), so two jobs racing for the same next version collide on
create (409) and the loser recomputes the next version from what now exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from finetune_operator import naming, semver
from finetune_operator.api import API_VERSION, FineTuningJobSpec
from finetune_operator.api.modelversion import KIND, ArtifactLocation
from finetune_operator.api.termination import TerminationMessage
from finetune_operator.status import final_metrics

# The run's final figures; tokensPerSecond and learningRate describe the hardware and schedule, not the model.
_MODEL_METRICS = (
    "trainLoss",
    "evalLoss",
    "perplexity",
    "evalExactMatch",
    "evalTokenF1",
    "championEvalLoss",
    "candidateEvalLoss",
    "toolCallAccuracy",
    "toolCallArgumentsMatch",
    "toolCallsScored",
)


def existing_versions(model_versions: Iterable[Mapping[str, Any]], model_name: str) -> list[Mapping[str, Any]]:
    return [mv for mv in model_versions if (mv.get("spec") or {}).get("modelName") == model_name]


def registered_by(model_versions: Iterable[Mapping[str, Any]], job_uid: str) -> Mapping[str, Any] | None:
    """The ModelVersion this job already registered, if any (found again after an operator restart)."""
    for mv in model_versions:
        if ((mv.get("spec") or {}).get("job") or {}).get("uid") == job_uid:
            return mv
    return None


def explicit_version_conflict(
    spec: FineTuningJobSpec, model_versions: Iterable[Mapping[str, Any]], job_uid: str
) -> str | None:
    """A message when `output.version` is already registered by another job, else None."""
    wanted = spec.output.version
    if not wanted:
        return None
    for mv in existing_versions(model_versions, spec.output.model_name):
        mv_spec = mv.get("spec") or {}
        same = semver.compare(str(mv_spec.get("version")), wanted) == 0
        if same and (mv_spec.get("job") or {}).get("uid") != job_uid:
            return (
                f"version {wanted} of model {spec.output.model_name} is already registered "
                f"(ModelVersion {mv.get('metadata', {}).get('name')}); set output.version to a new version "
                "or leave it blank to take the next one"
            )
    return None


def version_taken(model_versions: Iterable[Mapping[str, Any]], model_name: str, version: str) -> bool:
    """Whether `version` of `model_name` is registered already (by anyone)."""
    return any(
        semver.compare(str((mv.get("spec") or {}).get("version")), version) == 0
        for mv in existing_versions(model_versions, model_name)
    )


def choose_version(spec: FineTuningJobSpec, model_versions: Iterable[Mapping[str, Any]]) -> str:
    """`output.version` when given, else the next version after the highest registered one by `output.bump`."""
    if spec.output.version:
        return spec.output.version
    versions = [
        str((mv.get("spec") or {}).get("version")) for mv in existing_versions(model_versions, spec.output.model_name)
    ]
    return semver.next_version(versions, spec.output.bump.value)


def dataset_source_uri(spec: FineTuningJobSpec) -> str:
    source = spec.dataset.source
    if source.s3 is not None:
        return source.s3.uri
    if source.config_map is not None:
        return f"configmap://{source.config_map.name}/{source.config_map.key}"
    assert source.pvc is not None
    return f"pvc://{source.pvc.claim_name}/{source.pvc.path}"


def base_model_location(spec: FineTuningJobSpec) -> str:
    base = spec.base_model
    if base.builtin is not None:
        return f"builtin://{base.builtin.value}"
    if base.s3 is not None:
        return base.s3.uri
    if base.pvc is not None:
        return f"pvc://{base.pvc}/{str(base.path).lstrip('/')}"
    return f"file://{base.path}"


def model_version(
    *,
    job_name: str,
    namespace: str,
    job_uid: str,
    spec: FineTuningJobSpec,
    version: str,
    artifact: ArtifactLocation,
    dataset: Mapping[str, Any],
    training_result: TerminationMessage,
    created_at: str,
    trainer_image: str,
) -> dict[str, Any]:
    """The ModelVersion object for a job whose training passed evaluation. Not owned by the job."""
    metrics = final_metrics(training_result)
    model_name = spec.output.model_name
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": semver.object_name(model_name, version),
            "namespace": namespace,
            "labels": {
                naming.LABEL_MODEL: model_name,
                naming.LABEL_BASE_MODEL: naming.label_value(spec.base_model.name),
                naming.LABEL_JOB: naming.label_value(job_name),
                naming.LABEL_JOB_UID: job_uid,
                "app.kubernetes.io/managed-by": naming.MANAGED_BY,
            },
        },
        "spec": {
            "modelName": model_name,
            "version": version,
            "baseModel": spec.base_model.name,
            "baseModelLocation": base_model_location(spec),
            **({"baseModelDigest": training_result.base_model_digest} if training_result.base_model_digest else {}),
            "trainerImage": trainer_image,
            "trainerImageDefault": spec.trainer_image is None,
            "method": spec.training.method.value,
            "artifact": artifact.to_wire(),
            "metrics": {key: value for key, value in metrics.items() if key in _MODEL_METRICS},
            "dataset": {
                key: value
                for key, value in {
                    "sha256": dataset.get("sha256"),
                    "samples": dataset.get("samples"),
                    "trainSamples": dataset.get("trainSamples"),
                    "evalSamples": dataset.get("evalSamples"),
                    "source": dataset_source_uri(spec),
                }.items()
                if value is not None
            },
            "hyperparameters": training_result.hyperparameters or spec.training.to_wire(),
            "job": {"name": job_name, "uid": job_uid},
            **({"comparedTo": training_result.compared_to.to_wire()} if training_result.compared_to else {}),
            **({"tracking": training_result.tracking.to_wire()} if training_result.tracking else {}),
            "createdAt": created_at,
        },
    }
