"""The FineTuningJob lifecycle: seven phases, one transition table, and the pure derivation of the next phase.

The phase is never remembered by the operator: `derive` recomputes it from an `Observed` snapshot of the
cluster (the job's own status and the states of its children), so a restarted operator lands exactly where the
previous one left off. `derive` also says which children are still missing (`Action`); the handlers create
them and only then write the status, so a crash between the two repeats idempotent creations, never skips one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from finetune_operator import naming
from finetune_operator.api import FailureKind, Phase
from finetune_operator.api.contract import REASONS, Reason, fallback_reason
from finetune_operator.config import CURATION_DEADLINE_SECONDS
from finetune_operator.observation import (
    Action,
    Decision,
    Observed,
    SourceState,
    StorageState,
    WorkloadPhase,
    WorkloadState,
)

TERMINAL_PHASES = frozenset({Phase.COMPLETED, Phase.FAILED, Phase.CANCELLED})
_ACTIVE = (Phase.QUEUED, Phase.RUNNING, Phase.EVALUATING)

# Phases only move forward, except a requeue (eviction, preemption, retry) from Running or Evaluating back to
# Queued or Running. Forward skips are allowed because the operator may be down while children progress.
ALLOWED_TRANSITIONS: Mapping[Phase, frozenset[Phase]] = {
    Phase.PENDING: frozenset({*_ACTIVE, *TERMINAL_PHASES}),
    Phase.QUEUED: frozenset({Phase.RUNNING, Phase.EVALUATING, *TERMINAL_PHASES}),
    Phase.RUNNING: frozenset({Phase.QUEUED, Phase.EVALUATING, *TERMINAL_PHASES}),
    Phase.EVALUATING: frozenset({Phase.QUEUED, Phase.RUNNING, *TERMINAL_PHASES}),
    Phase.COMPLETED: frozenset(),
    Phase.FAILED: frozenset(),
    Phase.CANCELLED: frozenset(),
}


def is_allowed(source: Phase | None, target: Phase) -> bool:
    """Whether `source -> target` is allowed; staying in a phase always is, and a new job may start anywhere."""
    if source is None or source == target:
        return True
    return target in ALLOWED_TRANSITIONS[source]


OOM_ADVICE = "raise resources.memory or lower training.batchSize"


def derive(observed: Observed) -> Decision:
    """The next phase, reason, message and missing children for an observed job."""
    current = observed.phase
    if current in TERMINAL_PHASES:
        assert current is not None
        stop = _stop_if_active(observed)
        return Decision(current, "", "", actions=stop)
    decision = _derive_active(observed)
    if not is_allowed(current, decision.phase):
        # Never move backwards (e.g. a workload vanished): keep the phase, keep acting.
        assert current is not None
        return Decision(
            current, decision.reason, decision.message, decision.failure_kind,
            decision.dataset_ready, decision.training_active, decision.actions,
        )  # fmt: skip
    return decision


def _stop_if_active(observed: Observed) -> frozenset[Action]:
    active = observed.curation.active or observed.training.active
    return frozenset({Action.STOP_WORKLOADS}) if active else frozenset()


def _derive_active(o: Observed) -> Decision:
    if o.cancel:
        return Decision(
            Phase.CANCELLED,
            "Cancelled",
            "spec.cancel is true: pods stopped; the workspace and its checkpoints are kept",
            actions=_stop_if_active(o),
        )
    if o.version_conflict:
        return Decision(Phase.FAILED, "VersionExists", o.version_conflict, FailureKind.USER)
    if o.champion_problem:
        return Decision(Phase.FAILED, Reason.CHAMPION_UNAVAILABLE.value, o.champion_problem, FailureKind.USER)
    if o.storage is StorageState.ABSENT:
        return Decision(Phase.PENDING, "Creating", "creating the workspace and configuration", actions=_PREPARE)
    if o.storage is StorageState.LOST:
        return Decision(
            Phase.FAILED,
            "StorageLost",
            f"the workspace PersistentVolumeClaim {naming.workspace_pvc(o.job_name)} lost its volume; "
            f"see kubectl describe pvc -n {o.namespace} {naming.workspace_pvc(o.job_name)}",
            FailureKind.SYSTEM,
        )
    if o.curation.phase is not WorkloadPhase.SUCCEEDED:
        return _curation_decision(o)
    dataset = o.curation.result.dataset
    if dataset is not None and dataset.samples is not None and dataset.samples <= 0:
        return Decision(
            Phase.FAILED,
            "NoSamplesAfterCuration",
            "curation kept no samples; see status.dataset.rejected",
            FailureKind.USER,
        )
    return _training_decision(o)


_PREPARE = frozenset({Action.PREPARE})


def _curation_decision(o: Observed) -> Decision:
    curation = o.curation
    if o.source is SourceState.MISSING and curation.phase is WorkloadPhase.ABSENT:
        if o.source_missing_seconds >= o.source_wait_seconds:
            return Decision(
                Phase.FAILED,
                "SourceNotFound",
                f"gave up waiting for {o.source_description} after {int(o.source_wait_seconds)}s; "
                "create it and re-create the job, or fix spec.dataset.source in a new job",
                FailureKind.USER,
            )
        return Decision(
            Phase.PENDING,
            "SourceNotFound",
            f"waiting for {o.source_description} (spec.dataset.source)",
            actions=_PREPARE,
        )
    if curation.phase is WorkloadPhase.ABSENT:
        return Decision(
            Phase.PENDING,
            "CurationStarting",
            "starting curation",
            actions=_PREPARE | {Action.CREATE_CURATION},
        )
    if curation.phase is WorkloadPhase.FAILED:
        return _failure(o, curation, default_reason="CurationFailed")
    if curation.image_pull_error:
        return _image_pull_failed(curation)
    if curation.phase is WorkloadPhase.RUNNING:
        return Decision(
            Phase.RUNNING, "Curating", f"curating agent sessions into the dataset; follow it with {_logs(o, 'curate')}"
        )
    if curation.message:
        waiting = curation.message
    elif o.storage is StorageState.PENDING:
        waiting = (
            f"waiting for the workspace volume {naming.workspace_pvc(o.job_name)} to bind; "
            f"see kubectl describe pvc -n {o.namespace} {naming.workspace_pvc(o.job_name)}"
        )
    else:
        waiting = f"curation pod starting; see {_pods(o)}"
    return Decision(Phase.PENDING, "CurationStarting", waiting)


def _logs(o: Observed, step: str) -> str:
    job = naming.curation_job(o.job_name) if step == "curate" else naming.training_job(o.job_name)
    return f"kubectl logs -n {o.namespace} job/{job}"


def _pods(o: Observed) -> str:
    return f"kubectl describe pods -n {o.namespace} -l {naming.LABEL_JOB}={naming.label_value(o.job_name)}"


def _training_decision(o: Observed) -> Decision:
    training = o.training
    if training.phase is WorkloadPhase.ABSENT:
        if o.capacity_blocked:
            return Decision(Phase.QUEUED, "ConcurrencyLimit", o.capacity_blocked, dataset_ready=True)
        return Decision(
            Phase.RUNNING, "TrainingStarting", "creating the training workload",
            actions=frozenset({Action.CREATE_TRAINING}), dataset_ready=True,
        )  # fmt: skip
    if training.phase is WorkloadPhase.FAILED and o.nodes > 1:
        return _group_failure(o, training)
    if training.phase is WorkloadPhase.FAILED:
        return _failure(o, training, default_reason="TrainingFailed", dataset_ready=True)
    if training.image_pull_error:
        return _image_pull_failed(training, dataset_ready=True)
    if training.phase is WorkloadPhase.SUSPENDED and o.queue_name and _no_kueue_controller(o):
        return Decision(Phase.QUEUED, "NoKueueWorkload", _no_kueue_message(o), dataset_ready=True)
    if training.phase is WorkloadPhase.SUSPENDED:
        queue = f"LocalQueue {o.queue_name}" if o.queue_name else "its queue"
        why = o.admission_message or training.message
        detail = f": {why}" if why else ""
        return Decision(
            Phase.QUEUED, "WaitingForAdmission", f"waiting for Kueue admission in {queue}{detail}", dataset_ready=True
        )
    if training.phase is WorkloadPhase.UNSCHEDULABLE:
        want = f"{o.gpus} {o.gpu_resource_name}" if o.gpus else "CPU and memory"
        message = f"waiting for {want}: {training.message}" if training.message else f"waiting for {want}"
        return Decision(Phase.QUEUED, "WaitingForCapacity", message, dataset_ready=True)
    if training.phase is WorkloadPhase.STARTING:
        detail = training.message or "starting"
        return Decision(
            Phase.RUNNING,
            "TrainingStarting",
            f"training pod {detail}; see {_pods(o)}",
            training_active=True,
            dataset_ready=True,
        )
    if training.phase is WorkloadPhase.RUNNING:
        if o.trainer_stage == "Evaluating":
            return Decision(
                Phase.EVALUATING,
                "Evaluating",
                "evaluating on the held-out split",
                training_active=True,
                dataset_ready=True,
            )
        return Decision(
            Phase.RUNNING,
            "Training",
            f"training; follow it with {_logs(o, 'train')} -f",
            training_active=True,
            dataset_ready=True,
        )
    return _succeeded_training(o)


def _no_kueue_controller(o: Observed) -> bool:
    return o.no_kueue_workload_seconds >= o.kueue_workload_wait_seconds > 0


def _no_kueue_message(o: Observed) -> str:
    """Still a wait: Kueue installed (or restarted) later creates the Workload and admits the Job."""
    job = naming.group_job(o.job_name) if o.nodes > 1 else naming.training_job(o.job_name)
    return (
        f"Kueue created no Workload for training Job {job} in {int(o.kueue_workload_wait_seconds)}s: "
        f"is Kueue installed and running? Check `kubectl get crd workloads.kueue.x-k8s.io`, the Kueue controller's "
        f"pods and logs, and that its configuration manages batch/job in namespace {o.namespace} (LocalQueue "
        f"{o.queue_name}, spec.queueName); the job stays Queued and starts once Kueue admits it"
    )


def _group_failure(o: Observed, group: WorkloadState) -> Decision:
    """A multi-node group failed: restart all of it from the latest checkpoint while retries remain.

    A user error fails the job as for one pod. Otherwise the failed attempt uses a retry unless an eviction or a
    preemption stopped it; the restart waits until no pod of the group runs (they write their checkpoint on
    SIGTERM), then deletes the Job and creates it again."""
    failure = _failure(o, group, default_reason="TrainingFailed", dataset_ready=True)
    if failure.failure_kind is FailureKind.USER:
        return failure
    attempt = group.attempt_ids[0] if group.attempt_ids else ""
    retried = set(o.retried_attempts) | (set() if group.disrupted else {attempt})
    if len(retried) > o.backoff_limit:
        message = f"{failure.message} (the group failed on {len(retried)} attempts, runPolicy.backoffLimit is "
        return replace(failure, message=f"{message}{o.backoff_limit})")
    if group.disrupted:
        why = "a pod of the group was evicted or preempted; restarting the whole group (no retry used)"
    else:
        why = f"{failure.reason}: {failure.message}; restarting the whole group (retry {len(retried)} of "
        why += f"{o.backoff_limit})"
    stopping = "waiting for the group's other pods to stop" if group.active else "from the latest checkpoint"
    return Decision(
        Phase.RUNNING,
        "RestartingGroup",
        f"{why}, {stopping}",
        training_active=True,
        dataset_ready=True,
        actions=frozenset() if group.active else frozenset({Action.RESTART_TRAINING}),
        retried_attempt=None if group.disrupted else attempt,
    )


def _succeeded_training(o: Observed) -> Decision:
    failed = _failed_gates(o)
    if failed:
        return Decision(Phase.FAILED, "EvaluationGateFailed", "; ".join(failed), FailureKind.USER, dataset_ready=True)
    if o.model_registered:
        return Decision(Phase.COMPLETED, "ModelRegistered", "evaluation passed; model registered", dataset_ready=True)
    if o.model_store is None or o.publish.phase is WorkloadPhase.SUCCEEDED:
        register = frozenset({Action.REGISTER_MODEL})
        registering = "evaluation passed; registering the model version"
        return Decision(Phase.EVALUATING, "Registering", registering, dataset_ready=True, actions=register)
    return _publish_decision(o)


def _failed_gates(o: Observed) -> list[str]:
    """The trainer applies the gates itself (exit 12); checked again here on the figures it reported, so a trainer
    that exits 0 without them (an older image, a missing or NaN figure) cannot register an ungated model."""
    metrics = o.training.result.metrics
    eval_loss = metrics.eval_loss if metrics else None
    loss = float("nan") if eval_loss is None else eval_loss
    failed = []
    if o.max_eval_loss is not None and not loss <= o.max_eval_loss:  # a missing or NaN loss fails too
        failed.append(f"evalLoss {eval_loss} > evaluation.maxEvalLoss {o.max_eval_loss}")
    accuracy = metrics.tool_call_accuracy if metrics else None
    if (
        o.min_tool_call_accuracy is not None
        and not (accuracy if accuracy is not None else -1.0) >= o.min_tool_call_accuracy
    ):
        failed.append(f"toolCallAccuracy {accuracy} < evaluation.minToolCallAccuracy {o.min_tool_call_accuracy}")
    return failed


def _publish_decision(o: Observed) -> Decision:
    """Copying the model to the model store (spec.output.pvc) before it is registered."""
    publish, store = o.publish, o.model_store
    if publish.phase is WorkloadPhase.FAILED and publish.result.failed:
        return _failure(o, publish, default_reason="ModelCopyFailed", dataset_ready=True)
    if publish.phase is WorkloadPhase.FAILED:
        detail = f"last exit code {publish.exit_code}" if publish.exit_code is not None else "no exit code"
        message = f"the copy to the model store {store} failed ({detail}: {publish.message}); the model is kept"
        return Decision(Phase.FAILED, "ModelCopyFailed", message, FailureKind.SYSTEM, dataset_ready=True)
    if publish.image_pull_error:
        return _image_pull_failed(publish, dataset_ready=True)
    if publish.phase is WorkloadPhase.ABSENT and o.model_store_missing:
        waiting = f"waiting for PersistentVolumeClaim {store} (spec.output.pvc) to exist; the model is in the workspace"
        return Decision(Phase.EVALUATING, "ModelStoreNotFound", waiting, dataset_ready=True)
    actions = frozenset({Action.CREATE_PUBLISH}) if publish.phase is WorkloadPhase.ABSENT else frozenset()
    copying = f"evaluation passed; copying the model to the model store {store}"
    copying += f": {publish.message}" if publish.message else ""
    return Decision(Phase.EVALUATING, "Publishing", copying, dataset_ready=True, actions=actions)


def _image_pull_failed(workload: WorkloadState, dataset_ready: bool = False) -> Decision:
    return Decision(
        Phase.FAILED,
        "ImagePullFailed",
        f"{workload.image_pull_error}; check spec.trainerImage or the operator's default trainer image",
        FailureKind.SYSTEM,
        dataset_ready=dataset_ready,
        actions=frozenset({Action.STOP_WORKLOADS}),
    )


def _failure(o: Observed, workload: WorkloadState, default_reason: str, dataset_ready: bool = False) -> Decision:
    """Map a failed Job to a reason a person can act on, and whether the user or the platform must act."""
    result = workload.result
    if result.failed:
        kind = FailureKind.SYSTEM if result.failure_kind is FailureKind.SYSTEM else FailureKind.USER
        return Decision(Phase.FAILED, str(result.reason), result.message or "", kind, dataset_ready=dataset_ready)
    if workload.container_reason == "OOMKilled":
        message = f"the container ran out of memory: {OOM_ADVICE}"
        return Decision(Phase.FAILED, "OOMKilled", message, FailureKind.USER, dataset_ready=dataset_ready)
    if workload.job_reason == "DeadlineExceeded" and default_reason == "CurationFailed":
        hours = CURATION_DEADLINE_SECONDS // 3600
        message = f"curation ran longer than its {hours} h deadline (a source that stopped answering?); see "
        return Decision(Phase.FAILED, "DeadlineExceeded", message + _logs(o, "curate"), FailureKind.USER)
    if workload.job_reason == "DeadlineExceeded":
        message = f"runPolicy.activeDeadlineSeconds was exceeded: {workload.message}".rstrip(": ")
        return Decision(Phase.FAILED, "DeadlineExceeded", message, FailureKind.USER, dataset_ready=dataset_ready)
    fallback = fallback_reason(workload.exit_code)
    if fallback is not None:
        # No termination message: the exit code alone must still say what happened and what to do.
        rule = REASONS[fallback]
        detail = workload.message or f"exit code {workload.exit_code}"
        message = f"{rule.meaning}: {rule.advice} ({detail})"
        return Decision(Phase.FAILED, fallback.value, message, rule.failure_kind, dataset_ready=dataset_ready)
    reason = "BackoffLimitExceeded" if workload.job_reason == "BackoffLimitExceeded" else default_reason
    if workload.exit_code is not None:
        detail = f"the last container exited with code {workload.exit_code} and wrote no termination message"
    else:
        detail = "the workload failed before a container ended"
    if workload.message:
        detail += f" ({workload.message})"
    step = "curate" if default_reason == "CurationFailed" else "train"
    message = f"{detail}; see {_logs(o, step)}"
    return Decision(Phase.FAILED, reason, message, FailureKind.SYSTEM, dataset_ready=dataset_ready)
