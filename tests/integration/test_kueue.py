"""FineTuningJobs queued, admitted and preempted by a real Kueue (v0.17.0, hack/build-kueue.sh).

Kueue runs against the local API server only while this module's tests run (`kueue` fixture). Each test gets a
ClusterQueue with 8 `nvidia.com/gpu` serving only its namespace, and a LocalQueue `gpus` there; the pods run on
the KWOK GPU nodes (two nodes with 8 GPUs each), so the quota, not the nodes, is what makes a job wait.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kwok_jobs import (
    PhaseRecorder,
    apply,
    get_json,
    gpu_job,
    phase_is,
    poll,
    reason_is,
    sessions_config_map,
    wait_status,
)
from operator_harness import OperatorProcess
from test_operator_e2e import quickstart, setup

import localcluster

pytestmark = pytest.mark.integration

Kubectl = Callable[..., str]
REPO = Path(__file__).resolve().parents[2]
QUEUE = "gpus"
KUEUE_JOB_UID = "kueue.x-k8s.io/job-uid"
REAL_TRAINING_CPU = "1"


@pytest.fixture(scope="module")
def kueue(cluster: localcluster.ClusterInfo, crds: Any) -> Iterator[None]:
    localcluster.kueue.start(cluster)
    yield
    localcluster.kueue.stop(cluster)


def queues(kubectl: Kubectl, namespace: str, quota: dict[str, str], node_labels: dict[str, str]) -> Iterator[str]:
    """A ResourceFlavor for the nodes with `node_labels`, a ClusterQueue with `quota` in it (preempting lower
    priorities) that serves only the namespace, and its LocalQueue `gpus` there; removed afterwards."""
    name = f"{namespace}-gpus"
    flavor = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ResourceFlavor",
        "metadata": {"name": name},
        "spec": {"nodeLabels": node_labels},
    }
    cluster_queue = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ClusterQueue",
        "metadata": {"name": name},
        "spec": {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "resourceGroups": [
                {
                    "coveredResources": list(quota),
                    "flavors": [
                        {"name": name, "resources": [{"name": r, "nominalQuota": q} for r, q in quota.items()]}
                    ],
                }
            ],
            "preemption": {"withinClusterQueue": "LowerPriority"},
        },
    }
    local_queue = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "LocalQueue",
        "metadata": {"name": QUEUE, "namespace": namespace},
        "spec": {"clusterQueue": name},
    }
    apply(kubectl, namespace, flavor, cluster_queue, local_queue)
    poll(lambda: _active(kubectl, namespace), "the LocalQueue to be active", 60)
    yield name
    # Kueue itself must release its finalizers: delete the jobs and their workloads while it runs.
    kubectl("-n", namespace, "delete", "ftj,jobs.batch", "--all", "--wait=true", "--timeout=60s")
    kubectl("-n", namespace, "wait", "--for=delete", "workloads", "--all", "--timeout=60s")
    kubectl("delete", f"clusterqueue/{name}", f"resourceflavor/{name}", "--timeout=60s")
    kubectl("delete", "priorityclass", "-l", f"test-namespace={namespace}", "--ignore-not-found")


@pytest.fixture
def gpu_queue(kueue: None, kubectl: Kubectl, namespace: str) -> Iterator[str]:
    """8 GPUs of the KWOK GPU nodes."""
    quota = {"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": "8"}
    yield from queues(kubectl, namespace, quota, {"finetune.dev/node-pool": "gpu"})


@pytest.fixture
def runner_queue(kueue: None, kubectl: Kubectl, namespace: str) -> Iterator[str]:
    """One CPU of the node agent's node: room for one real training pod of REAL_TRAINING_CPU at a time."""
    quota = {"cpu": REAL_TRAINING_CPU, "memory": "64Gi"}
    yield from queues(kubectl, namespace, quota, {"finetune.dev/local-runner": "true"})


