"""Observation of raw Kubernetes objects (finetune_operator.observe): PVC phases, termination messages, and the
classification of a batch/v1 Job with its pods.

The Job and Pod objects below are shaped like what the API server returns (status fields, condition reasons
and messages as the Job controller, scheduler and kubelet write them, Kubernetes 1.31).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from finetune_operator.api import FailureKind, Phase
from finetune_operator.api.contract import ExitCode, Reason
from finetune_operator.api.termination import TerminationMessage
from finetune_operator.lifecycle import derive
from finetune_operator.observation import Observed, StorageState, WorkloadPhase, WorkloadState
from finetune_operator.observe import kueue_waiting_message, no_kueue_workload_seconds, storage_state, workload_state


def tm(message: Mapping[str, Any]) -> TerminationMessage:
    """A termination message as the operator reads it."""
    return TerminationMessage.parse(json.dumps(message))


Obj = dict[str, Any]

T0 = "2026-11-23T16:00:00Z"


# ------------------------------------------------------------------------------------------------ PVCs


@pytest.mark.parametrize(
    ("pvc", "expected"),
    [
        (None, StorageState.ABSENT),
        ({"metadata": {"name": "w"}}, StorageState.PENDING),
        ({"metadata": {"name": "w"}, "status": {}}, StorageState.PENDING),
        ({"metadata": {"name": "w"}, "status": None}, StorageState.PENDING),
        ({"status": {"phase": "Pending"}}, StorageState.PENDING),
        ({"status": {"phase": "Bound", "capacity": {"storage": "10Gi"}}}, StorageState.BOUND),
        ({"status": {"phase": "Lost"}}, StorageState.LOST),
    ],
)
def test_storage_state(pvc: Obj | None, expected: StorageState) -> None:
    assert storage_state(pvc) is expected


# -------------------------------------------------------------------------------- termination messages


def test_parse_json_termination_message() -> None:
    message = {"outcome": "Failed", "reason": "NoSamplesAfterCuration", "failureKind": "User", "message": "0 of 3"}
    assert TerminationMessage.parse(json.dumps(message)).to_wire() == message
    assert TerminationMessage.parse(json.dumps(message) + "\n").to_wire() == message


@pytest.mark.parametrize("empty", [None, ""])
def test_parse_empty_termination_message(empty: str | None) -> None:
    assert TerminationMessage.parse(empty).to_wire() == {}


def test_parse_plain_text_termination_message() -> None:
    assert TerminationMessage.parse("  Traceback: boom\n").to_wire() == {"message": "Traceback: boom"}


@pytest.mark.parametrize(
    "garbage",
    ['{"outcome": "Succ', "\x00\xff\ufffd", "{'single': 'quotes'}", "}{", '{"a": 1} trailing'],
)
def test_parse_garbage_termination_message_keeps_the_text(garbage: str) -> None:
    assert TerminationMessage.parse(garbage).to_wire() == {"message": garbage.strip()}


@pytest.mark.parametrize(("text", "expected"), [("[1, 2]", "[1, 2]"), ('"oops"', "oops"), ("42", "42")])
def test_parse_json_that_is_not_an_object(text: str, expected: str) -> None:
    assert TerminationMessage.parse(text).to_wire() == {"message": expected}


def test_parse_long_plain_text_is_capped() -> None:
    parsed = TerminationMessage.parse("x" * 5000).to_wire()
    assert parsed == {"message": "x" * 1024}


# ------------------------------------------------------------------------------- Job and Pod factories


def batch_job(
    *,
    suspend: bool = False,
    active: int = 0,
    succeeded: int = 0,
    failed: int = 0,
    conditions: list[Obj] | None = None,
) -> Obj:
    status: Obj = {"startTime": T0, "uncountedTerminatedPods": {}}
    if active:
        status["active"] = active
        status["ready"] = 0
    if succeeded:
        status["succeeded"] = succeeded
    if failed:
        status["failed"] = failed
    if conditions:
        status["conditions"] = conditions
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "demo-train",
            "namespace": "ml",
            "uid": "3b0f6f43-3c2f-4b44-9c1b-2d6f0e7b5a10",
            "labels": {"finetune.dev/job": "demo"},
        },
        "spec": {
            "backoffLimit": 2,
            "completions": 1,
            "parallelism": 1,
            "suspend": suspend,
            "completionMode": "NonIndexed",
            "template": {"spec": {"containers": [{"name": "train", "image": "trainer"}]}},
        },
        "status": status,
    }


def job_condition(ctype: str, reason: str, message: str = "", status: str = "True") -> Obj:
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastProbeTime": T0,
        "lastTransitionTime": T0,
    }


def pod(
    name: str,
    phase: str,
    *,
    waiting: tuple[str, str] | None = None,
    running: bool = False,
    terminated: Obj | None = None,
    conditions: list[Obj] | None = None,
    init_waiting: tuple[str, str] | None = None,
) -> Obj:
    state: Obj
    if waiting is not None:
        state = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    elif running:
        state = {"running": {"startedAt": T0}}
    elif terminated is not None:
        state = {"terminated": {"startedAt": T0, "containerID": "containerd://abc", **terminated}}
    else:
        state = {"waiting": {"reason": "ContainerCreating"}}
    status: Obj = {
        "phase": phase,
        "conditions": conditions if conditions is not None else [{"type": "PodScheduled", "status": "True"}],
        "qosClass": "BestEffort",
        "startTime": T0,
    }
    if phase != "Pending" or waiting or init_waiting or running or terminated:
        status["containerStatuses"] = [
            {
                "name": "train",
                "image": "ghcr.io/finetune-operator/trainer:0.1.0",
                "imageID": "",
                "ready": running,
                "restartCount": 0,
                "started": running,
                "state": state,
                "lastState": {},
            }
        ]
    if init_waiting is not None:
        status["initContainerStatuses"] = [
            {"name": "init", "state": {"waiting": {"reason": init_waiting[0], "message": init_waiting[1]}}}
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ml", "labels": {"batch.kubernetes.io/job-name": "demo-train"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "train"}]},
        "status": status,
    }


def terminated(exit_code: int, reason: str, finished_at: str, message: str | None = None) -> Obj:
    out: Obj = {"exitCode": exit_code, "reason": reason, "finishedAt": finished_at}
    if message is not None:
        out["message"] = message
    return out


UNSCHEDULABLE = (
    "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: "
    "3 No preemption victims found for incoming pod."
)
SUCCESS_MESSAGE = {
    "outcome": "Succeeded",
    "metrics": {"trainLoss": 1.9, "evalLoss": 2.1, "perplexity": 8.2, "tokensPerSecond": 5400.0},
    "progress": {"step": 120, "totalSteps": 120, "epoch": 3.0},
    "model": {"path": "model", "format": "safetensors", "adapter": True, "merged": False},
}


# ------------------------------------------------------------------------------------------ workloads


def test_absent() -> None:
    assert workload_state(None, []) == WorkloadState()
    assert workload_state(None, []).phase is WorkloadPhase.ABSENT
    # Orphaned pods without their Job do not make a workload.
    assert workload_state(None, [pod("demo-train-x", "Running", running=True)]).phase is WorkloadPhase.ABSENT


def test_suspended_by_kueue() -> None:
    job = batch_job(
        suspend=True,
        conditions=[job_condition("Suspended", "JobSuspended", "Job suspended")],
    )
    state = workload_state(job, [])
    assert state == WorkloadState(WorkloadPhase.SUSPENDED, message="Job suspended", attempts=0, active=False)


LATER = datetime(2026, 11, 23, 16, 1, 30, tzinfo=UTC)  # 90 s after the Job's creation


def created(job: Obj, at: str | None = T0) -> Obj:
    job["metadata"]["creationTimestamp"] = at
    return job


def test_a_suspended_job_without_a_kueue_workload_counts_from_its_creation() -> None:
    assert no_kueue_workload_seconds(created(batch_job(suspend=True)), None, LATER) == 90.0


@pytest.mark.parametrize(
    ("job", "workload"),
    [
        pytest.param(created(batch_job(suspend=True)), {"status": {}}, id="kueue-created-its-workload"),
        pytest.param(created(batch_job(suspend=False, active=1)), None, id="not-suspended"),
        pytest.param(None, None, id="no-training-job"),
        pytest.param(created(batch_job(suspend=True), None), None, id="no-creation-time"),
        pytest.param(created(batch_job(suspend=True), "2026-11-23T17:00:00Z"), None, id="created-in-the-future"),
    ],
)
def test_no_kueue_workload_seconds_is_zero(job: Obj | None, workload: Obj | None) -> None:
    assert no_kueue_workload_seconds(job, workload, LATER) == 0.0


QUOTA = (
    "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor a100, "
    "8 more needed"
)
PREEMPTED = "Preempted to accommodate a workload (UID: u1, JobUID: j1) due to prioritization in the ClusterQueue"


def kueue_workload(*conditions: tuple[str, str, str]) -> Obj:
    return {"status": {"conditions": [{"type": t, "status": s, "message": m} for t, s, m in conditions]}}


@pytest.mark.parametrize(
    ("workload", "expected"),
    [
        (None, None),
        ({}, None),
        (kueue_workload(("QuotaReserved", "False", QUOTA)), QUOTA),
        # Evicted (preempted) says more than the pending quota message that follows it.
        (kueue_workload(("QuotaReserved", "False", QUOTA), ("Evicted", "True", PREEMPTED)), PREEMPTED),
        (kueue_workload(("Evicted", "False", PREEMPTED), ("QuotaReserved", "False", QUOTA)), QUOTA),
        # Quota reserved, an admission check still pending.
        (
            kueue_workload(("QuotaReserved", "True", "reserved"), ("Admitted", "False", "checks pending")),
            "checks pending",
        ),
        (kueue_workload(("QuotaReserved", "True", "Quota reserved"), ("Admitted", "True", "admitted")), None),
        (kueue_workload(("QuotaReserved", "False", "")), None),
    ],
)
def test_kueue_waiting_message(workload: Obj | None, expected: str | None) -> None:
    assert kueue_waiting_message(workload) == expected


def test_suspended_before_the_job_controller_wrote_a_condition() -> None:
    job = batch_job(suspend=True)
    del job["status"]
    assert workload_state(job, []) == WorkloadState(WorkloadPhase.SUSPENDED, message="")


def test_created_without_pods_is_starting_and_missing_its_pod() -> None:
    job = batch_job()
    job["status"] = {}
    assert workload_state(job, []) == WorkloadState(WorkloadPhase.STARTING, pods_missing=True)


def test_unschedulable_pod() -> None:
    pending = pod(
        "demo-train-abcde",
        "Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": UNSCHEDULABLE,
                "lastTransitionTime": T0,
            }
        ],
    )
    state = workload_state(batch_job(active=1), [pending])
    assert state == WorkloadState(WorkloadPhase.UNSCHEDULABLE, message=UNSCHEDULABLE, attempts=1, active=True)


def test_unschedulable_without_a_message_gets_a_default() -> None:
    pending = pod(
        "demo-train-abcde",
        "Pending",
        conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
    )
    state = workload_state(batch_job(active=1), [pending])
    assert state.phase is WorkloadPhase.UNSCHEDULABLE
    assert state.message == "no node has the requested resources free"


def test_scheduling_gated_pod_is_not_unschedulable() -> None:
    gated = pod(
        "demo-train-abcde",
        "Pending",
        conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
    )
    assert workload_state(batch_job(active=1), [gated]).phase is WorkloadPhase.STARTING


CURATED = WorkloadState(WorkloadPhase.SUCCEEDED, result=tm({"outcome": "Succeeded", "dataset": {"samples": 10}}))


def test_scheduled_pod_creating_its_container_is_starting() -> None:
    creating = pod("demo-train-abcde", "Pending", waiting=("ContainerCreating", ""))
    state = workload_state(batch_job(active=1), [creating])
    message = "demo-train-abcde is waiting (ContainerCreating)"
    assert state == WorkloadState(WorkloadPhase.STARTING, message=message, attempts=1, active=True)
    decision = derive(Observed(phase=Phase.RUNNING, storage=StorageState.BOUND, curation=CURATED, training=state))
    assert decision.message.startswith("training pod demo-train-abcde is waiting (ContainerCreating); see ")


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("ImagePullBackOff", 'Back-off pulling image "ghcr.io/finetune-operator/trainer:nope"'),
        ("InvalidImageName", 'couldn\'t parse image name "UPPER/case"'),
        ("ErrImageNeverPull", "Container image is not present with pull policy of Never"),
    ],
)
def test_image_pull_failure(reason: str, message: str) -> None:
    waiting = pod("demo-train-abcde", "Pending", waiting=(reason, message))
    state = workload_state(batch_job(active=1), [waiting])
    assert state == WorkloadState(
        WorkloadPhase.STARTING, image_pull_error=f"{reason}: {message}", attempts=1, active=True
    )


def test_image_pull_failure_of_an_init_container() -> None:
    waiting = pod("demo-train-abcde", "Pending", init_waiting=("ImagePullBackOff", ""))
    state = workload_state(batch_job(active=1), [waiting])
    assert state.image_pull_error == "ImagePullBackOff"


def test_first_pull_error_is_not_yet_a_failure() -> None:
    # ErrImagePull is retried by the kubelet (a registry hiccup); only the back-off counts.
    waiting = pod("demo-train-abcde", "Pending", waiting=("ErrImagePull", "rpc error: i/o timeout"))
    state = workload_state(batch_job(active=1), [waiting])
    assert state.image_pull_error is None
    assert state.phase is WorkloadPhase.STARTING


def test_running() -> None:
    state = workload_state(batch_job(active=1), [pod("demo-train-abcde", "Running", running=True)])
    assert state == WorkloadState(WorkloadPhase.RUNNING, attempts=1, active=True)


def test_running_retry_after_a_failed_attempt() -> None:
    first = pod("demo-train-aaaaa", "Failed", terminated=terminated(20, "Error", "2026-11-23T16:10:00Z", "internal"))
    second = pod("demo-train-bbbbb", "Running", running=True)
    state = workload_state(batch_job(active=1, failed=1), [first, second])
    assert state.phase is WorkloadPhase.RUNNING
    assert state.attempts == 2
    assert state.active is True
    # The last finished container is reported even while the retry runs.
    assert state.exit_code == 20
    assert state.container_reason == "Error"


def complete_job() -> Obj:
    return batch_job(
        succeeded=1,
        conditions=[
            job_condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
            job_condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
        ],
    )


def test_complete_with_the_termination_message_of_the_succeeded_pod() -> None:
    done = pod(
        "demo-train-abcde",
        "Succeeded",
        terminated=terminated(0, "Completed", "2026-11-23T17:00:00Z", json.dumps(SUCCESS_MESSAGE)),
    )
    state = workload_state(complete_job(), [done])
    assert state == WorkloadState(
        WorkloadPhase.SUCCEEDED,
        exit_code=0,
        container_reason="Completed",
        result=tm(SUCCESS_MESSAGE),
        attempts=1,
        active=False,
    )


def test_complete_reads_the_succeeded_pod_not_a_later_failed_one() -> None:
    # A retry's first pod may finish (e.g. be killed) after the succeeded one is recorded; the result is the
    # succeeded pod's termination message.
    done = pod(
        "demo-train-bbbbb",
        "Succeeded",
        terminated=terminated(0, "Completed", "2026-11-23T17:00:00Z", json.dumps(SUCCESS_MESSAGE)),
    )
    late = pod("demo-train-aaaaa", "Failed", terminated=terminated(137, "Error", "2026-11-23T17:00:05Z"))
    state = workload_state(complete_job(), [late, done])
    assert state.phase is WorkloadPhase.SUCCEEDED
    assert state.result == tm(SUCCESS_MESSAGE)
    assert state.active is False
    assert state.attempts == 2


def test_complete_after_the_pods_were_garbage_collected() -> None:
    state = workload_state(complete_job(), [])
    assert state == WorkloadState(WorkloadPhase.SUCCEEDED, attempts=1)


def test_success_criteria_met_alone_counts_as_succeeded() -> None:
    # Kubernetes 1.31+ sets SuccessCriteriaMet before Complete, while pods still terminate.
    job = batch_job(succeeded=1, conditions=[job_condition("SuccessCriteriaMet", "CompletionsReached")])
    assert workload_state(job, []).phase is WorkloadPhase.SUCCEEDED


def test_a_false_condition_does_not_count() -> None:
    job = batch_job(active=1, conditions=[job_condition("Complete", "CompletionsReached", status="False")])
    assert workload_state(job, [pod("p", "Running", running=True)]).phase is WorkloadPhase.RUNNING


def failed_pods() -> list[Obj]:
    crash = json.dumps({"outcome": "Failed", "reason": "InternalError", "failureKind": "System", "message": "x"})
    return [
        pod("demo-train-ccccc", "Failed", terminated=terminated(20, "Error", "2026-11-23T16:30:00Z", "CUDA error")),
        pod("demo-train-aaaaa", "Failed", terminated=terminated(20, "Error", "2026-11-23T16:10:00Z", crash)),
        pod("demo-train-bbbbb", "Failed", terminated=terminated(1, "Error", "2026-11-23T16:20:00Z")),
    ]


def test_failed_backoff_limit_exceeded_reports_the_last_pod() -> None:
    job = batch_job(
        failed=3,
        conditions=[
            job_condition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
            job_condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        ],
    )
    state = workload_state(job, failed_pods())
    assert state == WorkloadState(
        WorkloadPhase.FAILED,
        message="CUDA error",
        job_reason="BackoffLimitExceeded",
        exit_code=20,
        container_reason="Error",
        result=tm({"message": "CUDA error"}),
        attempts=3,
        active=False,
    )


def test_failed_without_a_termination_message_uses_the_job_condition() -> None:
    job = batch_job(
        failed=1,
        conditions=[job_condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")],
    )
    last = pod("demo-train-aaaaa", "Failed", terminated=terminated(1, "Error", "2026-11-23T16:10:00Z"))
    state = workload_state(job, [last])
    assert state.phase is WorkloadPhase.FAILED
    assert state.message == "Job has reached the specified backoff limit"
    assert state.exit_code == 1
    assert state.result == TerminationMessage()


def test_failed_with_a_structured_termination_message() -> None:
    message = {
        "outcome": "Failed",
        "reason": "NoSamplesAfterCuration",
        "failureKind": "User",
        "message": "0 of 1200 sessions survived curation",
    }
    job = batch_job(
        failed=1,
        conditions=[
            job_condition(
                "Failed",
                "PodFailurePolicy",
                "Container curate for pod ml/demo-curate-abcde failed with exit code 10 matching FailJob rule at "
                "index 0",
            )
        ],
    )
    failed_pod = pod(
        "demo-curate-abcde",
        "Failed",
        terminated=terminated(10, "Error", "2026-11-23T16:05:00Z", json.dumps(message)),
    )
    state = workload_state(job, [failed_pod])
    assert state == WorkloadState(
        WorkloadPhase.FAILED,
        message="0 of 1200 sessions survived curation",
        job_reason="PodFailurePolicy",
        exit_code=10,
        container_reason="Error",
        result=tm(message),
        attempts=1,
        active=False,
    )


def test_storage_full_from_the_trainer_becomes_the_jobs_failure() -> None:
    """The trainer's own StorageFull message, as Kubernetes hands it over, gives reason, message and failureKind."""
    text = "the workspace volume is full (No space left on device) while writing checkpoint-40 " + "x" * 5000
    message = TerminationMessage.failure(Reason.STORAGE_FULL, text).render()
    job = batch_job(
        failed=1,
        conditions=[
            job_condition(
                "Failed",
                "PodFailurePolicy",
                "Container train for pod ml/demo-train-abcde failed with exit code 13 matching FailJob rule at index 0",
            )
        ],
    )
    failed = pod("demo-train-abcde", "Failed", terminated=terminated(ExitCode.STORAGE_FULL, "Error", T0, message))
    state = workload_state(job, [failed])
    assert (state.phase, state.exit_code, state.job_reason) == (WorkloadPhase.FAILED, 13, "PodFailurePolicy")
    curated = WorkloadState(WorkloadPhase.SUCCEEDED, result=tm({"outcome": "Succeeded", "dataset": {"samples": 10}}))
    decision = derive(Observed(phase=Phase.RUNNING, storage=StorageState.BOUND, curation=curated, training=state))
    assert (decision.phase, decision.reason, decision.failure_kind) == (Phase.FAILED, "StorageFull", FailureKind.USER)
    assert decision.message.startswith(
        "the workspace volume is full (No space left on device) while writing checkpoint-40"
    )
    assert len(message.encode()) <= 4096 and decision.message.endswith("…")


