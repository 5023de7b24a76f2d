"""Creating a job's children: a name that exists is no proof the object is the job's, and a refusal by the API
server is an answer to report, not an error to retry forever.

- 409 AlreadyExists: the object is read back. It is this job's when it carries the job's uid label or an
  ownerReference to it. An object a deleted job of the same name left behind with an ownerReference is garbage
  the API server is about to remove: the job waits for that (reason NameCollision, re-read by the sweep).
  Anything else, such as the retained workspace of a deleted job of the same name or a ConfigMap someone created
  under `<job>-config`, is never used: the job fails with NameCollision, naming the object.
- 403 exceeded quota: the job keeps its phase with reason QuotaExceeded and the quota's message; the sweep
  retries (freed quota sends no event to the job).
- Any other refusal (400 or 422 invalid, 403 from RBAC, an admission policy or a webhook, 404 namespace gone):
  the job fails with the API server's message and the object it refused (asking again gets the same answer).
  5xx and 429 are transient and raised as before (the next event retries).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from finetune_operator import naming
from finetune_operator.api import FailureKind, Phase
from finetune_operator.kube import ApiError, Kube
from finetune_operator.lifecycle import TERMINAL_PHASES
from finetune_operator.observation import Action, Decision, StorageState, WorkloadState
from finetune_operator.observe import storage_state

Obj = dict[str, Any]


class Refusal(Exception):
    """Why a child could not be created; `failure_kind` None means the job waits (keeps its phase)."""

    def __init__(self, reason: str, message: str, failure_kind: FailureKind | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.failure_kind = failure_kind

    def decide(self, decision: Decision) -> Decision:
        """The job's decision instead of `decision`, whose actions could not be carried out."""
        if self.failure_kind is None:
            return replace(decision, reason=self.reason, message=self.message, actions=frozenset())
        stop = frozenset({Action.STOP_WORKLOADS})  # a workload whose pods are refused keeps retrying otherwise
        return Decision(
            Phase.FAILED,
            self.reason,
            self.message,
            self.failure_kind,
            dataset_ready=decision.dataset_ready,
            actions=stop,
        )


def create_child(kube: Kube, obj: Obj, job_uid: str) -> bool:
    """Create `obj`; True if created, False if it exists already and is this job's. Raises `Refusal`."""
    try:
        if kube.create(obj):
            return True
    except ApiError as error:
        if error.status >= 500 or error.status == 429:
            raise
        raise refusal(obj, error) from error
    meta = obj["metadata"]
    existing = kube.get(obj["kind"], meta["namespace"], meta["name"])
    if existing is None or is_owned_by(existing, job_uid):
        return False  # gone meanwhile: the next reconciliation creates it
    raise collision(obj["kind"], existing)


def unless_pods_refused(
    kube: Kube, workloads: Mapping[str, Mapping[str, Any]], states: Mapping[str, WorkloadState], decision: Decision
) -> Decision:
    """`decision`, or what a refusal of a workload's pods makes of it (`states`: by component). Asked only while a
    workload lacks pods (`WorkloadState.pods_missing`): a single-pod Job without its pod, a multi-node group with
    fewer pods than nodes."""
    short = [
        workloads[component] for component, state in states.items() if component in workloads and state.pods_missing
    ]
    refused = pods_refused(kube, short) if short and decision.phase not in TERMINAL_PHASES else None
    return refused.decide(decision) if refused else decision


def unless_unprovisioned(kube: Kube, pvc: Mapping[str, Any] | None, decision: Decision) -> Decision:
    """While the workspace claim waits for a volume, the provisioner's latest ProvisioningFailed Event (an unknown
    StorageClass, a backend out of space) becomes the job's waiting reason. It stays a wait: the class may yet be
    created, and the claim then binds (its watch event reconciles the job)."""
    if pvc is None or storage_state(pvc) is not StorageState.PENDING or decision.reason != "CurationStarting":
        return decision
    meta = pvc.get("metadata") or {}
    name = meta.get("name")
    selector = f"involvedObject.kind=PersistentVolumeClaim,involvedObject.name={name},reason=ProvisioningFailed"
    events = kube.list("Event", str(meta.get("namespace")), field_selector=selector)
    if not events:
        return decision
    latest = max(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    message = f"waiting for the workspace volume {name}: {latest.get('message')}"[:1024]
    return replace(decision, reason="WorkspaceNotProvisioned", message=message)


def pods_refused(kube: Kube, workloads: Iterable[Mapping[str, Any]]) -> Refusal | None:
    """Why the Job controller cannot create the pods of a workload that lacks them (Pod Security, a LimitRange, a
    quota or a policy on pods refused them): the latest FailedCreate Event of each such batch Job, if any."""
    for job in workloads:
        meta = job.get("metadata") or {}
        selector = f"involvedObject.uid={meta.get('uid')},reason=FailedCreate"
        events = kube.list("Event", str(meta.get("namespace")), field_selector=selector)
        if events:
            latest = max(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
            message = str(latest.get("message") or "").removeprefix("Error creating: ")
            quota = "exceeded quota" in message or "status unknown for quota" in message
            what = f"the pods of Job {meta.get('name')}"
            if quota:
                return Refusal("QuotaExceeded", f"waiting for quota to create {what}: {message}")
            refused = f"the API server refused {what}: {message}"
            return Refusal("CreateRefused", refused[:1024], FailureKind.USER)
    return None


def is_owned_by(obj: Mapping[str, Any], job_uid: str) -> bool:
    meta = obj.get("metadata") or {}
    if (meta.get("labels") or {}).get(naming.LABEL_JOB_UID) == job_uid:
        return True
    return any(owner.get("uid") == job_uid for owner in meta.get("ownerReferences") or [])


def refusal(obj: Mapping[str, Any], error: ApiError) -> Refusal:
    what = f"{obj['kind']} {obj['metadata']['name']}"
    # "status unknown": the quota controller has not counted the namespace's usage yet (a new quota).
    if error.status == 403 and ("exceeded quota" in error.message or "status unknown for quota" in error.message):
        return Refusal("QuotaExceeded", f"waiting for quota to create {what}: {error.message}")
    kind = FailureKind.SYSTEM if error.status == 403 and "cannot create resource" in error.message else FailureKind.USER
    return Refusal("CreateRefused", f"the API server refused to create {what} ({error.status}): {error.message}", kind)


def collision(kind: str, existing: Mapping[str, Any]) -> Refusal:
    meta = existing.get("metadata") or {}
    name, namespace = meta.get("name"), meta.get("namespace")
    what = f"{kind} {name}"
    owners = [o for o in meta.get("ownerReferences") or [] if o.get("kind") == "FineTuningJob"]
    if owners or meta.get("deletionTimestamp"):
        # A deleted job's child: the garbage collector removes it (its owner's uid no longer exists).
        return Refusal("NameCollision", f"waiting for {what} of a deleted job with the same name to be deleted")
    earlier = (meta.get("labels") or {}).get(naming.LABEL_JOB_UID)
    whose = f"is the retained {kind} of an earlier job with this name (uid {earlier})" if earlier else "is not ours"
    message = (
        f"{what} already exists and {whose}; the job does not use it. Delete it "
        f"(kubectl delete {kind.lower()} -n {namespace} {name}) and re-create the job, or name the job differently"
    )
    return Refusal("NameCollision", message, FailureKind.USER)
