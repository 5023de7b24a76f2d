"""Multi-node training (backends.podgroup): the Indexed Job, the headless Service, the pods' environment, the
group's observed state, and the lifecycle's restart of a failed group. Expected objects are written by hand."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from finetune_operator import naming, status
from finetune_operator.api import FailureKind, FineTuningJobSpec, Phase
from finetune_operator.api.contract import USER_ERROR_EXIT_CODES, Reason, failure_kind_for
from finetune_operator.api.termination import TerminationMessage
from finetune_operator.backends import BatchJobBackend, PodGroupBackend, backend_for, podgroup
from finetune_operator.children import JobRef
from finetune_operator.config import Settings
from finetune_operator.lifecycle import derive
from finetune_operator.observation import Action, Observed, StorageState, WorkloadPhase, WorkloadState
from support.podsecurity import restricted_violations

Obj = dict[str, Any]
UID = "6f1c2a9e-1d3b-4c7a-9e0f-2b5d8c4a7e11"
SETTINGS = Settings(trainer_image="registry.local/trainer:9.9", rendezvous_timeout_seconds=45)


def spec(nodes: int = 2, **resources: Any) -> FineTuningJobSpec:
    return FineTuningJobSpec.model_validate(
        {
            "baseModel": {"name": "tiny", "builtin": "tiny-gpt"},
            "dataset": {"source": {"configMap": {"name": "sessions", "key": "sessions.jsonl"}}},
            "output": {"modelName": "support-bot"},
            "resources": {"gpus": 0, "nodes": nodes, **resources},
            "storage": {"accessMode": "ReadWriteMany"},
        }
    )


def ref(nodes: int = 2, name: str = "demo", **resources: Any) -> JobRef:
    return JobRef(name, "ml", UID, spec(nodes, **resources))


def env_of(job: Obj) -> dict[str, Any]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_one_node_trains_as_the_single_pod_job_and_more_as_a_group() -> None:
    assert isinstance(backend_for(spec(1)), BatchJobBackend)
    assert isinstance(backend_for(spec(2)), PodGroupBackend)


def test_the_group_is_a_headless_service_then_an_indexed_job_of_nodes_pods() -> None:
    service, job = PodGroupBackend().children(ref(4), SETTINGS)
    assert service["kind"] == "Service" and job["kind"] == "Job"
    assert service["metadata"]["name"] == "demo-train" and job["metadata"]["name"] == "demo-train"
    assert service["metadata"]["ownerReferences"][0]["uid"] == UID  # deleted with the FineTuningJob
    assert service["spec"] == {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "selector": {"finetune.dev/job-uid": UID, "app.kubernetes.io/component": "training"},
        "ports": [{"name": "rendezvous", "port": 29500, "targetPort": 29500, "protocol": "TCP"}],
    }
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert all(labels[key] == value for key, value in service["spec"]["selector"].items())
    js = job["spec"]
    assert (js["completionMode"], js["completions"], js["parallelism"], js["backoffLimit"]) == ("Indexed", 4, 4, 0)
    assert js["podFailurePolicy"]["rules"] == [
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": "train", "operator": "In", "values": list(USER_ERROR_EXIT_CODES)},
        },
        {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget"}]},
    ]
    pod = js["template"]["spec"]
    assert pod["subdomain"] == "demo-train"
    assert pod["containers"][0]["ports"] == [{"name": "rendezvous", "containerPort": 29500, "protocol": "TCP"}]
    assert restricted_violations(pod) == []


def test_the_pods_learn_the_group_size_rank_zeros_hostname_the_port_and_the_deadline() -> None:
    env = env_of(podgroup.group_job(ref(2), SETTINGS))
    assert env["FINETUNE_NODES"] == "2"
    assert env["FINETUNE_MASTER_ADDR"] == "demo-train-0.demo-train"
    assert env["FINETUNE_MASTER_PORT"] == "29500"
    assert env["FINETUNE_RENDEZVOUS_SECONDS"] == "45"
    assert env["FINETUNE_GROUP_ID"] == {
        "fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/controller-uid']"}
    }
    assert env["FINETUNE_EXPECTED_GPUS"] == "0"
    # The node rank is the completion index, which the Job controller sets itself.
    assert "JOB_COMPLETION_INDEX" not in env


def test_the_job_name_leaves_room_for_the_index_in_each_pods_hostname() -> None:
    long = "j" * 70
    job = podgroup.group_job(ref(64, name=long), SETTINGS)
    assert len(f"{job['metadata']['name']}-63") <= 63
    service = podgroup.rendezvous_service(ref(2, name="7-digits"))
    assert service["metadata"]["name"][0].isalpha()
    assert (
        podgroup.group_job(ref(2, name="7-digits"), SETTINGS)["spec"]["template"]["spec"]["subdomain"]
        == (service["metadata"]["name"])
    )


def test_the_group_queues_with_kueue_as_one_suspended_job() -> None:
    s = spec(2).model_copy(update={"queue_name": "gpu-queue"})
    job = podgroup.group_job(JobRef("demo", "ml", UID, s), SETTINGS)
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    assert job["spec"]["parallelism"] == 2  # Kueue admits the pods of one pod set together


# ------------------------------------------------------------------------------------------ observed state


def indexed_job(uid: str = "aaaaaaaa-1111", **status_: Any) -> Obj:
    return {"metadata": {"name": "demo-train", "uid": uid}, "spec": {}, "status": status_}


def pod(index: int, phase: str, exit_code: int | None = None, message: str = "", **extra: Any) -> Obj:
    status_: Obj = {"phase": phase, **extra}
    if exit_code is not None:
        terminated = {"exitCode": exit_code, "message": message, "finishedAt": f"2026-12-03T10:00:0{index}Z"}
        status_["containerStatuses"] = [{"state": {"terminated": terminated}}]
    # As the operator's pod index keeps it: name and labels (the Job controller sets the index as both a label
    # and an annotation).
    metadata = {"name": f"demo-train-{index}-x", "labels": {podgroup.INDEX_LABEL: str(index)}}
    return {"metadata": metadata, "status": status_}


def test_a_group_is_one_attempt_named_by_its_job() -> None:
    state = podgroup.group_state(indexed_job(active=2), [pod(0, "Running"), pod(1, "Running")])
    assert (state.phase, state.attempts, state.attempt_ids) == (WorkloadPhase.RUNNING, 1, ("demo-train@aaaaaaaa",))
    # Still the same attempt once the Job controller deleted the failed group's pods.
    failed = indexed_job(conditions=[{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}])
    assert podgroup.group_state(failed, []).attempt_ids == ("demo-train@aaaaaaaa",)


def test_the_result_is_rank_zeros_even_when_another_pod_ends_last() -> None:
    done = [{"type": "Complete", "status": "True"}]
    model = '{"outcome": "Succeeded", "model": {"path": "model"}}'
    pods = [pod(1, "Succeeded", 0, ""), pod(0, "Succeeded", 0, model)]
    pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"] = "2026-12-03T11:00:00Z"
    state = podgroup.group_state(indexed_job(conditions=done), pods)
    assert state.phase is WorkloadPhase.SUCCEEDED
    assert state.result.model is not None and state.result.model.path == "model"


def test_a_failed_group_reports_its_first_failure_not_the_peers_that_lost_it() -> None:
    failed = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    first = '{"outcome": "Failed", "reason": "RendezvousTimeout", "message": "missing: node rank 1"}'
    later = '{"outcome": "Failed", "reason": "RanksLostContact", "message": "peer gone"}'
    state = podgroup.group_state(
        indexed_job(conditions=failed), [pod(1, "Failed", 20, later), pod(0, "Failed", 20, first)]
    )
    assert state.phase is WorkloadPhase.FAILED
    assert state.result.reason == "RendezvousTimeout" and not state.disrupted


def test_an_eviction_marks_the_group_disrupted() -> None:
    failed = [
        {
            "type": "Failed",
            "status": "True",
            "reason": "PodFailurePolicy",
            "message": "Pod ml/demo-train-1-x has condition DisruptionTarget matching FailJob rule at index 1",
        }
    ]
    assert podgroup.group_state(indexed_job(conditions=failed), [pod(0, "Failed", 143)]).disrupted


def test_a_partly_scheduled_group_waits_in_queued_naming_each_missing_pod() -> None:
    unschedulable = {
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes: 2 Insufficient nvidia.com/gpu",
            }
        ]
    }
    state = podgroup.group_state(indexed_job(active=2), [pod(0, "Running"), pod(1, "Pending", **unschedulable)])
    assert state.phase is WorkloadPhase.UNSCHEDULABLE
    assert state.message == "pod demo-train-1-x (node rank 1): 0/3 nodes: 2 Insufficient nvidia.com/gpu"
    decision = derive(curated(state))
    assert decision.phase is Phase.QUEUED and "node rank 1" in decision.message


def of_job(pod_: Obj, uid: str = "aaaaaaaa-1111") -> Obj:
    pod_["metadata"]["labels"][podgroup.CONTROLLER_UID_LABEL] = uid
    return pod_


@pytest.mark.parametrize(
    ("pods", "missing"),
    [
        pytest.param([], True, id="every-pod-refused"),
        pytest.param([of_job(pod(0, "Running"))], True, id="one-of-two-admitted-by-a-quota"),
        pytest.param([of_job(pod(0, "Pending")), of_job(pod(1, "Pending"))], False, id="both-created"),
        pytest.param([of_job(pod(0, "Running")), of_job(pod(1, "Failed"), uid="earlier")], True, id="earlier-attempt"),
    ],
)
def test_a_group_with_fewer_pods_than_nodes_is_missing_pods(pods: list[Obj], missing: bool) -> None:
    """Only then does the reconciler ask the Job's FailedCreate Events why (creation.unless_pods_refused)."""
    job = indexed_job(active=len(pods))
    job["spec"]["parallelism"] = 2
    assert podgroup.group_state(job, pods).pods_missing is missing


