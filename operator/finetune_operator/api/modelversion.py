"""The ModelVersion API: one registered, immutable, versioned fine-tuned model (the model registry)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from finetune_operator.api.base import DIGEST_PATTERN, DNS1123_LABEL_PATTERN, SEMVER_PATTERN, ApiModel, DateTime, cel
from finetune_operator.api.tracking import TrackingStatus

KIND = "ModelVersion"
PLURAL = "modelversions"
SINGULAR = "modelversion"
SHORT_NAMES = ["mv"]
CATEGORIES = ["ml"]


_ARTIFACT_PLACE = "artifact needs pvc and path (a claim) or uri (a bucket)"


class ArtifactLocation(ApiModel):
    """Where the model files are: a folder in a claim (pvc, path) or in a bucket (uri)."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [cel("has(self.uri) || (has(self.pvc) && has(self.path))", _ARTIFACT_PLACE)]
        }
    }

    pvc: str | None = Field(default=None, pattern=DNS1123_LABEL_PATTERN, max_length=253)
    """PersistentVolumeClaim holding the model; unset when the model is in a bucket (output.s3)."""
    path: str | None = Field(default=None, min_length=1, max_length=4096)
    """Folder of the model inside the claim (Hugging Face format, safetensors)."""
    uri: str | None = Field(default=None, max_length=4096)
    """pvc://<claim>/<path>, or s3://<bucket>/<prefix>/<modelName>/<version>/ for a copy in a bucket: one string
    for tools."""
    adapter: bool | None = None
    """True when the folder holds a LoRA adapter to apply on the base model."""
    digest: str | None = Field(default=None, pattern=DIGEST_PATTERN)
    """Content digest of the folder, set when the model was copied to a model store: `sha256:` and the SHA-256 of
    the folder's `sha256sum` listing (one `<hex digest>  <relative path>` line per file, sorted by path)."""

    @model_validator(mode="after")
    def _somewhere(self) -> ArtifactLocation:
        if self.uri is None and (self.pvc is None or self.path is None):
            raise ValueError(_ARTIFACT_PLACE)
        return self


class ModelMetrics(ApiModel):
    """Final metrics of the training run."""

    train_loss: float | None = None
    eval_loss: float | None = None
    perplexity: float | None = None
    eval_exact_match: float | None = None
    eval_token_f1: float | None = None
    champion_eval_loss: float | None = None
    """With evaluation.compareTo: the compared version's loss on this job's held-out split."""
    candidate_eval_loss: float | None = None
    """This model's loss on the same batches, measured the same way."""
    tool_call_accuracy: float | None = None
    """Chat datasets: share of the held-out tool calls whose function the model called (see the job's status)."""
    tool_call_arguments_match: float | None = None
    """Chat datasets: share of the held-out tool calls made with exactly the session's arguments."""
    tool_calls_scored: int | None = None
    """Chat datasets: the held-out tool calls those figures are measured on."""


class DatasetLineage(ApiModel):
    """The dataset the model was trained on."""

    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """Digest of the curated train and eval files (see dataset/manifest.json)."""
    samples: int | None = Field(default=None, ge=0)
    train_samples: int | None = Field(default=None, ge=0)
    eval_samples: int | None = Field(default=None, ge=0)
    source: str | None = None
    """The job's dataset source, e.g. configmap://sessions/sessions.jsonl or pvc://logs/sessions/*.jsonl."""


class ComparedTo(ApiModel):
    """The version this model was gated against (evaluation.compareTo)."""

    model: str
    alias: str
    version: str
    max_regression: float


class JobReference(ApiModel):
    """The FineTuningJob that produced the model (which may since have been deleted)."""

    name: str
    uid: str


class ModelVersionSpec(ApiModel):
    """A registered model version. Immutable: a new training run registers a new version."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("self == oldSelf", "a ModelVersion is immutable; register a new version instead"),
            ]
        }
    }

    model_name: str = Field(pattern=DNS1123_LABEL_PATTERN, max_length=63)
    """Registry name of the model."""
    version: str = Field(pattern=SEMVER_PATTERN, max_length=128)
    """Semantic version (semver 2.0.0)."""
    base_model: str = Field(min_length=1, max_length=253)
    """Name of the base model it was fine-tuned from."""
    base_model_location: str | None = Field(default=None, max_length=4096)
    """Where the base model was read from: pvc://<claim>/<path>, file://<path in the trainer image>, or
    builtin://<name>."""
    base_model_digest: str | None = Field(default=None, pattern=DIGEST_PATTERN)
    """`sha256:` of the base model's config.json and weight index (model.safetensors.index.json, or each
    .safetensors file's header): identifies its architecture and weight layout without hashing the weights."""
    trainer_image: str | None = Field(default=None, max_length=1024)
    """The image that trained the model."""
    trainer_image_default: bool | None = None
    """True when that image was the operator's default (FTO_TRAINER_IMAGE), false when the job set trainerImage."""
    method: str | None = None
    """lora or full."""
    artifact: ArtifactLocation
    metrics: ModelMetrics = Field(default_factory=ModelMetrics)
    dataset: DatasetLineage = Field(default_factory=DatasetLineage)
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """The training configuration the trainer resolved, every default applied (configHash included); the job's
    spec.training as written when the trainer did not report it."""
    job: JobReference
    compared_to: ComparedTo | None = None
    tracking: TrackingStatus | None = None
    """The training run in the job's experiment tracker (spec.tracking): its id and UI link."""
    created_at: DateTime | None = None
    """When training finished (RFC 3339)."""


class ModelVersion(ApiModel):
    """One version of a fine-tuned model."""

    api_version: str = Field(default="finetune.dev/v1alpha1")
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ModelVersionSpec
