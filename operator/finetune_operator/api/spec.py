"""The FineTuningJob spec (finetune.dev/v1alpha1): the single source of truth for the CRD's spec schema.

Field docstrings become the CRD's descriptions (`kubectl explain ftj.spec...`). Cross-field rules that
OpenAPI cannot express are CEL rules (`x-kubernetes-validations`) so the API server rejects bad specs at
apply time; the same rules are enforced by the pydantic validators so the operator never acts on a spec
the API server would have refused.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from finetune_operator.api.base import (
    DNS1123_LABEL_PATTERN,
    ApiModel,
    PositiveQuantity,
    VolumePath,
    cel,
)
from finetune_operator.api.evaluation import EvaluationSpec
from finetune_operator.api.objectstore import DNS1123_SUBDOMAIN_PATTERN, S3BaseModel, S3SessionSource
from finetune_operator.api.output import OutputSpec
from finetune_operator.api.placement import PodMetadata, ResourcesSpec
from finetune_operator.api.podenv import EnvFromSource, EnvVar
from finetune_operator.api.tracking import TrackingSpec
from finetune_operator.api.training import TrainingSpec

IMMUTABLE_MESSAGE = "is immutable once the job is created; create a new FineTuningJob instead"
# Ten years: long enough for any run or retention, short enough that no date computed from it overflows.
MAX_SECONDS = 315_360_000
DELETE_NEEDS_STORE_MESSAGE = (
    "storage.retainPolicy Delete with runPolicy.ttlSecondsAfterFinished would delete the only copy of the trained "
    "model: set output.pvc or output.s3 (a model store the model is copied to) or use retainPolicy Retain"
)


NODES_NEED_RWX_MESSAGE = (
    "resources.nodes > 1 needs storage.accessMode ReadWriteMany: the ranks of every node read the dataset and "
    "resume from the checkpoints in the one workspace"
)
_ONE_BASE_MODEL = "baseModel needs exactly one of path (a Hugging Face format folder), s3 or builtin"


class BuiltinModel(StrEnum):
    TINY_GPT = "tiny-gpt"


class BaseModelSpec(ApiModel):
    """The model to fine-tune."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("[has(self.path), has(self.builtin), has(self.s3)].filter(x, x).size() == 1", _ONE_BASE_MODEL),
                cel(
                    "!has(self.pvc) || has(self.path)",
                    "baseModel.pvc is only meaningful with baseModel.path",
                    ".pvc",
                ),
            ]
        }
    }

    name: str = Field(min_length=1, max_length=253)
    """Human-readable name of the base model (e.g. llama-3.1-8b); recorded in the model registry."""
    path: VolumePath | None = None
    """Folder holding the model in Hugging Face format (config.json, safetensors, tokenizer). Relative to the
    root of `pvc` when set, else an absolute path inside the trainer image."""
    pvc: str | None = Field(default=None, pattern=DNS1123_LABEL_PATTERN, max_length=253)
    """PersistentVolumeClaim holding `path`, mounted read-only into the training pods."""
    builtin: BuiltinModel | None = None
    """A small model built from a config instead of loaded from storage: for tests and the demo."""
    s3: S3BaseModel | None = None
    """A Hugging Face format folder in an S3-compatible bucket, downloaded into the workspace by the training pod."""

    @model_validator(mode="after")
    def _one_source(self) -> BaseModelSpec:
        if [self.path, self.builtin, self.s3].count(None) != 2:
            raise ValueError(_ONE_BASE_MODEL)
        if self.pvc is not None and self.path is None:
            raise ValueError("baseModel.pvc is only meaningful with baseModel.path")
        return self


class PvcSource(ApiModel):
    """Session logs on a PersistentVolumeClaim."""

    claim_name: str = Field(pattern=DNS1123_LABEL_PATTERN, max_length=253)
    """Name of the PersistentVolumeClaim, in the job's namespace."""
    path: VolumePath
    """File or glob of JSONL files (optionally .jsonl.gz) relative to the claim's root, e.g. sessions/*.jsonl."""


