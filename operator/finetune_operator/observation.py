"""What one reconciliation saw of a job and its children (`Observed`), and what it decided (`Decision`, `Action`).

Plain data, shared by the pure lifecycle (`lifecycle.derive`), the status writer and the reconciler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from finetune_operator.api import FailureKind, Phase
from finetune_operator.api.jobconfig import Champion
from finetune_operator.api.termination import TerminationMessage


class StorageState(StrEnum):
    ABSENT = "Absent"
    PENDING = "Pending"
    BOUND = "Bound"
    LOST = "Lost"


class SourceState(StrEnum):
    AVAILABLE = "Available"
    MISSING = "Missing"


class WorkloadPhase(StrEnum):
    """The state of a batch/v1 Job and its pods, as far as the lifecycle cares."""

    ABSENT = "Absent"
    SUSPENDED = "Suspended"  # Kueue has not admitted it
    UNSCHEDULABLE = "Unschedulable"  # a pod waits for capacity
    STARTING = "Starting"  # created or scheduled, not running yet
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class WorkloadState:
    """One child workload. `result` is the parsed termination message of its last finished container."""

    phase: WorkloadPhase = WorkloadPhase.ABSENT
    message: str = ""
    job_reason: str | None = None  # reason of the Job's Failed condition, e.g. BackoffLimitExceeded
    exit_code: int | None = None
    container_reason: str | None = None  # e.g. OOMKilled, Error
    image_pull_error: str | None = None  # set when a container cannot pull its image
    result: TerminationMessage = field(default_factory=TerminationMessage)
    attempts: int = 0
    attempt_ids: tuple[str, ...] = field(default=(), compare=False)  # every pod seen now, for attempt counting
    active: bool = False  # pods still running or pending
    disrupted: bool = False  # a multi-node group stopped by an eviction, preemption or lost node
    # Fewer pods exist than the workload runs at once, while it should be running them: the Job controller may be
    # unable to create them (Pod Security, a quota, a LimitRange, a policy), which only its FailedCreate Events say.
    pods_missing: bool = False


ABSENT = WorkloadState()


@dataclass(frozen=True)
class Observed:
    """Everything `derive` needs; built by the operator from the cluster, built by hand in tests."""

    phase: Phase | None = None
    job_name: str = "<job>"
    namespace: str = "<namespace>"
    """Who the job is: the messages name its objects and the commands to look at them."""
    cancel: bool = False
    storage: StorageState = StorageState.ABSENT
    source: SourceState = SourceState.AVAILABLE
    source_missing_seconds: float = 0.0
    source_wait_seconds: float = 300.0
    source_description: str = "the dataset source"
    curation: WorkloadState = ABSENT
    training: WorkloadState = ABSENT
    trainer_stage: str | None = None
    max_eval_loss: float | None = None
    min_tool_call_accuracy: float | None = None
    model_registered: bool = False
    model_store: str | None = None  # spec.output.pvc
    model_store_missing: bool = False
    publish: WorkloadState = ABSENT  # the copy to the model store
    version_conflict: str | None = None
    champion_problem: str | None = None  # evaluation.compareTo names a version that cannot be compared
    # The version evaluation.compareTo names, read while no training workload exists: the one to beat, fixed
    # when training starts (every retry of the training Job compares against it).
    champion: Champion | None = None
    capacity_blocked: str | None = None
    queue_name: str | None = None
    admission_message: str | None = None  # Kueue's reason for not admitting the training workload (yet)
    # How long the suspended training Job has existed with no Kueue Workload (0 once Kueue created one): Kueue
    # creates it at once, so a long wait means no Kueue controller acts on the Job.
    no_kueue_workload_seconds: float = 0.0
    kueue_workload_wait_seconds: float = 60.0
    gpus: int = 0
    gpu_resource_name: str = "nvidia.com/gpu"
    nodes: int = 1  # spec.resources.nodes: more than 1 trains as a group that the operator restarts as a whole
    backoff_limit: int = 2
    retried_attempts: tuple[str, ...] = ()  # status.retriedAttempts: group attempts that used a retry


class Action(StrEnum):
    PREPARE = "Prepare"  # workspace PVC, config ConfigMap, trainer ServiceAccount and Role
    CREATE_CURATION = "CreateCuration"
    CREATE_TRAINING = "CreateTraining"
    CREATE_PUBLISH = "CreatePublish"  # the copy of the model to the model store
    REGISTER_MODEL = "RegisterModel"
    STOP_WORKLOADS = "StopWorkloads"
    RESTART_TRAINING = "RestartTraining"  # delete a failed multi-node group's Job; it is created again once gone


@dataclass(frozen=True)
class Decision:
    phase: Phase
    reason: str
    message: str
    failure_kind: FailureKind | None = None
    dataset_ready: bool = False
    training_active: bool = False
    actions: frozenset[Action] = frozenset()
    retried_attempt: str | None = None  # a failed group attempt that uses one of runPolicy.backoffLimit's retries


# ---------------------------------------------------------------------------------------- derivation
