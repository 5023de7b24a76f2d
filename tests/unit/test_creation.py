"""How the operator answers a child it cannot create (finetune_operator.creation): a refusal it waits out (quota,
a deleted namesake's garbage), a refusal it reports (invalid, forbidden), and an object under the child's name
that is not the job's. tests/integration/test_refusals.py runs each on the real API server."""

from __future__ import annotations

from typing import Any

from finetune_operator.api import FailureKind, Phase
from finetune_operator.backends import podgroup
from finetune_operator.creation import Refusal, collision, is_owned_by, refusal, unless_pods_refused
from finetune_operator.kube import ApiError
from finetune_operator.observation import Action, Decision, WorkloadPhase

UID = "6f1c2a9e-1d3b-4c7a-9e0f-2b5d8c4a7e11"
CURATION_JOB = {"kind": "Job", "metadata": {"name": "demo-curate", "namespace": "ml"}}


def existing(**metadata: Any) -> dict[str, Any]:
    return {"metadata": {"name": "demo-workspace", "namespace": "ml", **metadata}}


def test_an_exceeded_quota_is_waited_out_and_named() -> None:
    message = 'jobs.batch "demo-curate" is forbidden: exceeded quota: jobs, requested: count/jobs.batch=1'
    refused = refusal(CURATION_JOB, ApiError(403, message))
    assert (refused.reason, refused.failure_kind) == ("QuotaExceeded", None)
    assert "Job demo-curate" in refused.message and "exceeded quota: jobs" in refused.message
    unknown = refusal(CURATION_JOB, ApiError(403, "status unknown for quota: jobs, resource: count/jobs.batch"))
    assert (unknown.reason, unknown.failure_kind) == ("QuotaExceeded", None)


def test_an_invalid_or_denied_child_fails_the_job_with_the_api_servers_message() -> None:
    invalid = refusal(CURATION_JOB, ApiError(422, 'Job.batch "demo-curate" is invalid: spec.template.metadata'))
    assert (invalid.reason, invalid.failure_kind) == ("CreateRefused", FailureKind.USER)
    assert "Job demo-curate (422)" in invalid.message and "spec.template.metadata" in invalid.message
    denied = refusal(CURATION_JOB, ApiError(403, "ValidatingAdmissionPolicy 'cost' denied request: no cost label"))
    assert (denied.reason, denied.failure_kind) == ("CreateRefused", FailureKind.USER)
    rbac = refusal(CURATION_JOB, ApiError(403, 'User "x" cannot create resource "jobs" in API group "batch"'))
    assert rbac.failure_kind is FailureKind.SYSTEM  # the operator's permissions, not the user's spec


def test_a_deleted_namesakes_child_is_waited_for() -> None:
    owner = {"apiVersion": "finetune.dev/v1alpha1", "kind": "FineTuningJob", "name": "demo", "uid": "old-uid"}
    waiting = collision("ConfigMap", existing(ownerReferences=[owner]))
    assert (waiting.reason, waiting.failure_kind) == ("NameCollision", None)
    terminating = collision("ConfigMap", existing(deletionTimestamp="2026-12-03T14:00:00Z"))
    assert terminating.failure_kind is None


def test_a_retained_workspace_or_a_strangers_object_is_never_used() -> None:
    retained = collision("PersistentVolumeClaim", existing(labels={"finetune.dev/job-uid": "old-uid"}))
    assert (retained.reason, retained.failure_kind) == ("NameCollision", FailureKind.USER)
    assert "retained PersistentVolumeClaim of an earlier job" in retained.message and "old-uid" in retained.message
    assert "kubectl delete persistentvolumeclaim -n ml demo-workspace" in retained.message
    squatted = collision("ConfigMap", existing())
    assert squatted.failure_kind is FailureKind.USER and "is not ours" in squatted.message


def test_ownership_is_the_uid_label_or_an_owner_reference() -> None:
    assert is_owned_by(existing(labels={"finetune.dev/job-uid": UID}), UID)
    assert is_owned_by(existing(ownerReferences=[{"uid": UID}]), UID)
    assert not is_owned_by(existing(labels={"finetune.dev/job": "demo"}), UID)  # the name label proves nothing


