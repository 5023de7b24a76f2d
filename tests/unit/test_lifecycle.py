"""Exhaustive tests of the pure FineTuningJob lifecycle: the transition table, `derive`, and conditions.

The expected values are written out here by hand, never computed from the module under test, so a change to
the table or to a derivation rule fails a test instead of silently moving the expectation along with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from finetune_operator.api import FailureKind, Phase
from finetune_operator.api.termination import TerminationMessage
from finetune_operator.lifecycle import ALLOWED_TRANSITIONS, TERMINAL_PHASES, derive, is_allowed
from finetune_operator.observation import (
    Action,
    Decision,
    Observed,
    SourceState,
    StorageState,
    WorkloadPhase,
    WorkloadState,
)
from finetune_operator.status import merge_conditions


def tm(message: Mapping[str, Any]) -> TerminationMessage:
    """A termination message as the operator reads it."""
    return TerminationMessage.parse(json.dumps(message))


P, Q, R, E, C, F, X = (
    Phase.PENDING,
    Phase.QUEUED,
    Phase.RUNNING,
    Phase.EVALUATING,
    Phase.COMPLETED,
    Phase.FAILED,
    Phase.CANCELLED,
)
ALL_PHASES = (P, Q, R, E, C, F, X)

# ------------------------------------------------------------------------------------ transition table

# Rows are the source phase, columns the target phase, in the order of ALL_PHASES. "Y" = allowed.
#                               Pending Queued Running Evaluating Completed Failed Cancelled
_TABLE: dict[Phase, str] = {
    Phase.PENDING: "Y Y Y Y Y Y Y",
    Phase.QUEUED: "N Y Y Y Y Y Y",
    Phase.RUNNING: "N Y Y Y Y Y Y",  # Running -> Queued: eviction/preemption requeue
    Phase.EVALUATING: "N Y Y Y Y Y Y",  # Evaluating -> Queued/Running: requeue
    Phase.COMPLETED: "N N N N Y N N",
    Phase.FAILED: "N N N N N Y N",
    Phase.CANCELLED: "N N N N N N Y",
}
EXPECTED_TRANSITIONS: list[tuple[Phase, Phase, bool]] = [
    (source, target, flag == "Y")
    for source, row in _TABLE.items()
    for target, flag in zip(ALL_PHASES, row.split(), strict=True)
]
_TRANSITION_IDS = [f"{s}->{t}" for s, t, _ in EXPECTED_TRANSITIONS]


def test_expected_table_covers_all_49_pairs() -> None:
    assert len(EXPECTED_TRANSITIONS) == 49
    assert len({(s, t) for s, t, _ in EXPECTED_TRANSITIONS}) == 49
    assert set(Phase) == set(ALL_PHASES)


@pytest.mark.parametrize(("source", "target", "allowed"), EXPECTED_TRANSITIONS, ids=_TRANSITION_IDS)
def test_is_allowed_matches_the_table(source: Phase, target: Phase, allowed: bool) -> None:
    assert is_allowed(source, target) is allowed


@pytest.mark.parametrize("target", ALL_PHASES)
def test_a_new_job_may_start_in_any_phase(target: Phase) -> None:
    assert is_allowed(None, target)


def test_terminal_phases_are_exactly_completed_failed_cancelled() -> None:
    assert frozenset({C, F, X}) == TERMINAL_PHASES
    for phase in TERMINAL_PHASES:
        assert ALLOWED_TRANSITIONS[phase] == frozenset()


# ------------------------------------------------------------------------------------------- derive

SAMPLES = {"outcome": "Succeeded", "dataset": {"samples": 120, "trainSamples": 114, "evalSamples": 6}}
CURATED = WorkloadState(WorkloadPhase.SUCCEEDED, result=tm(SAMPLES), attempts=1)
NONE: frozenset[Action] = frozenset()
PREPARE = frozenset({Action.PREPARE})
STOP = frozenset({Action.STOP_WORKLOADS})


def job(**changes: Any) -> Observed:
    """A job whose workspace is bound and whose source exists; `changes` override any field."""
    return replace(Observed(phase=Phase.PENDING, storage=StorageState.BOUND), **changes)


def trained(**changes: Any) -> Observed:
    """A curated job; `changes` override any field (typically `training`)."""
    return job(**{"phase": Phase.RUNNING, "curation": CURATED, **changes})


def w(phase: WorkloadPhase, **changes: Any) -> WorkloadState:
    return WorkloadState(phase=phase, **changes)


_MISSING = object()


def succeeded(eval_loss: Any = 1.5) -> WorkloadState:
    metrics = {} if eval_loss is _MISSING else {"evalLoss": eval_loss, "trainLoss": 1.2}
    return w(WorkloadPhase.SUCCEEDED, result=tm({"outcome": "Succeeded", "metrics": metrics}))


def tool_calls_scored(accuracy: float) -> WorkloadState:
    metrics = {"evalLoss": 1.5, "toolCallAccuracy": accuracy, "toolCallArgumentsMatch": 0.25, "toolCallsScored": 8}
    return w(WorkloadPhase.SUCCEEDED, result=tm({"outcome": "Succeeded", "metrics": metrics}))


OOM = w(WorkloadPhase.FAILED, container_reason="OOMKilled", exit_code=137, job_reason="BackoffLimitExceeded")
UNSCHEDULABLE_MSG = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."


@dataclass(frozen=True)
class Expect:
    phase: Phase
    reason: str
    kind: FailureKind | None = None
    actions: frozenset[Action] = NONE
    message_has: tuple[str, ...] = ()
    message: str | None = None  # exact, when given
    dataset_ready: bool | None = None
    training_active: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


DERIVE_CASES = [
    # --- a new job and its workspace
    pytest.param(Observed(), Expect(P, "Creating", actions=PREPARE, dataset_ready=False), id="new-job-prepares"),
    pytest.param(job(storage=StorageState.ABSENT), Expect(P, "Creating", actions=PREPARE), id="pending-no-pvc"),
    pytest.param(
        job(storage=StorageState.PENDING),
        Expect(P, "CurationStarting", actions=PREPARE | {Action.CREATE_CURATION}),
        id="storage-pending-creates-curation-consumer",
    ),
    pytest.param(
        job(storage=StorageState.PENDING, curation=w(WorkloadPhase.STARTING, active=True)),
        Expect(
            P,
            "CurationStarting",
            message="waiting for the workspace volume <job>-workspace to bind; "
            "see kubectl describe pvc -n <namespace> <job>-workspace",
        ),
        id="storage-pending-curation-waits",
    ),
    pytest.param(
        job(storage=StorageState.LOST),
        Expect(F, "StorageLost", FailureKind.SYSTEM, message_has=("PersistentVolumeClaim",)),
        id="storage-lost",
    ),
    pytest.param(
        trained(storage=StorageState.LOST, training=w(WorkloadPhase.RUNNING, active=True)),
        Expect(F, "StorageLost", FailureKind.SYSTEM),
        id="storage-lost-while-training",
    ),
    # --- the dataset source
    pytest.param(
        job(source=SourceState.MISSING, source_missing_seconds=10, source_description="ConfigMap sessions to exist"),
        Expect(
            P,
            "SourceNotFound",
            actions=PREPARE,
            message="waiting for ConfigMap sessions to exist (spec.dataset.source)",
        ),
        id="source-missing-within-wait",
    ),
    pytest.param(
        job(source=SourceState.MISSING, source_missing_seconds=299.9, source_wait_seconds=300),
        Expect(P, "SourceNotFound", actions=PREPARE),
        id="source-missing-just-before-wait",
    ),
    pytest.param(
        job(source=SourceState.MISSING, source_missing_seconds=300, source_wait_seconds=300),
        Expect(F, "SourceNotFound", FailureKind.USER, message_has=("after 300s", "spec.dataset.source")),
        id="source-missing-at-wait",
    ),
    pytest.param(
        job(
            source=SourceState.MISSING,
            source_missing_seconds=900,
            source_wait_seconds=60,
            source_description="PVC agent-logs to exist",
        ),
        Expect(
            F, "SourceNotFound", FailureKind.USER, message_has=("gave up waiting for PVC agent-logs to exist", "60s")
        ),
        id="source-missing-after-wait",
    ),
    pytest.param(
        job(
            source=SourceState.MISSING,
            source_missing_seconds=900,
            curation=w(WorkloadPhase.RUNNING, active=True),
        ),
        Expect(R, "Curating"),
        id="source-gone-after-curation-started-is-ignored",
    ),
    # --- curation
    pytest.param(
        job(),
        Expect(P, "CurationStarting", actions=PREPARE | {Action.CREATE_CURATION}, dataset_ready=False),
        id="curation-absent-creates-it",
    ),
    pytest.param(
        job(curation=w(WorkloadPhase.STARTING, active=True)),
        Expect(
            P,
            "CurationStarting",
            message="curation pod starting; see kubectl describe pods -n <namespace> -l finetune.dev/job=job",
        ),
        id="curation-starting",
    ),
    pytest.param(
        job(curation=w(WorkloadPhase.STARTING, message="pulling image", active=True)),
        Expect(P, "CurationStarting", message="pulling image"),
        id="curation-starting-with-pod-message",
    ),
    pytest.param(
        job(curation=w(WorkloadPhase.UNSCHEDULABLE, message="Insufficient cpu", active=True)),
        Expect(P, "CurationStarting", message="Insufficient cpu"),
        id="curation-unschedulable",
    ),
    pytest.param(
        job(curation=w(WorkloadPhase.RUNNING, active=True)),
        Expect(R, "Curating", actions=NONE, dataset_ready=False, training_active=False),
        id="curation-running",
    ),
    pytest.param(
        job(
            curation=w(
                WorkloadPhase.FAILED,
                exit_code=10,
                result=tm(
                    {
                        "outcome": "Failed",
                        "reason": "NoSamplesAfterCuration",
                        "failureKind": "User",
                        "message": "0 of 1200 sessions survived curation",
                    }
                ),
            )
        ),
        Expect(F, "NoSamplesAfterCuration", FailureKind.USER, message="0 of 1200 sessions survived curation"),
        id="curation-failed-termination-message",
    ),
    pytest.param(
        job(
            curation=w(
                WorkloadPhase.FAILED,
                exit_code=20,
                result=tm(
                    {
                        "outcome": "Failed",
                        "reason": "InternalError",
                        "failureKind": "System",
                        "message": "boom",
                    }
                ),
            )
        ),
        Expect(F, "InternalError", FailureKind.SYSTEM, message="boom"),
        id="curation-failed-internal-error-message",
    ),
    pytest.param(
        job(curation=w(WorkloadPhase.FAILED, exit_code=10)),
        Expect(
            F,
            "CurationFailed",
            FailureKind.USER,
            message="the session data could not be curated (unreadable, too many malformed lines, no dataset): "
            "fix the session files named in the message; the dataset manifest lists rejected lines (exit code 10)",
            dataset_ready=False,
        ),
        id="curation-failed-exit-10-no-message",
    ),
    pytest.param(
        job(
            curation=w(
                WorkloadPhase.FAILED,
                exit_code=13,
                result=tm(
                    {
                        "outcome": "Failed",
                        "reason": "StorageFull",
                        "failureKind": "User",
                        "message": "the workspace volume is full (...) while writing the dataset",
                    }
                ),
            )
        ),
        Expect(
            F,
            "StorageFull",
            FailureKind.USER,
            message="the workspace volume is full (...) while writing the dataset",
            dataset_ready=False,
        ),
        id="curation-storage-full",
    ),
    pytest.param(
        job(curation=w(WorkloadPhase.FAILED, exit_code=10, message="too many malformed lines")),
        Expect(
            F,
            "CurationFailed",
            FailureKind.USER,
            message="the session data could not be curated (unreadable, too many malformed lines, no dataset): "
            "fix the session files named in the message; the dataset manifest lists rejected lines "
            "(too many malformed lines)",
        ),
        id="curation-failed-exit-10-pod-message",
    ),
    pytest.param(
        job(curation=w(WorkloadPhase.FAILED)),
        Expect(
            F,
            "CurationFailed",
            FailureKind.SYSTEM,
            message="the workload failed before a container ended; see kubectl logs -n <namespace> job/<job>-curate",
        ),
        id="curation-failed-nothing-known",
    ),
    pytest.param(
        job(curation=w(WorkloadPhase.FAILED, exit_code=20, job_reason="BackoffLimitExceeded")),
        Expect(
            F,
            "BackoffLimitExceeded",
            FailureKind.SYSTEM,
            message="the last container exited with code 20 and wrote no termination message; "
            "see kubectl logs -n <namespace> job/<job>-curate",
        ),
        id="curation-backoff-limit",
    ),
    pytest.param(
        job(curation=OOM),
        Expect(F, "OOMKilled", FailureKind.USER, message_has=("raise resources.memory",)),
        id="curation-oomkilled",
    ),
    pytest.param(
        job(curation=w(WorkloadPhase.STARTING, image_pull_error="ErrImagePull: ghcr.io/x:bad", active=True)),
        Expect(F, "ImagePullFailed", FailureKind.SYSTEM, actions=STOP, message_has=("ghcr.io/x:bad",)),
        id="curation-image-pull",
    ),
    pytest.param(
        job(curation=replace(CURATED, result=tm({"outcome": "Succeeded", "dataset": {"samples": 0}}))),
        Expect(F, "NoSamplesAfterCuration", FailureKind.USER, message_has=("status.dataset.rejected",)),
        id="curation-succeeded-zero-samples",
    ),
    # --- training: creation and waiting for capacity
    pytest.param(
        trained(),
        Expect(
            R,
            "TrainingStarting",
            actions=frozenset({Action.CREATE_TRAINING}),
            dataset_ready=True,
            training_active=False,
        ),
        id="training-absent-creates-it",
    ),
    pytest.param(
        job(curation=CURATED),
        Expect(R, "TrainingStarting", actions=frozenset({Action.CREATE_TRAINING})),
        id="curated-from-pending-skips-to-running",
    ),
    pytest.param(
        trained(capacity_blocked="3 jobs already train in namespace ml (limit 3)"),
        Expect(
            Q,
            "ConcurrencyLimit",
            message="3 jobs already train in namespace ml (limit 3)",
            dataset_ready=True,
        ),
        id="concurrency-limit",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.SUSPENDED), queue_name="team-a"),
        Expect(Q, "WaitingForAdmission", message="waiting for Kueue admission in LocalQueue team-a"),
        id="kueue-suspended-named-queue",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.SUSPENDED, message="quota exceeded"), queue_name="team-a"),
        Expect(
            Q,
            "WaitingForAdmission",
            message="waiting for Kueue admission in LocalQueue team-a: quota exceeded",
        ),
        id="kueue-suspended-with-message",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.SUSPENDED)),
        Expect(Q, "WaitingForAdmission", message="waiting for Kueue admission in its queue"),
        id="kueue-suspended-no-queue-name",
    ),
    pytest.param(
        trained(
            training=w(WorkloadPhase.SUSPENDED, message="Job suspended"),
            queue_name="team-a",
            admission_message="couldn't assign flavors to pod set main: insufficient unused quota",
        ),
        Expect(
            Q,
            "WaitingForAdmission",
            message="waiting for Kueue admission in LocalQueue team-a: "
            "couldn't assign flavors to pod set main: insufficient unused quota",
        ),
        id="kueue-suspended-with-kueues-own-reason",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.SUSPENDED), queue_name="team-a", no_kueue_workload_seconds=59.9),
        Expect(Q, "WaitingForAdmission", message="waiting for Kueue admission in LocalQueue team-a"),
        id="kueue-no-workload-yet-within-the-bound",
    ),
    pytest.param(
        trained(
            job_name="tune",
            namespace="ml",
            training=w(WorkloadPhase.SUSPENDED),
            queue_name="team-a",
            no_kueue_workload_seconds=60.0,
        ),
        Expect(
            Q,
            "NoKueueWorkload",
            message_has=(
                "Kueue created no Workload for training Job tune-train in 60s: is Kueue installed and running?",
                "LocalQueue team-a",
                "namespace ml",
                "stays Queued",
            ),
            dataset_ready=True,
        ),
        id="kueue-no-workload-past-the-bound-still-waits",
    ),
    pytest.param(
        trained(
            job_name="tune",
            training=w(WorkloadPhase.SUSPENDED),
            queue_name="team-a",
            nodes=2,
            no_kueue_workload_seconds=600.0,
            kueue_workload_wait_seconds=30.0,
        ),
        Expect(Q, "NoKueueWorkload", message_has=("training Job tune-train in 30s",)),
        id="kueue-no-workload-multi-node-names-the-group-job",
    ),
    pytest.param(
        trained(
            training=w(WorkloadPhase.SUSPENDED),
            queue_name="team-a",
            no_kueue_workload_seconds=600.0,
            kueue_workload_wait_seconds=0.0,
        ),
        Expect(Q, "WaitingForAdmission"),
        id="kueue-no-workload-check-off",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.UNSCHEDULABLE, message=UNSCHEDULABLE_MSG, active=True), gpus=2),
        Expect(Q, "WaitingForCapacity", message=f"waiting for 2 nvidia.com/gpu: {UNSCHEDULABLE_MSG}"),
        id="unschedulable-gpus",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.UNSCHEDULABLE), gpus=4, gpu_resource_name="amd.com/gpu"),
        Expect(Q, "WaitingForCapacity", message="waiting for 4 amd.com/gpu", dataset_ready=True),
        id="unschedulable-custom-resource",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.UNSCHEDULABLE, message="Insufficient memory")),
        Expect(Q, "WaitingForCapacity", message="waiting for CPU and memory: Insufficient memory"),
        id="unschedulable-cpu-only",
    ),
    # --- training in progress
    pytest.param(
        trained(training=w(WorkloadPhase.STARTING, active=True)),
        Expect(R, "TrainingStarting", actions=NONE, dataset_ready=True, training_active=True),
        id="training-starting",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.RUNNING, active=True)),
        Expect(R, "Training", dataset_ready=True, training_active=True),
        id="training-running",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.RUNNING, active=True), trainer_stage="Training"),
        Expect(R, "Training", training_active=True),
        id="training-running-stage-training",
    ),
    pytest.param(
        trained(phase=Phase.QUEUED, training=w(WorkloadPhase.RUNNING, active=True)),
        Expect(R, "Training"),
        id="admitted-queued-to-running",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.RUNNING, active=True), trainer_stage="Evaluating"),
        Expect(E, "Evaluating", dataset_ready=True, training_active=True),
        id="trainer-stage-evaluating",
    ),
    # --- training succeeded: gate and registration
    pytest.param(
        trained(training=succeeded(1.5), max_eval_loss=2.0),
        Expect(E, "Registering", actions=frozenset({Action.REGISTER_MODEL}), dataset_ready=True),
        id="gate-passed-registers",
    ),
    pytest.param(
        trained(training=succeeded(2.0), max_eval_loss=2.0),
        Expect(E, "Registering", actions=frozenset({Action.REGISTER_MODEL})),
        id="gate-passed-at-threshold",
    ),
    pytest.param(
        trained(training=succeeded(_MISSING)),
        Expect(E, "Registering", actions=frozenset({Action.REGISTER_MODEL})),
        id="no-gate-registers",
    ),
    pytest.param(
        trained(training=succeeded(2.5), max_eval_loss=2.0),
        Expect(
            F,
            "EvaluationGateFailed",
            FailureKind.USER,
            message_has=("2.5", "maxEvalLoss 2.0"),
            dataset_ready=True,
        ),
        id="gate-failed",
    ),
    pytest.param(
        trained(training=succeeded(_MISSING), max_eval_loss=2.0),
        Expect(F, "EvaluationGateFailed", FailureKind.USER),
        id="gate-without-eval-loss-fails",
    ),
    pytest.param(
        trained(training=succeeded(float("nan")), max_eval_loss=2.0),
        Expect(F, "EvaluationGateFailed", FailureKind.USER, message_has=("nan",)),
        id="gate-nan-eval-loss-fails",
    ),
    pytest.param(
        trained(training=tool_calls_scored(0.75), min_tool_call_accuracy=0.7),
        Expect(E, "Registering", actions=frozenset({Action.REGISTER_MODEL}), dataset_ready=True),
        id="tool-call-gate-passed-registers",
    ),
    pytest.param(
        trained(training=tool_calls_scored(0.5), min_tool_call_accuracy=0.7, max_eval_loss=1.0),
        Expect(
            F,
            "EvaluationGateFailed",
            FailureKind.USER,
            message_has=(
                "evalLoss 1.5 > evaluation.maxEvalLoss 1.0",
                "toolCallAccuracy 0.5 < evaluation.minToolCallAccuracy 0.7",
            ),
            dataset_ready=True,
        ),
        id="both-gates-failed-both-named",
    ),
    pytest.param(
        trained(training=succeeded(1.5), min_tool_call_accuracy=0.7),
        Expect(F, "EvaluationGateFailed", FailureKind.USER, message_has=("toolCallAccuracy None",)),
        id="tool-call-gate-without-figure-fails",
    ),
    pytest.param(
        trained(training=succeeded(1.5), max_eval_loss=2.0, model_registered=True),
        Expect(C, "ModelRegistered", actions=NONE, dataset_ready=True, training_active=False),
        id="model-registered-completes",
    ),
    pytest.param(
        trained(phase=Phase.EVALUATING, training=succeeded(1.5), model_registered=True),
        Expect(C, "ModelRegistered"),
        id="evaluating-to-completed",
    ),
    # --- training failed
    pytest.param(
        trained(training=OOM),
        Expect(
            F,
            "OOMKilled",
            FailureKind.USER,
            message_has=("out of memory", "raise resources.memory"),
            dataset_ready=True,
        ),
        id="training-oomkilled",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.FAILED, job_reason="DeadlineExceeded", message="Job was active too long")),
        Expect(
            F,
            "DeadlineExceeded",
            FailureKind.USER,
            message="runPolicy.activeDeadlineSeconds was exceeded: Job was active too long",
        ),
        id="deadline-exceeded",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.FAILED, job_reason="DeadlineExceeded")),
        Expect(F, "DeadlineExceeded", FailureKind.USER, message="runPolicy.activeDeadlineSeconds was exceeded"),
        id="deadline-exceeded-no-message",
    ),
    pytest.param(
        # runPolicy's deadline is the training Job's; curation has a fixed one of its own.
        job(curation=w(WorkloadPhase.FAILED, job_reason="DeadlineExceeded", message="Job was active too long")),
        Expect(F, "DeadlineExceeded", FailureKind.USER, message_has=("curation ran longer than its 24 h deadline",)),
        id="curation-deadline-exceeded",
    ),
    pytest.param(
        trained(
            training=w(
                WorkloadPhase.FAILED,
                job_reason="BackoffLimitExceeded",
                exit_code=20,
                message="Job has reached the specified backoff limit",
                attempts=4,
            )
        ),
        Expect(
            F,
            "BackoffLimitExceeded",
            FailureKind.SYSTEM,
            message="the last container exited with code 20 and wrote no termination message "
            "(Job has reached the specified backoff limit); see kubectl logs -n <namespace> job/<job>-train",
            dataset_ready=True,
        ),
        id="backoff-limit-exit-code-and-message",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.FAILED, exit_code=12)),
        Expect(
            F,
            "EvaluationGateFailed",
            FailureKind.USER,
            message="evalLoss is above evaluation.maxEvalLoss, or the held-out tool-call accuracy is below "
            "evaluation.minToolCallAccuracy (the message names the gate and the figures): the model is kept in the "
            "workspace; train longer or on more data, or relax the gate (exit code 12)",
        ),
        id="training-exit-12",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.FAILED, exit_code=11, message="model path not found")),
        Expect(
            F,
            "InvalidConfiguration",
            FailureKind.USER,
            message="exit 11 without a termination message (the operator's fallback for that code): read the "
            "training pod's log; fix spec.baseModel or spec.training in a new job (model path not found)",
        ),
        id="training-exit-11",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.FAILED, exit_code=1, message="Traceback")),
        Expect(
            F,
            "TrainingFailed",
            FailureKind.SYSTEM,
            message="the last container exited with code 1 and wrote no termination message (Traceback); "
            "see kubectl logs -n <namespace> job/<job>-train",
        ),
        id="training-failed-unknown-exit",
    ),
    pytest.param(
        trained(
            training=w(
                WorkloadPhase.FAILED,
                exit_code=11,
                result=tm(
                    {
                        "outcome": "Failed",
                        "reason": "CheckpointMismatch",
                        "failureKind": "User",
                        "message": "cfg",
                    }
                ),
            )
        ),
        Expect(F, "CheckpointMismatch", FailureKind.USER, message="cfg"),
        id="training-failed-termination-message",
    ),
    pytest.param(
        trained(
            training=w(
                WorkloadPhase.FAILED,
                exit_code=13,
                job_reason="PodFailurePolicy",
                result=tm(
                    {
                        "outcome": "Failed",
                        "reason": "StorageFull",
                        "failureKind": "User",
                        "message": "the workspace volume is full (...) while writing checkpoint-40",
                    }
                ),
            )
        ),
        Expect(
            F,
            "StorageFull",
            FailureKind.USER,
            message="the workspace volume is full (...) while writing checkpoint-40",
            dataset_ready=True,
        ),
        id="training-storage-full",
    ),
    pytest.param(
        trained(
            training=w(
                WorkloadPhase.FAILED,
                exit_code=13,
                job_reason="PodFailurePolicy",
                message="Container train for pod ml/demo-train-x failed with exit code 13 matching FailJob rule",
            )
        ),
        Expect(
            F,
            "StorageFull",
            FailureKind.USER,
            message=(
                "the workspace volume is full: raise spec.storage.size in a new job, or free space on the workspace "
                "PVC (Container train for pod ml/demo-train-x failed with exit code 13 matching FailJob rule)"
            ),
            dataset_ready=True,
        ),
        id="training-exit-13-without-termination-message",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.STARTING, image_pull_error="ImagePullBackOff: trainer:v9", active=True)),
        Expect(
            F,
            "ImagePullFailed",
            FailureKind.SYSTEM,
            actions=STOP,
            message_has=("trainer:v9", "spec.trainerImage"),
            dataset_ready=True,
        ),
        id="training-image-pull",
    ),
    pytest.param(
        trained(training=w(WorkloadPhase.UNSCHEDULABLE, image_pull_error="ErrImagePull: x", active=True)),
        Expect(F, "ImagePullFailed", FailureKind.SYSTEM, actions=STOP),
        id="image-pull-beats-unschedulable",
    ),
    # --- version conflict and cancellation
    pytest.param(
        trained(version_conflict="ModelVersion chat-1.2.0 already exists", training=succeeded(1.0)),
        Expect(F, "VersionExists", FailureKind.USER, message="ModelVersion chat-1.2.0 already exists"),
        id="version-conflict",
    ),
    pytest.param(
        trained(champion_problem="alias champion of model chat names version 9.0.0, which is not registered"),
        Expect(F, "ChampionUnavailable", FailureKind.USER, message_has=("9.0.0", "not registered")),
        id="champion-unavailable-before-training",
    ),
    pytest.param(
        trained(cancel=True, training=w(WorkloadPhase.RUNNING, active=True)),
        Expect(X, "Cancelled", actions=STOP, message_has=("spec.cancel", "kept")),
        id="cancel-active-training",
    ),
    pytest.param(
        job(cancel=True, curation=w(WorkloadPhase.RUNNING, active=True)),
        Expect(X, "Cancelled", actions=STOP),
        id="cancel-active-curation",
    ),
    pytest.param(
        trained(cancel=True, phase=Phase.QUEUED, training=w(WorkloadPhase.SUSPENDED)),
        Expect(X, "Cancelled", actions=NONE),
        id="cancel-nothing-active",
    ),
    pytest.param(Observed(cancel=True), Expect(X, "Cancelled", actions=NONE), id="cancel-new-job"),
    pytest.param(
        trained(cancel=True, version_conflict="exists"),
        Expect(X, "Cancelled"),
        id="cancel-beats-version-conflict",
    ),
    # --- terminal phases stay put
    pytest.param(
        trained(phase=Phase.COMPLETED, cancel=True, training=succeeded()),
        Expect(C, "", actions=NONE),
        id="completed-ignores-cancel",
    ),
    pytest.param(
        trained(phase=Phase.FAILED, training=w(WorkloadPhase.RUNNING, active=True)),
        Expect(F, "", actions=STOP),
        id="failed-stops-active-training",
    ),
    pytest.param(
        job(phase=Phase.FAILED, curation=w(WorkloadPhase.RUNNING, active=True)),
        Expect(F, "", actions=STOP),
        id="failed-stops-active-curation",
    ),
    pytest.param(
        trained(phase=Phase.CANCELLED, cancel=True, training=w(WorkloadPhase.RUNNING, active=True)),
        Expect(X, "", actions=STOP),
        id="cancelled-still-stops-active",
    ),
    pytest.param(
        trained(phase=Phase.CANCELLED, cancel=False, training=w(WorkloadPhase.SUSPENDED)),
        Expect(X, "", actions=NONE),
        id="cancelled-stays-after-uncancel",
    ),
    pytest.param(
        trained(phase=Phase.FAILED, storage=StorageState.ABSENT),
        Expect(F, "", actions=NONE),
        id="failed-does-not-recreate-workspace",
    ),
    pytest.param(
        Observed(phase=Phase.COMPLETED),
        Expect(C, "", actions=NONE),
        id="completed-does-not-prepare",
    ),
    # --- requeue after eviction
    pytest.param(
        trained(
            training=w(WorkloadPhase.UNSCHEDULABLE, message=UNSCHEDULABLE_MSG, active=True, attempts=1),
            gpus=1,
        ),
        Expect(Q, "WaitingForCapacity", message_has=("1 nvidia.com/gpu",)),
        id="evicted-running-requeues",
    ),
    pytest.param(
        trained(phase=Phase.EVALUATING, training=w(WorkloadPhase.UNSCHEDULABLE, active=True), gpus=1),
        Expect(Q, "WaitingForCapacity"),
        id="evicted-evaluating-requeues",
    ),
    pytest.param(
        trained(phase=Phase.EVALUATING, training=w(WorkloadPhase.STARTING, active=True)),
        Expect(R, "TrainingStarting", training_active=True),
        id="evicted-evaluating-restarts",
    ),
    # --- never backwards
    pytest.param(
        trained(storage=StorageState.ABSENT, training=w(WorkloadPhase.RUNNING, active=True)),
        Expect(R, "Creating", actions=PREPARE),
        id="running-storage-absent-stays-running",
    ),
    pytest.param(
        trained(phase=Phase.QUEUED, curation=WorkloadState()),
        Expect(Q, "CurationStarting", actions=PREPARE | {Action.CREATE_CURATION}),
        id="queued-curation-vanished-stays-queued",
    ),
    pytest.param(
        trained(phase=Phase.EVALUATING, curation=w(WorkloadPhase.STARTING)),
        Expect(E, "CurationStarting"),
        id="evaluating-curation-restarting-stays-evaluating",
    ),
    pytest.param(
        job(phase=Phase.RUNNING, source=SourceState.MISSING, source_missing_seconds=1),
        Expect(R, "SourceNotFound", actions=PREPARE),
        id="running-source-missing-stays-running",
    ),
    # --- the copy to the model store (spec.output.pvc) before registration
    pytest.param(
        trained(training=succeeded(1.0), model_store="store"),
        Expect(E, "Publishing", actions=frozenset({Action.CREATE_PUBLISH}), message_has=("store",)),
        id="store-copy-starts",
    ),
    pytest.param(
        trained(training=succeeded(1.0), model_store="store", model_store_missing=True),
        Expect(E, "ModelStoreNotFound", message_has=("store", "spec.output.pvc", "workspace")),
        id="store-missing-waits-with-its-reason",
    ),
    pytest.param(
        trained(training=succeeded(1.0), model_store="store", publish=w(WorkloadPhase.UNSCHEDULABLE, message="RWO")),
        Expect(E, "Publishing", message_has=("RWO",)),
        id="store-copy-waits-naming-the-cause",
    ),
    pytest.param(
        trained(training=succeeded(1.0), model_store="store", publish=w(WorkloadPhase.SUCCEEDED)),
        Expect(E, "Registering", actions=frozenset({Action.REGISTER_MODEL})),
        id="store-copied-registers",
    ),
    pytest.param(
        trained(
            training=succeeded(1.0),
            model_store="store",
            publish=w(
                WorkloadPhase.FAILED,
                result=tm(
                    {"outcome": "Failed", "reason": "ModelCopyFailed", "failureKind": "System", "message": "No space"}
                ),
            ),
        ),
        Expect(F, "ModelCopyFailed", FailureKind.SYSTEM, message_has=("No space",)),
        id="store-copy-failure-fails-with-its-message",
    ),
    pytest.param(
        trained(training=succeeded(1.0), model_store="store", publish=w(WorkloadPhase.FAILED, exit_code=137)),
        Expect(F, "ModelCopyFailed", FailureKind.SYSTEM, message_has=("store", "137", "kept")),
        id="store-copy-killed-fails",
    ),
    pytest.param(
        trained(training=succeeded(3.0), max_eval_loss=2.0, model_store="store"),
        Expect(F, "EvaluationGateFailed", FailureKind.USER),
        id="store-no-copy-when-the-gate-fails",
    ),
    # --- forward skips (the operator was down while children progressed)
    pytest.param(
        job(curation=CURATED, training=succeeded(1.0), model_registered=True),
        Expect(C, "ModelRegistered"),
        id="pending-skips-to-completed",
    ),
    pytest.param(
        trained(phase=Phase.QUEUED, training=w(WorkloadPhase.RUNNING, active=True), trainer_stage="Evaluating"),
        Expect(E, "Evaluating"),
        id="queued-skips-to-evaluating",
    ),
]


@pytest.mark.parametrize(("observed", "expect"), DERIVE_CASES)
def test_derive(observed: Observed, expect: Expect) -> None:
    decision = derive(observed)
    assert (decision.phase, decision.reason) == (expect.phase, expect.reason)
    assert decision.failure_kind is expect.kind
    assert decision.actions == expect.actions
    if expect.message is not None:
        assert decision.message == expect.message
    for fragment in expect.message_has:
        assert fragment in decision.message
    if expect.dataset_ready is not None:
        assert decision.dataset_ready is expect.dataset_ready
    if expect.training_active is not None:
        assert decision.training_active is expect.training_active


def test_derive_has_more_than_sixty_cases() -> None:
    assert len(DERIVE_CASES) >= 60


@pytest.mark.parametrize("current", [None, *ALL_PHASES], ids=lambda p: str(p))
def test_derive_never_breaks_the_table_from_any_phase(current: Phase | None) -> None:
    """Replaying every scenario from every current phase must yield an allowed, consistent decision."""
    for param in DERIVE_CASES:
        original = param.values[0]
        assert isinstance(original, Observed)
        observed = replace(original, phase=current)
        decision = derive(observed)
        assert is_allowed(current, decision.phase), (param.id, current, decision)
        if current in TERMINAL_PHASES:
            assert decision.phase is current
        if decision.phase is Phase.FAILED and current not in TERMINAL_PHASES:
            assert decision.failure_kind is not None, param.id
        if decision.phase is not Phase.FAILED:
            assert decision.failure_kind is None, param.id


def test_derive_is_pure() -> None:
    observed = trained(training=succeeded(1.5), max_eval_loss=2.0)
    assert derive(observed) == derive(observed)
    assert observed == trained(training=succeeded(1.5), max_eval_loss=2.0)


# ------------------------------------------------------------------------------------- conditions

CONDITION_TYPES = [
    "Ready",
    "Reconciling",
    "Stalled",
    "DatasetReady",
    "Queued",
    "Running",
    "Training",
    "Evaluating",
    "Succeeded",
    "Failed",
]

# Which conditions are True for a decision in each phase (dataset_ready and training_active both set).
# kstatus conventions: Reconciling while the job works, Stalled once it can never become Ready.
TRUE_CONDITIONS: dict[Phase, set[str]] = {
    Phase.PENDING: {"DatasetReady", "Reconciling"},
    Phase.QUEUED: {"DatasetReady", "Queued", "Reconciling"},
    Phase.RUNNING: {"DatasetReady", "Running", "Training", "Reconciling"},
    Phase.EVALUATING: {"DatasetReady", "Evaluating", "Reconciling"},
    Phase.COMPLETED: {"DatasetReady", "Ready", "Succeeded"},
    Phase.FAILED: {"DatasetReady", "Failed", "Stalled"},
    Phase.CANCELLED: {"DatasetReady", "Stalled"},
}


Conditions = list[Mapping[str, Any]]


def merge(previous: Conditions | None, decision: Decision, now: str, generation: int | None) -> Conditions:
    """`merge_conditions`, typed so that its result can be fed back in as the previous list."""
    return list(merge_conditions(previous, decision, now, generation))


def _by_type(conditions: Conditions) -> dict[str, Mapping[str, Any]]:
    return {c["type"]: c for c in conditions}


@pytest.mark.parametrize("phase", ALL_PHASES)
def test_conditions_per_phase(phase: Phase) -> None:
    decision = Decision(phase, "SomeReason", "some message", dataset_ready=True, training_active=True)
    merged = merge(None, decision, "2026-11-23T16:00:00Z", 3)
    assert [c["type"] for c in merged] == CONDITION_TYPES
    trues = {c["type"] for c in merged if c["status"] == "True"}
    assert trues == TRUE_CONDITIONS[phase]
    assert (_by_type(merged)["Ready"]["status"] == "True") is (phase is Phase.COMPLETED)
    for condition in merged:
        assert condition["message"] == ("some message" if condition["status"] == "True" else "")


@pytest.mark.parametrize("phase", ALL_PHASES)
def test_ready_is_false_without_dataset_or_training_flags(phase: Phase) -> None:
    merged = _by_type(merge(None, Decision(phase, "R", "m"), "t0", 1))
    assert merged["Ready"]["status"] == ("True" if phase is Phase.COMPLETED else "False")
    assert merged["DatasetReady"]["status"] == "False"
    assert merged["DatasetReady"]["reason"] == "R"
    assert merged["Training"]["status"] == "False"


def test_dataset_ready_reason_is_curated() -> None:
    merged = _by_type(merge(None, Decision(R, "Training", "training", dataset_ready=True), "t0", 1))
    assert merged["DatasetReady"] == {
        "type": "DatasetReady",
        "status": "True",
        "reason": "Curated",
        "message": "training",
        "lastTransitionTime": "t0",
        "observedGeneration": 1,
    }


def test_training_condition_needs_an_active_workload() -> None:
    merged = _by_type(merge(None, Decision(R, "TrainingStarting", "m", training_active=False), "t", 1))
    assert merged["Running"]["status"] == "True"
    assert merged["Training"]["status"] == "False"


def test_empty_reason_becomes_unknown() -> None:
    merged = merge(None, Decision(C, "", ""), "t0", 1)
    assert {c["reason"] for c in merged} == {"Unknown"}


def test_last_transition_time_moves_only_on_flips() -> None:
    running = merge(None, Decision(R, "Training", "a", dataset_ready=True, training_active=True), "t1", 1)
    assert {c["lastTransitionTime"] for c in running} == {"t1"}

    # Same phase, new reason and message: statuses unchanged, so no time moves.
    again = merge(running, Decision(R, "Training", "b", dataset_ready=True, training_active=True), "t2", 1)
    assert {c["lastTransitionTime"] for c in again} == {"t1"}
    assert _by_type(again)["Running"]["message"] == "b"

    # Running -> Evaluating flips Running, Training and Evaluating only.
    evaluating = merge(again, Decision(E, "Evaluating", "c", dataset_ready=True), "t3", 2)
    times = {c["type"]: c["lastTransitionTime"] for c in evaluating}
    assert times == {
        "Ready": "t1",
        "Reconciling": "t1",
        "Stalled": "t1",
        "DatasetReady": "t1",
        "Queued": "t1",
        "Running": "t3",
        "Training": "t3",
        "Evaluating": "t3",
        "Succeeded": "t1",
        "Failed": "t1",
    }

    completed = merge(evaluating, Decision(C, "ModelRegistered", "d", dataset_ready=True), "t4", 2)
    times = {c["type"]: c["lastTransitionTime"] for c in completed}
    assert times["Ready"] == times["Succeeded"] == times["Evaluating"] == times["Reconciling"] == "t4"
    assert times["Running"] == times["Training"] == "t3"
    assert times["DatasetReady"] == times["Failed"] == times["Queued"] == "t1"


def test_new_or_unknown_previous_conditions_get_the_current_time() -> None:
    previous: Conditions = [
        {"type": "Ready", "status": "Unknown", "lastTransitionTime": "t0"},
        {"type": "Queued", "status": "False"},  # no lastTransitionTime recorded
        {"type": "Failed", "status": "False", "lastTransitionTime": "t0"},
        {"type": "Obsolete", "status": "True", "lastTransitionTime": "t0"},
    ]
    merged = _by_type(merge(previous, Decision(P, "Creating", "m"), "t9", 1))
    assert merged["Ready"]["lastTransitionTime"] == "t9"  # Unknown -> False is a flip
    assert merged["Queued"]["lastTransitionTime"] == "t9"
    assert merged["Failed"]["lastTransitionTime"] == "t0"
    assert merged["Running"]["lastTransitionTime"] == "t9"  # not there before
    assert "Obsolete" not in merged


@pytest.mark.parametrize("generation", [1, 7, None])
def test_observed_generation_is_recorded(generation: int | None) -> None:
    previous = merge(None, Decision(R, "Training", "m"), "t1", 0)
    merged = merge(previous, Decision(R, "Training", "m"), "t2", generation)
    assert [c["observedGeneration"] for c in merged] == [generation] * len(CONDITION_TYPES)
    assert {c["lastTransitionTime"] for c in merged} == {"t1"}


def test_merge_does_not_mutate_previous() -> None:
    previous = merge(None, Decision(R, "Training", "m"), "t1", 1)
    snapshot = [dict(c) for c in previous]
    merge(previous, Decision(F, "OOMKilled", "x", FailureKind.USER), "t2", 2)
    assert previous == snapshot
