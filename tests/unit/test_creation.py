"""How the operator answers a child it cannot create (finetune_operator.creation): a refusal it waits out (quota,
a deleted namesake's garbage), a refusal it reports (invalid, forbidden), and an object under the child's name
that is not the job's. tests/integration/test_refusals.py runs each on the real API server."""

from __future__ import annotations

from typing import Any

from finetune_operator.api import FailureKind, Phase
from finetune_operator.creation import Refusal, collision, is_owned_by, refusal
from finetune_operator.kube import ApiError
from finetune_operator.observation import Action, Decision

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