def test_oom_killed() -> None:
    job = batch_job(
        failed=1,
        conditions=[job_condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")],
    )
    killed = pod("demo-train-abcde", "Failed", terminated=terminated(137, "OOMKilled", "2026-11-23T16:05:00Z"))
    state = workload_state(job, [killed])
    assert state.phase is WorkloadPhase.FAILED
    assert state.container_reason == "OOMKilled"
    assert state.exit_code == 137
    assert state.job_reason == "BackoffLimitExceeded"


def test_deadline_exceeded() -> None:
    job = batch_job(
        failed=1,
        conditions=[
            job_condition("FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline"),
            job_condition("Failed", "DeadlineExceeded", "Job was active longer than specified deadline"),
        ],
    )
    # The controller killed the running pod: SIGTERM, then exit 143.
    killed = pod("demo-train-abcde", "Failed", terminated=terminated(143, "Error", "2026-11-23T18:00:00Z"))
    state = workload_state(job, [killed])
    assert state == WorkloadState(
        WorkloadPhase.FAILED,
        message="Job was active longer than specified deadline",
        job_reason="DeadlineExceeded",
        exit_code=143,
        container_reason="Error",
        attempts=1,
    )


def test_failure_target_alone_is_already_failed() -> None:
    # Kubernetes 1.31+ sets FailureTarget while the pods still terminate; Failed follows.
    job = batch_job(
        active=1,
        conditions=[job_condition("FailureTarget", "PodFailurePolicy", "exit code 12 matching FailJob rule")],
    )
    terminating = pod("demo-train-abcde", "Running", running=True)
    state = workload_state(job, [terminating])
    assert state.phase is WorkloadPhase.FAILED
    assert state.job_reason == "PodFailurePolicy"
    assert state.message == "exit code 12 matching FailJob rule"
    assert state.active is True  # the pod still has to stop


def test_failed_wins_over_suspended() -> None:
    job = batch_job(suspend=True, failed=1, conditions=[job_condition("Failed", "BackoffLimitExceeded")])
    assert workload_state(job, []).phase is WorkloadPhase.FAILED


@pytest.mark.parametrize(
    ("status", "pods", "attempts"),
    [
        ({}, 0, 0),
        ({"active": 1}, 0, 1),
        ({"active": 1}, 1, 1),
        ({"failed": 2, "active": 1}, 3, 3),
        ({"failed": 2, "active": 1}, 1, 3),  # pods of earlier attempts deleted
        ({"failed": 1}, 3, 3),  # evicted pods (podFailurePolicy Ignore) are not in status.failed
        ({"succeeded": 1, "failed": 1}, 2, 2),
    ],
)
def test_attempts(status: Obj, pods: int, attempts: int) -> None:
    job = batch_job(**status)
    job_pods = [
        pod(f"demo-train-{i}", "Failed", terminated=terminated(20, "Error", f"2026-11-23T16:0{i}:00Z"))
        for i in range(pods)
    ]
    assert workload_state(job, job_pods).attempts == attempts


def test_evicted_pod_does_not_hide_the_retry() -> None:
    evicted = pod(
        "demo-train-aaaaa",
        "Failed",
        terminated=terminated(137, "Error", "2026-11-23T16:10:00Z"),
        conditions=[{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}],
    )
    replacement = pod(
        "demo-train-bbbbb",
        "Pending",
        conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "no gpu"}],
    )
    state = workload_state(batch_job(active=1), [evicted, replacement])
    assert state.phase is WorkloadPhase.UNSCHEDULABLE
    assert state.message == "no gpu"
    assert state.attempts == 2


def test_does_not_mutate_its_input() -> None:
    job = complete_job()
    pods = failed_pods()
    before = copy.deepcopy((job, pods))
    workload_state(job, pods)
    assert (job, pods) == before


def test_pod_ended_before_the_job_controller_concluded_is_still_running() -> None:
    # Seen in the demo: the trainer pod exited 0 while the Job had no Complete condition yet. Calling that
    # "starting" moved an Evaluating job back to Running for a moment.
    ended = pod(
        "demo-train-abcde",
        "Succeeded",
        terminated=terminated(0, "Completed", "2026-11-23T16:10:00Z", json.dumps(SUCCESS_MESSAGE)),
    )
    state = workload_state(batch_job(active=0), [ended])
    assert state.phase is WorkloadPhase.RUNNING
    assert state.active is False
