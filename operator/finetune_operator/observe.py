"""Turn raw Kubernetes objects into the lifecycle's `Observed` snapshot (pure).

Everything here reads plain JSON dicts as the API returns them, so it is unit-testable with literal objects
and independent of how the operator fetched them (watch indexes or direct reads).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from finetune_operator import rfc3339
from finetune_operator.api.termination import TerminationMessage
from finetune_operator.observation import StorageState, WorkloadPhase, WorkloadState

Obj = Mapping[str, Any]

IMAGE_PULL_FAILURES = frozenset({"ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
# Kueue labels the Workload it creates for a batch Job with that Job's UID.
KUEUE_JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
# Workload conditions that say why Kueue has not admitted a workload (again), most specific first: an eviction
# (preemption, ...) while it lasts, then why no quota is reserved ("couldn't assign flavors to pod set main:
# insufficient unused quota for nvidia.com/gpu in flavor a100-pool, 8 more needed"), then admission checks.
_KUEUE_WAITING = (("Evicted", "True"), ("QuotaReserved", "False"), ("Admitted", "False"))


def storage_state(pvc: Obj | None) -> StorageState:
    if pvc is None:
        return StorageState.ABSENT
    phase = (pvc.get("status") or {}).get("phase")
    if phase == "Bound":
        return StorageState.BOUND
    if phase == "Lost":
        return StorageState.LOST
    return StorageState.PENDING


def _condition(obj: Obj, ctype: str) -> Mapping[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == ctype and condition.get("status") == "True":
            return condition  # type: ignore[no-any-return]
    return None


def kueue_waiting_message(workload: Obj | None) -> str | None:
    """Kueue's own explanation, from a Workload's conditions, of why it has not admitted the workload."""
    conditions = {c.get("type"): c for c in ((workload or {}).get("status") or {}).get("conditions") or []}
    for ctype, status in _KUEUE_WAITING:
        condition = conditions.get(ctype) or {}
        if condition.get("status") == status and condition.get("message"):
            return str(condition["message"])
    return None


def no_kueue_workload_seconds(training: Obj | None, kueue_workload: Obj | None, now: datetime) -> float:
    """How long a suspended training Job has existed without the Workload Kueue creates for it within seconds (0
    when it has one, or is not suspended): a long time means no Kueue controller acts on the Job."""
    if training is None or kueue_workload is not None or not (training.get("spec") or {}).get("suspend"):
        return 0.0
    created = rfc3339.parse((training.get("metadata") or {}).get("creationTimestamp"))
    return max(0.0, (now - created).total_seconds()) if created else 0.0


def _terminated(pod: Obj) -> Mapping[str, Any] | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            return terminated  # type: ignore[no-any-return]
    return None


def _finished_pods(pods: Iterable[Obj]) -> list[tuple[Obj, Mapping[str, Any]]]:
    finished = [(pod, term) for pod in pods if (term := _terminated(pod)) is not None]
    finished.sort(key=lambda pair: str(pair[1].get("finishedAt") or ""))
    return finished


def _waiting_reasons(pod: Obj) -> list[tuple[str, str]]:
    reasons = []
    status = pod.get("status") or {}
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            reasons.append((str(waiting["reason"]), str(waiting.get("message") or "")))
    return reasons


def _unschedulable_message(pod: Obj) -> str | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return str(condition.get("message") or "no node has the requested resources free")
    return None


def workload_state(job: Obj | None, pods: Sequence[Obj]) -> WorkloadState:
    """Classify a batch/v1 Job and its pods."""
    if job is None:
        return WorkloadState()
    job_status = job.get("status") or {}
    counted = int(job_status.get("failed") or 0) + int(job_status.get("succeeded") or 0)
    counted += int(job_status.get("active") or 0)
    attempts = max(counted, len(pods))
    active = any((p.get("status") or {}).get("phase") in (None, "Pending", "Running") for p in pods)
    active = active or int(job_status.get("active") or 0) > 0
    finished = _finished_pods(pods)
    last = finished[-1][1] if finished else None
    last_result = TerminationMessage.parse(last.get("message") if last else None)
    common: dict[str, Any] = {
        "attempts": attempts,
        "attempt_ids": tuple(sorted(str(p["metadata"]["name"]) for p in pods)),
        "active": active,
        "exit_code": last.get("exitCode") if last else None,
        "container_reason": last.get("reason") if last else None,
    }

    complete = _condition(job, "Complete") or _condition(job, "SuccessCriteriaMet")
    if complete:
        succeeded = [term for pod, term in finished if term.get("exitCode") == 0]
        result = TerminationMessage.parse(succeeded[-1].get("message")) if succeeded else last_result
        return WorkloadState(WorkloadPhase.SUCCEEDED, result=result, **{**common, "active": False})
    failed = _condition(job, "Failed") or _condition(job, "FailureTarget")
    if failed:
        message = last_result.message or str(failed.get("message") or "")
        return WorkloadState(
            WorkloadPhase.FAILED,
            message=str(message),
            job_reason=str(failed.get("reason") or ""),
            result=last_result,
            **common,
        )
    if (job.get("spec") or {}).get("suspend"):
        suspended = _condition(job, "Suspended")
        return WorkloadState(WorkloadPhase.SUSPENDED, message=str((suspended or {}).get("message") or ""), **common)

    live = [p for p in pods if (p.get("status") or {}).get("phase") in (None, "Pending", "Running")]
    for pod in live:
        for reason, message in _waiting_reasons(pod):
            if reason in IMAGE_PULL_FAILURES:
                error = f"{reason}: {message}" if message else reason
                return WorkloadState(WorkloadPhase.STARTING, image_pull_error=error, **common)
    if any((p.get("status") or {}).get("phase") == "Running" for p in live):
        return WorkloadState(WorkloadPhase.RUNNING, **common)
    if not live and finished:
        # Every pod has ended but the Job controller has not concluded yet (or is about to retry):
        # the workload is still under way, not starting again.
        return WorkloadState(WorkloadPhase.RUNNING, **common)
    for pod in live:
        unschedulable = _unschedulable_message(pod)
        if unschedulable:
            return WorkloadState(WorkloadPhase.UNSCHEDULABLE, message=unschedulable, **common)
    return WorkloadState(WorkloadPhase.STARTING, message=_starting_message(live), pods_missing=not pods, **common)


def _starting_message(pods: Sequence[Obj]) -> str:
    """What a starting pod waits for, as the kubelet says it (ContainerCreating, PodInitializing, ...)."""
    for pod in pods:
        for reason, message in _waiting_reasons(pod):
            detail = f"{reason}: {message}" if message else reason
            return f"{pod['metadata']['name']} is waiting ({detail})"
    return ""