def _active(kubectl: Kubectl, namespace: str, name: str = QUEUE) -> bool:
    queue = get_json(kubectl, "-n", namespace, "get", "localqueue", name)
    return any(c["type"] == "Active" and c["status"] == "True" for c in queue.get("status", {}).get("conditions", []))


def queued_job(name: str, run_for: str, priority_class: str | None = None, **spec: Any) -> dict[str, Any]:
    body = gpu_job(name, gpus=8, run_for=run_for, queueName=QUEUE, **spec)
    if priority_class:
        body["spec"]["resources"]["priorityClassName"] = priority_class
    return body


def workload_of(kubectl: Kubectl, namespace: str, job: str) -> dict[str, Any]:
    """Kueue's Workload for the job's training Job (Kueue labels it with the Job's UID)."""
    training = get_json(kubectl, "-n", namespace, "get", "jobs.batch", f"{job}-train")
    selector = f"{KUEUE_JOB_UID}={training['metadata']['uid']}"
    found = get_json(kubectl, "-n", namespace, "get", "workloads", "-l", selector)["items"]
    assert len(found) == 1, found
    return found[0]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Waits:
    """The waits on one test namespace's jobs (failing at once on an unexpected terminal phase)."""

    kubectl: Kubectl
    namespace: str
    operator: OperatorProcess

    def status(self, job: str, accept: Callable[[dict[str, Any]], bool], what: str, timeout: float) -> dict[str, Any]:
        return wait_status(self.kubectl, self.namespace, job, accept, what, timeout, self.operator)

    def training(self, job: str, timeout: float) -> dict[str, Any]:
        return self.status(job, reason_is("Running", "Training"), f"{job} admitted and training", timeout)

    def completed(self, job: str, timeout: float) -> dict[str, Any]:
        return self.status(job, phase_is("Completed"), f"{job} Completed", timeout)

    def queued(self, job: str, says: str, timeout: float) -> dict[str, Any]:
        """Until the job is Queued with `says` (Kueue's words, which its message carries) in its message."""
        return self.status(
            job,
            lambda s: s.get("phase") == "Queued" and says in s.get("message", ""),
            f"{job} Queued, saying {says!r}",
            timeout,
        )


@pytest.fixture
def waits(kubectl: Kubectl, namespace: str, operator_process: OperatorProcess) -> Waits:
    return Waits(kubectl, namespace, operator_process)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def test_second_8_gpu_job_waits_with_kueues_reason_and_runs_when_the_first_finishes(
    kubectl: Kubectl, namespace: str, gpu_queue: str, waits: Waits
) -> None:
    apply(kubectl, namespace, sessions_config_map(), queued_job("first", run_for="12s"))
    waits.training("first", 120)
    apply(kubectl, namespace, queued_job("second", run_for="2s"))
    status = waits.queued("second", "insufficient unused quota", 120)
    # Our message carries the Workload's own explanation, verbatim.
    kueue_says = condition(workload_of(kubectl, namespace, "second"), "QuotaReserved")
    assert kueue_says["status"] == "False"
    assert "insufficient unused quota for nvidia.com/gpu in flavor" in kueue_says["message"]
    assert "8 more needed" in kueue_says["message"]
    assert status["reason"] == "WaitingForAdmission"
    assert f"LocalQueue {QUEUE}" in status["message"] and kueue_says["message"] in status["message"], status
    assert get_json(kubectl, "-n", namespace, "get", "jobs.batch", "second-train")["spec"]["suspend"] is True
    first = get_json(kubectl, "-n", namespace, "get", "ftj", "first")["status"]
    assert first["phase"] == "Running", first

    waits.completed("first", 120)
    waits.completed("second", 120)
    assert condition(workload_of(kubectl, namespace, "second"), "Admitted")["status"] == "True"


