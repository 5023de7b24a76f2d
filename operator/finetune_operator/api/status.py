"""The FineTuningJob status: what the operator (and, for progress, the training pod) reports."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from finetune_operator.api.base import DateTime, StatusModel
from finetune_operator.api.contract import FailureKind
from finetune_operator.api.tracking import TrackingStatus

# Bounds on what the status may hold: every copy the operator keeps of a job (watch index, our last write) is
# at most this big, whoever writes the status. The operator cuts its own messages to MESSAGE_LIMIT (`bounded`).
REASON_LIMIT = 256
MESSAGE_LIMIT = 4096
CONDITION_MESSAGE_LIMIT = 1024
MAX_CONDITIONS = 16
MAX_RECORDED_PODS = 20
_ELLIPSIS = "…"


def bounded(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """`message` cut to `limit` characters, marked with an ellipsis when cut."""
    return message if len(message) <= limit else message[: limit - 1] + _ELLIPSIS


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

    type: str = Field(max_length=316)
    status: Literal["True", "False", "Unknown"]
    reason: str | None = Field(default=None, max_length=REASON_LIMIT)
    message: str | None = Field(default=None, max_length=CONDITION_MESSAGE_LIMIT)
    """The first 1,024 characters of status.message, on the condition that is True."""
    last_transition_time: DateTime | None = None
    observed_generation: int | None = None


class Progress(StatusModel):
    """Progress, reported by the curation pod and then by the training pod."""

    stage: str | None = Field(default=None, max_length=64)
    """Downloading, Curating, Training or Evaluating (Done once the job completed)."""
    step: int | None = None
    total_steps: int | None = None
    epoch: float | None = None
    percent: int | None = None
    updated_at: DateTime | None = None
    estimated_seconds_remaining: int | None = None
    """Seconds of the download, curation or training left at the recent pace (absent outside those stages)."""
    records_read: int | None = None
    """Curation: session records read so far (their total is known only at the end)."""
    source_bytes_read: int | None = None
    """Curation: bytes of the source files read so far; `percent` is their share of sourceBytes."""
    source_bytes: int | None = None
    """Curation: the size of all source files."""
    downloading: str | None = Field(default=None, max_length=64)
    """Downloading: what comes from object storage, `dataset.source.s3` (curation) or `baseModel.s3` (training)."""
    downloaded_bytes: int | None = None
    """Downloading: bytes in the workspace so far, those a retried pod found already downloaded included; `percent`
    is their share of downloadBytes. The last download's figures stay once the next stage reports."""
    download_bytes: int | None = None
    """Downloading: the size of every object to download."""


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
    champion_eval_loss: float | None = None
    """With evaluation.compareTo: the alias's version's loss on this job's held-out split."""
    candidate_eval_loss: float | None = None
    """With evaluation.compareTo: this job's model's loss on the same batches, measured the same way."""
    tool_call_accuracy: float | None = None
    """Chat datasets: on the held-out assistant turns that called tools, the share of those calls whose function
    the model called when generating from the conversation so far (evaluation.minToolCallAccuracy gates it)."""
    tool_call_arguments_match: float | None = None
    """Chat datasets: the share of those calls made with exactly the session's arguments (as parsed JSON)."""
    tool_calls_scored: int | None = None
    """Chat datasets: how many held-out tool calls the two figures above are measured on."""


class RejectedCounts(StatusModel):
    """Sessions dropped by curation, by reason."""

    malformed: int = 0
    low_success: int = 0
    duplicate: int = 0
    too_long: int = 0
    empty: int = 0
    orphan_tool_result: int | None = None
    """Chat format (absent in instruction format): a tool message that answers no earlier call."""
    unanswered_tool_call: int | None = None
    """Chat format: a tool call no tool message answers."""
    invalid_tool_arguments: int | None = None
    """Chat format: tool-call arguments that are not a JSON object."""
    unknown_tool: int | None = None
    """Chat format: a call to a function the session's tools do not define."""
    not_ending_with_assistant: int | None = None
    """Chat format: a conversation whose last message is not the assistant's."""


class DatasetStatus(StatusModel):
    """What curation produced (the full manifest is dataset/manifest.json in the workspace)."""

    source_files: int | None = None
    source_records: int | None = None
    samples: int | None = None
    train_samples: int | None = None
    eval_samples: int | None = None
    sha256: str | None = Field(default=None, max_length=64)
    rejected: RejectedCounts | None = None
    redactions: int | None = None