class ConfigMapSource(ApiModel):
    """Session logs in a ConfigMap key (small datasets, demos)."""

    name: str = Field(pattern=DNS1123_LABEL_PATTERN, max_length=253)
    """Name of the ConfigMap, in the job's namespace."""
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    """Key holding the JSONL content."""


_ONE_SOURCE = "dataset.source needs exactly one of pvc, configMap or s3"


class DatasetSource(ApiModel):
    """Where the agent-session logs come from: exactly one of pvc, configMap or s3."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("[has(self.pvc), has(self.configMap), has(self.s3)].filter(x, x).size() == 1", _ONE_SOURCE)
            ]
        }
    }

    pvc: PvcSource | None = None
    config_map: ConfigMapSource | None = None
    s3: S3SessionSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> DatasetSource:
        if [self.pvc, self.config_map, self.s3].count(None) != 2:
            raise ValueError(_ONE_SOURCE)
        return self


class CurationFormat(StrEnum):
    INSTRUCTION = "instruction"
    CHAT = "chat"


class CurationSpec(ApiModel):
    """How agent sessions become training samples."""

    min_success_rate: float = Field(default=0.9, ge=0.0, le=1.0)
    """Keep sessions whose success rate is strictly above this value (0..1)."""
    max_samples: int | None = Field(default=None, ge=1)
    """Keep at most this many samples, chosen deterministically (by a hash of the session id)."""
    dedup: bool = True
    """Drop near-duplicate sessions (MinHash) in addition to exact duplicates."""
    eval_fraction: float = Field(default=0.05, gt=0.0, le=0.5)
    """Fraction of samples held out for evaluation, assigned by a hash of the session id (0 < x <= 0.5)."""
    max_tokens: int | None = Field(default=None, ge=16)
    """Reject samples longer than this many tokens (estimated at curation time)."""
    format: CurationFormat | None = None
    """Sample format: instruction (instruction/input/output records) or chat (whole conversations with their tool
    calls, trained through the model's chat template). Unset: chat when the sessions in the first 1000 lines of the
    source's first file are all messages sessions, else instruction (docs/session-schema.md)."""


class DatasetSpec(ApiModel):
    """The training data: a source of agent-session logs and how to curate it."""

    source: DatasetSource
    curation: CurationSpec = Field(default_factory=CurationSpec)


class RetainPolicy(StrEnum):
    RETAIN = "Retain"
    DELETE = "Delete"


class AccessMode(StrEnum):
    READ_WRITE_ONCE = "ReadWriteOnce"
    READ_WRITE_MANY = "ReadWriteMany"


class StorageSpec(ApiModel):
    """The job's workspace volume (dataset, checkpoints, model)."""

    size: PositiveQuantity = "10Gi"
    """Size of the workspace PersistentVolumeClaim (Kubernetes quantity above zero)."""
    storage_class_name: str | None = Field(default=None, pattern=DNS1123_SUBDOMAIN_PATTERN, max_length=253)
    """StorageClass of the workspace; the cluster default when unset."""
    access_mode: AccessMode = AccessMode.READ_WRITE_ONCE
    """Access mode of the workspace. ReadWriteMany (NFS, EFS, Filestore, Lustre, CephFS) is required when
    resources.nodes > 1: every node's ranks read the dataset and the checkpoints they resume from."""
    retain_policy: RetainPolicy = RetainPolicy.RETAIN
    """Retain keeps the workspace (dataset, checkpoints, the trained model) when the job is deleted; Delete removes
    it with the job, and with it the model unless output.pvc or output.s3 holds a copy."""


class RunPolicy(ApiModel):
    """Retries and deadlines."""

    backoff_limit: int = Field(default=2, ge=0, le=20)
    """Training retries after a failure (0..20); each resumes from the latest checkpoint. Evictions do not count."""
    active_deadline_seconds: int | None = Field(default=None, ge=1, le=MAX_SECONDS)
    """Deadline of the training Job, counted from its creation: time waiting for GPUs or Kueue admission and every
    retry count too (curation does not). When it passes the pods stop and the job fails with DeadlineExceeded.
    At most ten years."""
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0, le=MAX_SECONDS)
    """Delete the FineTuningJob this long after it finished (at most ten years). The ModelVersion stays; its model
    files stay too when they are in output.pvc, output.s3 or a retained workspace (retainPolicy Retain)."""