def test_a_multi_node_group_is_admitted_whole_or_not_at_all(
    kubectl: Kubectl, namespace: str, gpu_queue: str, waits: Waits
) -> None:
    """resources.nodes > 1: one Kueue workload whose pod set counts every pod of the group (issue 14)."""
    shared = {"size": "1Gi", "accessMode": "ReadWriteMany"}
    too_big = queued_job("sixteen", run_for="2s", storage=shared)  # 2 pods x 8 GPUs against a quota of 8
    fits = gpu_job("two-by-four", gpus=4, run_for="3s", queueName=QUEUE, storage=shared)
    for body in (too_big, fits):
        body["spec"]["resources"]["nodes"] = 2
    apply(kubectl, namespace, sessions_config_map(), too_big, fits)
    waits.completed("two-by-four", 180)
    admitted = workload_of(kubectl, namespace, "two-by-four")
    assert [(p["count"], condition(admitted, "Admitted")["status"]) for p in admitted["spec"]["podSets"]] == [
        (2, "True")
    ]
    training = "app.kubernetes.io/component=training"
    ran = get_json(kubectl, "-n", namespace, "get", "pods", "-l", f"finetune.dev/job=two-by-four,{training}")
    assert len(ran["items"]) == 2
    status = waits.queued("sixteen", "nvidia.com/gpu", 120)
    assert (status["phase"], status["reason"]) == ("Queued", "WaitingForAdmission"), status
    workload = workload_of(kubectl, namespace, "sixteen")
    assert [p["count"] for p in workload["spec"]["podSets"]] == [2]
    assert condition(workload, "QuotaReserved")["status"] == "False"
    # Not one pod of the group started: no half-placed group holds GPUs while it waits for the rest.
    waiting = get_json(kubectl, "-n", namespace, "get", "pods", "-l", f"finetune.dev/job=sixteen,{training}")
    assert waiting["items"] == []
    assert get_json(kubectl, "-n", namespace, "get", "jobs.batch", "sixteen-train")["spec"]["suspend"] is True


def priority_class(kubectl: Kubectl, namespace: str, name: str, value: int) -> str:
    full = f"{namespace}-{name}"
    body = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": full, "labels": {"test-namespace": namespace}},
        "value": value,
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(body))
    return full


def test_higher_priority_job_preempts_and_the_preempted_job_requeues_without_using_a_retry(
    kubectl: Kubectl, kube: Any, namespace: str, gpu_queue: str, waits: Waits
) -> None:
    low = priority_class(kubectl, namespace, "low", 100)
    high = priority_class(kubectl, namespace, "high", 1000)
    # backoffLimit 0: had the preemption counted as a failed attempt, the job would end Failed.
    no_retries = {"runPolicy": {"backoffLimit": 0}}
    apply(kubectl, namespace, sessions_config_map(), queued_job("low", run_for="15s", priority_class=low, **no_retries))
    with PhaseRecorder(kube, namespace) as recorder:
        waits.training("low", 120)
        training = get_json(kubectl, "-n", namespace, "get", "jobs.batch", "low-train")
        apply(kubectl, namespace, queued_job("high", run_for="3s", priority_class=high))
        # Kueue evicts the lower-priority Workload and suspends its Job; the job says why, in Kueue's words.
        preempted = waits.queued("low", "Preempted", 120)
        assert preempted["reason"] == "WaitingForAdmission", preempted
        assert "due to prioritization in the ClusterQueue" in preempted["message"], preempted
        waits.completed("high", 120)
        done = waits.completed("low", 180)
        poll(lambda: recorder.of("low")[-1:] == ["Completed"], "the recorder to see Completed", 30)
        phases = recorder.of("low")

    assert phases[-4:] == ["Running", "Queued", "Running", "Completed"], phases
    after = get_json(kubectl, "-n", namespace, "get", "jobs.batch", "low-train")
    # The same training Job (and so the same workspace volume, where the trainer resumes from its latest
    # checkpoint) was suspended and resumed, and the Job counts no failed pod.
    assert after["metadata"]["uid"] == training["metadata"]["uid"]
    assert not after["status"].get("failed"), after["status"]
    assert done["attempts"] == 2, done