def test_a_refusal_replaces_the_decision_it_interrupted() -> None:
    decision = Decision(Phase.PENDING, "CurationStarting", "starting", dataset_ready=False,
                        actions=frozenset({Action.CREATE_CURATION}))  # fmt: skip
    waiting = Refusal("QuotaExceeded", "waiting for quota").decide(decision)
    assert (waiting.phase, waiting.reason, waiting.actions) == (Phase.PENDING, "QuotaExceeded", frozenset())
    failed = Refusal("CreateRefused", "refused", FailureKind.USER).decide(decision)
    assert (failed.phase, failed.reason, failed.failure_kind) == (Phase.FAILED, "CreateRefused", FailureKind.USER)


class FailedCreateEvents:
    """The API server's Events: a FailedCreate of the pods of the Job with uid `job_uid`, as the Job controller
    posts it."""

    def __init__(self, job_uid: str, message: str) -> None:
        self.job_uid, self.message = job_uid, message
        self.asked: list[str] = []

    def list(
        self, kind: str, namespace: str, label_selector: str | None = None, field_selector: str | None = None
    ) -> list[dict[str, Any]]:
        self.asked.append(str(field_selector))
        if kind == "Event" and f"involvedObject.uid={self.job_uid}," in str(field_selector):
            return [{"message": self.message, "lastTimestamp": "2026-12-03T21:00:00Z"}]
        return []


GROUP_JOB = {"metadata": {"name": "demo-train", "namespace": "ml", "uid": "group-uid"}, "spec": {"parallelism": 2}}
STARTING = Decision(Phase.RUNNING, "TrainingStarting", "training pod starting", dataset_ready=True)
POD_SECURITY = (
    'Error creating: pods "demo-train-0-x" is forbidden: violates PodSecurity "restricted:latest": '
    "allowPrivilegeEscalation != false"
)


def test_a_group_whose_pods_are_refused_fails_with_the_api_servers_message() -> None:
    """A multi-node group always has an attempt id (its Job), so only `pods_missing` says its pods never came."""
    events = FailedCreateEvents("group-uid", POD_SECURITY)
    state = podgroup.group_state(GROUP_JOB, [])
    assert state.phase is WorkloadPhase.STARTING and state.attempt_ids
    decision = unless_pods_refused(events, {"training": GROUP_JOB}, {"training": state}, STARTING)  # type: ignore[arg-type]
    assert (decision.phase, decision.reason, decision.failure_kind) == (Phase.FAILED, "CreateRefused", FailureKind.USER)
    assert decision.message.startswith("the API server refused the pods of Job demo-train: pods")
    assert "violates PodSecurity" in decision.message and decision.actions == frozenset({Action.STOP_WORKLOADS})


def test_a_group_that_a_quota_admits_in_part_waits_with_the_quotas_message() -> None:
    quota = (
        'Error creating: pods "demo-train-1-x" is forbidden: exceeded quota: gpus, requested: requests.nvidia.com/gpu=1'
    )
    running = {"metadata": {"name": "demo-train-0-x", "labels": {podgroup.CONTROLLER_UID_LABEL: "group-uid"}}}
    running["status"] = {"phase": "Running"}
    state = podgroup.group_state(GROUP_JOB, [running])
    events = FailedCreateEvents("group-uid", quota)
    decision = unless_pods_refused(events, {"training": GROUP_JOB}, {"training": state}, STARTING)  # type: ignore[arg-type]
    assert (decision.phase, decision.reason, decision.failure_kind) == (Phase.RUNNING, "QuotaExceeded", None)
    assert "the pods of Job demo-train" in decision.message and "exceeded quota: gpus" in decision.message


def test_a_group_with_all_its_pods_asks_for_no_events() -> None:
    events = FailedCreateEvents("group-uid", POD_SECURITY)
    pods = [
        {"metadata": {"name": f"demo-train-{i}-x", "labels": {podgroup.CONTROLLER_UID_LABEL: "group-uid"}}}
        for i in (0, 1)
    ]
    state = podgroup.group_state(GROUP_JOB, pods)
    assert unless_pods_refused(events, {"training": GROUP_JOB}, {"training": state}, STARTING) == STARTING  # type: ignore[arg-type]
    assert events.asked == []