class FineTuningJobSpec(ApiModel):
    """Desired state of a fine-tuning run."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                *(
                    cel(f"self.{name} == oldSelf.{name}", f"spec.{name} {IMMUTABLE_MESSAGE}", f".{name}")
                    # storage: the workspace is created once; an edit could never take effect.
                    for name in ("baseModel", "dataset", "output", "storage")
                ),
                *(
                    cel(
                        f"has(self.{name}) == has(oldSelf.{name}) && (!has(self.{name}) || "
                        f"self.{name} == oldSelf.{name})",
                        f"spec.{name} {IMMUTABLE_MESSAGE}",
                        f".{name}",
                    )
                    # evaluation too: the trainer reads its gate from the job's immutable config.
                    for name in ("training", "resources", "evaluation")
                ),
                cel(
                    "self.storage.retainPolicy != 'Delete' || !has(self.runPolicy.ttlSecondsAfterFinished) "
                    "|| has(self.output.pvc) || has(self.output.s3)",
                    DELETE_NEEDS_STORE_MESSAGE,
                    ".storage.retainPolicy",
                ),
                cel(
                    "!has(self.resources) || !has(self.resources.nodes) || self.resources.nodes == 1 || "
                    "(has(self.storage) && has(self.storage.accessMode) && self.storage.accessMode == 'ReadWriteMany')",
                    NODES_NEED_RWX_MESSAGE,
                    ".storage.accessMode",
                ),
                cel(
                    "!has(oldSelf.cancel) || !oldSelf.cancel || (has(self.cancel) && self.cancel)",
                    "spec.cancel cannot go back from true to false; create a new FineTuningJob instead",
                    ".cancel",
                ),
            ]
        }
    }

    base_model: BaseModelSpec
    dataset: DatasetSpec
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    output: OutputSpec
    storage: StorageSpec = Field(default_factory=StorageSpec)
    run_policy: RunPolicy = Field(default_factory=RunPolicy)
    # 63: it becomes the value of Kueue's queue-name label.
    queue_name: str | None = Field(default=None, max_length=63, pattern=DNS1123_LABEL_PATTERN)
    """Kueue LocalQueue; the training workload is created suspended and waits for Kueue's admission."""
    cancel: bool = False
    """Set to true to stop the job; pods stop, the workspace and checkpoints are kept. Cannot be undone."""
    trainer_image: str | None = Field(default=None, min_length=1, max_length=1024, pattern=r"^\S+$")
    """Override of the operator's default trainer image."""
    pod_metadata: PodMetadata | None = None
    tracking: TrackingSpec | None = None
    env: list[EnvVar] | None = Field(default=None, max_length=64)
    """Environment for the curation and training containers (tracking tokens, proxies, ...): literal values or
    secretKeyRef/configMapKeyRef. Names the operator sets itself are refused."""
    env_from: list[EnvFromSource] | None = Field(default=None, max_length=16)
    """Every key of a Secret or ConfigMap as environment of both containers; the operator's own variables win."""

    @model_validator(mode="after")
    def _model_outlives_deletion(self) -> FineTuningJobSpec:
        deletes_workspace = self.storage.retain_policy is RetainPolicy.DELETE
        if deletes_workspace and self.run_policy.ttl_seconds_after_finished is not None and not self.output.store:
            raise ValueError(DELETE_NEEDS_STORE_MESSAGE)
        if self.resources.nodes > 1 and self.storage.access_mode is not AccessMode.READ_WRITE_MANY:
            raise ValueError(NODES_NEED_RWX_MESSAGE)
        return self