def real_training(name: str, epochs: int, priority_class_name: str) -> dict[str, Any]:
    """The quickstart (real tiny-gpt training by the node agent) in the queue, at a priority, with no retries."""
    body = quickstart(name, epochs=epochs)
    body["spec"]["queueName"] = QUEUE
    body["spec"]["resources"].update(cpu=REAL_TRAINING_CPU, priorityClassName=priority_class_name)
    # backoffLimit 0: had the preemption counted as a failed attempt, the job would end Failed.
    body["spec"]["runPolicy"]["backoffLimit"] = 0
    return body


def logged_events(cluster: localcluster.ClusterInfo, namespace: str, pod: str, name: str) -> list[dict[str, Any]]:
    """The trainer's structured events `name` in a training pod's log, read from the node agent's log files (in
    the CRI format: time, stream, tag, text), which outlive the pod: a preempted pod is deleted."""
    runs = sorted((cluster.state_dir / "node-agent" / "logs").glob(f"{namespace}_{pod}_*/*/*.log"))
    texts = [line.split(" ", 3)[-1] for run in runs for line in run.read_text().splitlines()]
    events = (json.loads(text) for text in texts if text.startswith("{"))
    return [event for event in events if event.get("event") == name]


def past_first_step(status: dict[str, Any]) -> bool:
    return status.get("reason") == "Training" and (status.get("progress") or {}).get("step", 0) > 0


@pytest.mark.slow
def test_real_training_preempted_by_kueue_stops_at_a_checkpoint_and_resumes_from_it_without_using_a_retry(
    kubectl: Kubectl,
    namespace: str,
    cluster: localcluster.ClusterInfo,
    runner_queue: str,
    waits: Waits,
) -> None:
    low = priority_class(kubectl, namespace, "low", 100)
    high = priority_class(kubectl, namespace, "high", 1000)
    setup(kubectl, namespace, real_training("low", epochs=8, priority_class_name=low))
    waits.status("low", past_first_step, "low training past its first step", 600)
    apply(kubectl, namespace, real_training("high", epochs=1, priority_class_name=high))
    # Kueue evicts the lower-priority Workload and suspends its Job: the trainer gets SIGTERM, checkpoints and
    # exits; the job goes back to Queued and says why, in Kueue's words.
    preempted = waits.queued("low", "Preempted", 300)
    assert "due to prioritization in the ClusterQueue" in preempted["message"], preempted
    waits.completed("high", 600)
    done = waits.completed("low", 600)

    first, second = done["trainingPods"]
    assert done["attempts"] == 2, done
    # The preempted trainer saw SIGTERM and saved a checkpoint on its way out.
    assert logged_events(cluster, namespace, first, "sigterm"), first
    stopped = logged_events(cluster, namespace, first, "checkpoint_saved")
    resumed = logged_events(cluster, namespace, second, "resuming")
    assert stopped and resumed, (stopped, resumed)
    # The second attempt started from the last checkpoint the preempted one wrote: nothing trained was lost.
    assert resumed[0]["step"] == stopped[-1]["step"] > 0, (stopped, resumed)
    assert not get_json(kubectl, "-n", namespace, "get", "jobs.batch", "low-train")["status"].get("failed")


def test_the_documented_gpu_queue_setup_is_accepted_and_becomes_active(
    kueue: None, kubectl: Kubectl, crds: Any
) -> None:
    # docs/install.md shows manifests/kueue/gpu-queues.yaml; Kueue's webhooks validate it for real here.
    example = REPO / "manifests" / "kueue" / "gpu-queues.yaml"
    sample = REPO / "manifests" / "samples" / "kueue.yaml"
    kubectl("create", "namespace", "ml-team-a")
    try:
        kubectl("apply", "--server-side", "-f", str(example))
        poll(lambda: _active(kubectl, "ml-team-a", "gpu-team-a"), "the documented LocalQueue to be active", 60)
        kubectl("-n", "ml-team-a", "apply", "--server-side", "--dry-run=server", "-f", str(sample))
    finally:
        kubectl("delete", "--ignore-not-found", "-f", str(example))
        kubectl("delete", "namespace", "ml-team-a", "--wait=false")
