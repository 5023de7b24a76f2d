"""Multi-node training (spec.resources.nodes > 1): an Indexed batch Job of `nodes` pods and a headless Service.

The pods' hostnames are `<Job>-<index>` (the Job controller sets them for Indexed Jobs) under the Service's name
as DNS subdomain, so node rank k reaches node rank 0 at `<Job>-0.<Service>` on port 29500; the Service publishes
not-ready addresses, so the record exists as soon as pod 0 has an IP. The trainer's supervisor bounds the wait
for the group (`RendezvousTimeout`, naming the missing ranks).

One attempt is the whole group, so a group has no retries of its own (`backoffLimit: 0`, any pod's failure fails
the Job) and the operator restarts it: `lifecycle` waits until no pod of the failed group runs, then the
reconciler deletes the Job (foreground: its pods are gone, their checkpoint written, before it disappears) and
creates it again; every pod resumes from the workspace's latest checkpoint. The attempt id is the Job's uid, so
`status.attempts` counts groups; a group that an eviction or preemption stopped uses no retry
(`WorkloadState.disrupted`). With `spec.queueName` Kueue admits the Job's `parallelism` pods as one pod set: all
or nothing. Without it, pods that cannot be scheduled keep the job Queued with the scheduler's reason per pod.
While the Job has fewer pods than nodes (`WorkloadState.pods_missing`), the reconciler reads its FailedCreate
Events, so pods the API server refuses are reported as for a single-pod Job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from finetune_operator import naming
from finetune_operator.api.modelversion import ArtifactLocation
from finetune_operator.api.nodegroup import (
    GROUP_ID_ENV,
    MASTER_ADDR_ENV,
    MASTER_PORT,
    MASTER_PORT_ENV,
    NODES_ENV,
    RENDEZVOUS_SECONDS_ENV,
)
from finetune_operator.api.termination import TerminationMessage
from finetune_operator.backends import batchjob
from finetune_operator.backends.base import ObjectRef
from finetune_operator.children import JobRef
from finetune_operator.config import Settings
from finetune_operator.observation import WorkloadPhase, WorkloadState
from finetune_operator.observe import workload_state

Obj = dict[str, Any]
Observed = Mapping[str, Any]

COMPONENT = batchjob.COMPONENT
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
PORT_NAME = "rendezvous"


class PodGroupBackend:
    component = COMPONENT

    def children(self, job: JobRef, settings: Settings) -> list[Obj]:
        # The Service first: pod 0's DNS record must be there when the other pods look for it.
        return [rendezvous_service(job), group_job(job, settings)]

    def observe(self, workload: Observed | None, pods: Sequence[Observed]) -> WorkloadState:
        return group_state(workload, pods)

    def stop(self, workload: Observed | None) -> list[ObjectRef]:
        # The Service stays until the FineTuningJob goes (it owns it): a restarted group needs it again.
        return [ObjectRef("Job", str(workload["metadata"]["name"]))] if workload is not None else []

    def artifact(self, job_name: str, result: TerminationMessage) -> ArtifactLocation:
        return batchjob.BatchJobBackend().artifact(job_name, result)


def master_address(job_name: str) -> str:
    """Node rank 0's hostname, `<Job>-0.<Service>`: the pods' DNS search path adds `<namespace>.svc.<domain>`."""
    return f"{naming.group_job(job_name)}-0.{naming.group_service(job_name)}"


def rendezvous_service(job: JobRef) -> Obj:
    """The headless Service giving each pod of the group a DNS record (it selects the pods by the job's uid)."""
    selector = {naming.LABEL_JOB_UID: job.uid, naming.LABEL_COMPONENT: COMPONENT}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": job.metadata(naming.group_service(job.name), COMPONENT),
        "spec": {
            "clusterIP": "None",
            # Records from the moment a pod has an IP: the ranks meet before any of them is "ready".
            "publishNotReadyAddresses": True,
            "selector": selector,
            "ports": [{"name": PORT_NAME, "port": MASTER_PORT, "targetPort": MASTER_PORT, "protocol": "TCP"}],
        },
    }


def group_job(job: JobRef, settings: Settings) -> Obj:
    """The single-pod training Job made an Indexed Job of `nodes` pods that restarts only as a whole."""
    nodes = job.spec.resources.nodes
    built = batchjob.training_job(job, settings)
    built["metadata"]["name"] = naming.group_job(job.name)
    spec = built["spec"]
    spec.update({"completionMode": "Indexed", "completions": nodes, "parallelism": nodes, "backoffLimit": 0})
    # Any pod's failure fails the Job at once; the operator restarts the whole group (see the module docstring).
    # An eviction fails it too (instead of the single-pod Job's Ignore, which would replace that one pod alone),
    # and the Failed condition names the DisruptionTarget rule, so the restart uses no retry.
    for rule in spec["podFailurePolicy"]["rules"]:
        if rule.get("onPodConditions"):
            rule["action"] = "FailJob"
    pod = spec["template"]["spec"]
    pod["subdomain"] = naming.group_service(job.name)
    container = pod["containers"][0]
    container["ports"] = [{"name": PORT_NAME, "containerPort": MASTER_PORT, "protocol": "TCP"}]
    container["env"] = [
        *container["env"],
        {"name": NODES_ENV, "value": str(nodes)},
        {"name": MASTER_ADDR_ENV, "value": master_address(job.name)},
        {"name": MASTER_PORT_ENV, "value": str(MASTER_PORT)},
        {"name": RENDEZVOUS_SECONDS_ENV, "value": str(settings.rendezvous_timeout_seconds)},
        {
            "name": GROUP_ID_ENV,
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{CONTROLLER_UID_LABEL}']"}},
        },
    ]
    return built