# ------------------------------------------------------------------------------------------ group restarts

CURATED = WorkloadState(phase=WorkloadPhase.SUCCEEDED)
GROUP = "demo-train@aaaaaaaa"


def curated(training: WorkloadState, **changes: Any) -> Observed:
    base = Observed(phase=Phase.RUNNING, storage=StorageState.BOUND, curation=CURATED, training=training, nodes=2)
    return replace(base, **changes)


def failed_group(active: bool = False, disrupted: bool = False, reason: str = "RanksLostContact") -> WorkloadState:
    kind = failure_kind_for(Reason(reason)).value
    wire = {"outcome": "Failed", "reason": reason, "failureKind": kind, "message": "rank 1 gone"}
    result = TerminationMessage.model_validate(wire)
    return WorkloadState(
        WorkloadPhase.FAILED, result=result, attempts=1, attempt_ids=(GROUP,), active=active, disrupted=disrupted
    )


def test_a_failed_group_waits_for_its_pods_to_stop_then_restarts_using_one_retry() -> None:
    waiting = derive(curated(failed_group(active=True)))
    assert (waiting.phase, waiting.reason, waiting.actions) == (Phase.RUNNING, "RestartingGroup", frozenset())
    restart = derive(curated(failed_group()))
    assert restart.actions == frozenset({Action.RESTART_TRAINING})
    assert restart.retried_attempt == GROUP
    assert "retry 1 of 2" in restart.message and "RanksLostContact" in restart.message


