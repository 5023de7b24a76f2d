"""The FineTuningJob status: what the operator (and, for progress, the training pod) reports."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from finetune_operator.api.base import StatusModel
from finetune_operator.api.contract import FailureKind


class Phase(StrEnum):
    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    EVALUATING = "Evaluating"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class Condition(StatusModel):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None
    observed_generation: int | None = None


class Progress(StatusModel):
    """Training progress, reported by the training pod."""

    stage: str | None = None
    """Training or Evaluating."""
    step: int | None = None
    total_steps: int | None = None
    epoch: float | None = None
    percent: int | None = None
    updated_at: str | None = None
    estimated_seconds_remaining: int | None = None
    """Seconds of training left at the recent pace (the trainer's estimate; absent outside training)."""


class Metrics(StatusModel):
    """Latest training and evaluation metrics."""

    train_loss: float | None = None
    eval_loss: float | None = None
    perplexity: float | None = None
    learning_rate: float | None = None
    tokens_per_second: float | None = None
    eval_exact_match: float | None = None
    eval_token_f1: float | None = None
    best_eval_loss: float | None = None
    """The lowest eval loss of the evaluations during training (spec.evaluation.evalsPerEpoch)."""
    best_eval_step: int | None = None
    """The step of that evaluation; with earlyStopping its checkpoint became the model."""


class RejectedCounts(StatusModel):
    """Sessions dropped by curation, by reason."""

    malformed: int = 0
    low_success: int = 0
    duplicate: int = 0
    too_long: int = 0
    empty: int = 0


class DatasetStatus(StatusModel):
    """What curation produced (the full manifest is dataset/manifest.json in the workspace)."""

    source_files: int | None = None
    source_records: int | None = None
    samples: int | None = None
    train_samples: int | None = None
    eval_samples: int | None = None
    sha256: str | None = None
    rejected: RejectedCounts | None = None
    redactions: int | None = None


class ModelRef(StatusModel):
    """The registered model: a ModelVersion in the job's namespace."""

    name: str
    version: str
    model_version: str | None = None
    """Name of the ModelVersion object."""
    uri: str | None = None


class CheckpointRef(StatusModel):
    """Latest complete checkpoint in the workspace."""

    path: str | None = None
    step: int | None = None


class FineTuningJobStatus(StatusModel):
    """Observed state of the job, maintained by the operator (and progress by the training pod)."""

    phase: Phase | None = None
    reason: str | None = None
    message: str | None = None
    failure_kind: FailureKind | None = None
    observed_generation: int | None = None
    start_time: str | None = None
    completion_time: str | None = None
    # A map keyed by type, so server-side apply merges conditions instead of replacing the whole list.
    conditions: list[Condition] | None = Field(
        default=None,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    progress: Progress | None = None
    metrics: Metrics | None = None
    dataset: DatasetStatus | None = None
    model: ModelRef | None = None
    checkpoint: CheckpointRef | None = None
    attempts: int | None = None
    """Training attempts started (evictions and preemptions included)."""
    training_pods: list[str] | None = None
    """Names of the training pods started so far (the latest 20): one per attempt."""