def attempt_id(workload: Observed) -> str:
    """One group attempt: the Job's name and the start of its uid (a recreated Job has a new uid)."""
    meta = workload["metadata"]
    return f"{meta['name']}@{str(meta.get('uid') or '')[:8]}"


def node_rank(pod: Observed) -> str:
    """The pod's completion index: a label (the operator's pod index keeps labels only) and an annotation."""
    meta = pod.get("metadata") or {}
    return str((meta.get("labels") or {}).get(INDEX_LABEL) or (meta.get("annotations") or {}).get(INDEX_LABEL, "?"))


def group_state(workload: Observed | None, pods: Sequence[Observed]) -> WorkloadState:
    """The group's state: one attempt per Job, rank 0's result, Unschedulable while any pod waits for a node."""
    state = workload_state(workload, pods)
    if workload is None:
        return state
    # The Job is the attempt, with or without pods: the Job controller deletes the pods of a failed group before
    # the operator restarts it, and its retry must still be counted once, under the same id.
    ids = (attempt_id(workload),)
    state = replace(state, attempts=1, attempt_ids=ids, disrupted=_disrupted(workload, pods))
    if state.phase is WorkloadPhase.SUCCEEDED:
        return replace(state, result=_rank_zero_result(pods) or state.result)
    if state.phase is WorkloadPhase.FAILED:
        first = _first_failure(pods)
        if first is not None:
            return replace(state, result=first, message=first.message or state.message)
        return state
    if state.phase in (WorkloadPhase.RUNNING, WorkloadPhase.STARTING):
        state = replace(state, pods_missing=_pods_missing(workload, pods))
        waiting = _unschedulable(pods)
        if waiting:
            return replace(state, phase=WorkloadPhase.UNSCHEDULABLE, message=waiting)
    return state


def _pods_missing(workload: Observed, pods: Sequence[Observed]) -> bool:
    """Fewer pods of this Job exist than it runs at once: the API server may refuse some or all of them (a quota
    that admits one pod of two leaves rank 0 waiting for a peer that is never created)."""
    parallelism = (workload.get("spec") or {}).get("parallelism")
    uid = (workload.get("metadata") or {}).get("uid")
    labels = [(pod.get("metadata") or {}).get("labels") or {} for pod in pods]
    mine = [pod for pod in labels if not uid or pod.get(CONTROLLER_UID_LABEL) == uid]
    return isinstance(parallelism, int) and len(mine) < parallelism


def _terminated(pod: Observed) -> Mapping[str, Any] | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            return terminated  # type: ignore[no-any-return]
    return None


def _rank_zero_result(pods: Sequence[Observed]) -> TerminationMessage | None:
    """Rank 0 reports the model and metrics; the other pods end with no termination message."""
    for pod in pods:
        term = _terminated(pod)
        if node_rank(pod) == "0" and term is not None and term.get("exitCode") == 0:
            return TerminationMessage.parse(term.get("message"))
    return None


def _first_failure(pods: Sequence[Observed]) -> TerminationMessage | None:
    """The earliest failure a pod reported: the others' are its consequences (ranks that lost their peer)."""
    reports = []
    for pod in pods:
        term = _terminated(pod)
        message = TerminationMessage.parse(term.get("message")) if term else None
        if term is not None and message is not None and message.failed:
            reports.append((str(term.get("finishedAt") or ""), message))
    return min(reports, key=lambda pair: pair[0])[1] if reports else None


def _disrupted(workload: Observed, pods: Sequence[Observed]) -> bool:
    """An eviction, preemption or lost node stopped the group (then its restart uses no retry)."""
    for condition in (workload.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Failed", "FailureTarget") and "DisruptionTarget" in str(
            condition.get("message") or ""
        ):
            return True
    return any(
        c.get("type") == "DisruptionTarget" and c.get("status") == "True"
        for pod in pods
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _unschedulable(pods: Sequence[Observed]) -> str:
    """Each pod the scheduler cannot place, with its reason: a partly started group trains nothing."""
    waiting = []
    for pod in pods:
        if (pod.get("status") or {}).get("phase") not in (None, "Pending"):
            continue
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
                reason = condition.get("message") or "no node has the requested resources free"
                waiting.append(f"pod {pod['metadata']['name']} (node rank {node_rank(pod)}): {reason}")
    return "; ".join(sorted(waiting))