class ModelRef(StatusModel):
    """The registered model: a ModelVersion in the job's namespace."""

    name: str = Field(max_length=63)
    version: str = Field(max_length=128)
    model_version: str | None = Field(default=None, max_length=253)
    """Name of the ModelVersion object."""
    uri: str | None = Field(default=None, max_length=4096)


class CheckpointRef(StatusModel):
    """Latest complete checkpoint in the workspace."""

    path: str | None = Field(default=None, max_length=4096)
    step: int | None = None


class MemoryPlan(StatusModel):
    """The trainer's per-GPU memory estimate (docs/trainer.md, Memory plan), made before it loads the weights and
    reported with its first training report (at once when the job does not fit)."""

    estimated_gib: float | None = None
    """Estimated peak memory per GPU (weights, gradients, optimizer state, activations, allowance), in GiB."""
    device_gib: float | None = None
    """Memory of the training GPU in GiB; absent on CPU, where nothing is refused."""
    weights_gib: float | None = None
    """Model weights per GPU (quantized where training.quantization says so), LoRA adapter included, in GiB."""
    optimizer_gib: float | None = None
    """Optimizer state and gradients per GPU, in GiB."""
    activations_gib: float | None = None
    """Activations kept for the backward pass and the logits of one micro-batch, in GiB."""
    gradient_checkpointing: bool | None = None
    """Whether the estimate (and the run) recomputes activations: training.gradientCheckpointing as resolved
    (unset on GPUs: chosen from the GPU's memory, see choice)."""
    checkpoint_every_layers: int | None = Field(default=None, ge=1)
    """With gradientCheckpointing: every n-th decoder layer recomputes its activations (1: every layer, 2: every
    other layer)."""
    batch_size: int | None = Field(default=None, ge=1)
    """Micro-batch per GPU as run: training.batchSize, or with it unset on GPUs the default lowered to fit."""
    gradient_accumulation_steps: int | None = Field(default=None, ge=1)
    """Micro-batches per optimizer step as run: raised with a lowered micro-batch to keep the rows per step."""
    choice: str | None = Field(default=None, max_length=512)
    """What the trainer chose from the GPU's memory where the spec left it open, and the estimate it fits in."""
    shards: int | None = Field(default=None, ge=1)
    """Ranks the weights, gradients and optimizer state are sharded across (training.sharding fsdp as resolved);
    1: every GPU holds all of them."""


class FineTuningJobStatus(StatusModel):
    """Observed state of the job, maintained by the operator (and progress by the training pod)."""

    phase: Phase | None = None
    reason: str | None = Field(default=None, max_length=REASON_LIMIT)
    message: str | None = Field(default=None, max_length=MESSAGE_LIMIT)
    failure_kind: FailureKind | None = None
    observed_generation: int | None = None
    start_time: DateTime | None = None
    completion_time: DateTime | None = None
    # A map keyed by type, so server-side apply merges conditions instead of replacing the whole list.
    conditions: list[Condition] | None = Field(
        default=None,
        max_length=MAX_CONDITIONS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    progress: Progress | None = None
    metrics: Metrics | None = None
    dataset: DatasetStatus | None = None
    model: ModelRef | None = None
    checkpoint: CheckpointRef | None = None
    memory_plan: MemoryPlan | None = None
    attempts: int | None = None
    """Training attempts started (evictions and preemptions included)."""
    tracking: TrackingStatus | None = None
    """The job's experiment-tracking runs (spec.tracking), with any tracking error."""
    training_pods: list[Annotated[str, Field(max_length=253)]] | None = Field(
        default=None, max_length=MAX_RECORDED_PODS
    )
    """Names of the training pods started so far (the latest 20): one per attempt. A multi-node job records one
    entry per group attempt instead: its Job's name and the first 8 characters of that Job's uid."""
    retried_attempts: list[Annotated[str, Field(max_length=253)]] | None = Field(
        default=None, max_length=MAX_RECORDED_PODS + 1
    )
    """Multi-node jobs: the group attempts (as in trainingPods) whose failure used one of runPolicy.backoffLimit's
    retries; a group stopped by an eviction or a preemption uses none."""