def test_the_retry_is_recorded_once_however_often_the_failed_group_is_seen() -> None:
    decision = derive(curated(failed_group()))
    patch = status.next_status({"phase": "Running"}, decision, curated(failed_group()), generation=1, now="t")
    assert patch["retriedAttempts"] == [GROUP]
    again = status.next_status(
        {"phase": "Running", "retriedAttempts": [GROUP]}, decision, curated(failed_group()), generation=1, now="t"
    )
    assert "retriedAttempts" not in again
    assert derive(curated(failed_group(), retried_attempts=(GROUP,))).actions == frozenset({Action.RESTART_TRAINING})


def test_a_group_fails_when_its_failures_pass_the_backoff_limit() -> None:
    earlier = ("demo-train@11111111", "demo-train@22222222")
    decision = derive(curated(failed_group(reason="RendezvousTimeout"), retried_attempts=earlier))
    assert (decision.phase, decision.reason, decision.failure_kind) == (
        Phase.FAILED,
        "RendezvousTimeout",
        FailureKind.SYSTEM,
    )
    assert "failed on 3 attempts" in decision.message and "backoffLimit is 2" in decision.message


def test_a_disrupted_group_restarts_without_using_a_retry() -> None:
    earlier = ("demo-train@11111111", "demo-train@22222222")
    decision = derive(curated(failed_group(disrupted=True), retried_attempts=earlier))
    assert decision.actions == frozenset({Action.RESTART_TRAINING}) and decision.retried_attempt is None
    assert "no retry used" in decision.message


def test_a_user_error_fails_the_group_at_once() -> None:
    decision = derive(curated(failed_group(reason="InvalidModel")))
    assert (decision.phase, decision.failure_kind, decision.actions) == (Phase.FAILED, FailureKind.USER, frozenset())


@pytest.mark.parametrize("nodes", [2, 64])
def test_more_than_one_node_needs_a_read_write_many_workspace(nodes: int) -> None:
    wire = spec(nodes).to_wire()
    wire["storage"] = {}
    with pytest.raises(ValueError, match="ReadWriteMany"):
        FineTuningJobSpec.model_validate(wire)
    assert naming.group_job("demo") == "demo-train"
