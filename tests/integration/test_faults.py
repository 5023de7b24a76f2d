"""Faults (issue #9) against the real control plane, with KWOK GPU nodes running the pods.

- the operator SIGKILLed at each stage of a job and restarted: the job finishes, nothing is created twice, and
  the phase never goes backwards (other than a requeue);
- kube-apiserver restarted under running jobs: the operator reconnects by itself;
- two replicas sharing a Kopf peering object: one acts, and the other takes over when it is killed.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kwok_jobs import (
    COMPONENT,
    GROUP,
    JOB_UID,
    VERSION,
    PhaseRecorder,
    apply,
    backward_steps,
    children,
    get_json,
    gpu_job,
    items,
    phase_is,
    poll,
    reason_is,
    sessions_config_map,
    wait_status,
)
from operator_harness import OperatorProcess, operator

import localcluster
from support.fixtures import Kubectl

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

PEERING_CRDS = REPO / "manifests" / "crds" / "kopf-peering-crds.yaml"
GPU_NODES = "finetune.dev/node-pool=gpu"


def uid_of(kubectl: Kubectl, namespace: str, name: str) -> str:
    return str(get_json(kubectl, "-n", namespace, "get", "ftj", name)["metadata"]["uid"])


def workload_uids(kubectl: Kubectl, namespace: str, uid: str) -> dict[str, str]:
    """component -> metadata.uid of the job's batch Jobs (a re-created Job has a new uid)."""
    jobs = items(kubectl, namespace, "jobs.batch", f"{JOB_UID}={uid}")
    return {j["metadata"]["labels"][COMPONENT]: j["metadata"]["uid"] for j in jobs}


def assert_one_of_each_child(kubectl: Kubectl, namespace: str, name: str, status: dict[str, Any]) -> str:
    """Exactly one curation Job, training Job, PVC and ModelVersion, the one the status names; returns the uid."""
    uid = uid_of(kubectl, namespace, name)
    found = children(kubectl, namespace, uid)
    assert {kind: len(names) for kind, names in found.items()} == {
        "curation": 1,
        "training": 1,
        "pvc": 1,
        "modelversion": 1,
    }, found
    assert status["model"]["modelVersion"] == found["modelversion"][0]
    return uid


def assert_finished_once(kubectl: Kubectl, namespace: str, name: str, phases: list[str]) -> dict[str, Any]:
    """Completed, exactly one of each child, one training pod, and a phase sequence that never goes back."""
    status: dict[str, Any] = get_json(kubectl, "-n", namespace, "get", "ftj", name)["status"]
    assert status["phase"] == "Completed", status
    uid = assert_one_of_each_child(kubectl, namespace, name, status)
    pods = items(kubectl, namespace, "pods", f"{JOB_UID}={uid},{COMPONENT}=training")
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    assert phases and phases[-1] == "Completed", phases
    assert backward_steps(phases) == [], phases
    return status


# ------------------------------------------------------------------------------------------ SIGKILL


def gpu_blockers(count: int) -> list[dict[str, Any]]:
    """Pods that hold all 8 GPUs of a KWOK node until deleted (no run-for annotation)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"gpu-blocker-{i}", "labels": {"test": "gpu-blocker"}},
            "spec": {
                "nodeSelector": {"finetune.dev/node-pool": "gpu"},
                "containers": [{"name": "hold", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": "8"}}}],
            },
        }
        for i in range(count)
    ]


class KillOnModelVersion:
    """SIGKILLs the operator the moment a ModelVersion appears in the namespace (from a watch)."""

    def __init__(self, api: client.ApiClient, namespace: str, process: OperatorProcess) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.process = process
        self.killed = threading.Event()
        listing: Any = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "modelversions")
        assert not listing["items"]
        self.version = listing["metadata"]["resourceVersion"]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            "modelversions",
            resource_version=self.version,
            timeout_seconds=120,
        )
        for event in stream:
            if event["type"] == "ADDED":
                assert self.process.process is not None
                os.killpg(self.process.process.pid, signal.SIGKILL)
                self.killed.set()
                return


MOMENTS = ["Pending", "Queued", "Running", "Evaluating", "Registered", "Unrecorded"]


@pytest.mark.parametrize("moment", MOMENTS)
def test_operator_sigkilled_resumes_without_duplicates(
    moment: str, kubectl: Kubectl, kube: client.ApiClient, namespace: str, operator_process: OperatorProcess
) -> None:
    name = "job"
    with PhaseRecorder(kube, namespace) as recorder:
        before: dict[str, str] = {}
        if moment == "Pending":
            # No source yet: the job waits in Pending; the source appears while the operator is down.
            apply(kubectl, namespace, gpu_job(name))
            wait_status(
                kubectl, namespace, name, reason_is("Pending", "SourceNotFound"), "SourceNotFound", 60, operator_process
            )
            operator_process.kill()
            apply(kubectl, namespace, sessions_config_map())
        elif moment == "Queued":
            # Every GPU of the KWOK nodes is held, so the 8-GPU training pod cannot be scheduled.
            gpu_nodes = kubectl("get", "nodes", "-l", GPU_NODES, "-o", "name").split()
            apply(kubectl, namespace, sessions_config_map(), *gpu_blockers(len(gpu_nodes)))

            def blockers_running() -> bool:
                pods = items(kubectl, namespace, "pods", "test=gpu-blocker")
                return len(pods) == len(gpu_nodes) and all(p["status"].get("phase") == "Running" for p in pods)

            poll(blockers_running, "pods holding every GPU", 180)  # other tests may hold GPUs for a while
            apply(kubectl, namespace, gpu_job(name, gpus=8))
            wait_status(
                kubectl, namespace, name, reason_is("Queued", "WaitingForCapacity"), "Queued", 90, operator_process
            )
            before = workload_uids(kubectl, namespace, uid_of(kubectl, namespace, name))
            operator_process.kill()
            kubectl("-n", namespace, "delete", "pods", "-l", "test=gpu-blocker", "--grace-period=0", "--force")
        elif moment in ("Running", "Evaluating", "Unrecorded"):
            apply(kubectl, namespace, sessions_config_map(), gpu_job(name, run_for="8s"))
            wait_status(kubectl, namespace, name, reason_is("Running", "Training"), "training", 60, operator_process)
            if moment == "Evaluating":
                # What the trainer reports when it starts evaluating (status subresource, merge patch).
                patch = {"status": {"progress": {"stage": "Evaluating"}}}
                kubectl(
                    "-n",
                    namespace,
                    "patch",
                    "ftj",
                    name,
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    json.dumps(patch),
                )
                wait_status(kubectl, namespace, name, phase_is("Evaluating"), "Evaluating", 30, operator_process)
            before = workload_uids(kubectl, namespace, uid_of(kubectl, namespace, name))
            operator_process.kill()
            if moment == "Unrecorded":
                register_as_the_operator_would(kubectl, namespace, name)
        else:  # Registered: killed the moment the operator created the ModelVersion
            killer = KillOnModelVersion(kube, namespace, operator_process)
            apply(kubectl, namespace, sessions_config_map(), gpu_job(name, run_for="3s"))
            poll(killer.killed.is_set, "the ModelVersion (then SIGKILL)", 90)
            operator_process.process.wait(timeout=30)  # type: ignore[union-attr]
            before = workload_uids(kubectl, namespace, uid_of(kubectl, namespace, name))
        killed_with = get_json(kubectl, "-n", namespace, "get", "ftj", name)["status"]

        operator_process.start()
        wait_status(
            kubectl, namespace, name, phase_is("Completed"), "Completed after the restart", 120, operator_process
        )
        poll(lambda: recorder.of(name)[-1:] == ["Completed"], "the recorder to see Completed", 30)
        phases = recorder.of(name)

    status = assert_finished_once(kubectl, namespace, name, phases)
    after = workload_uids(kubectl, namespace, uid_of(kubectl, namespace, name))
    assert {k: after[k] for k in before} == before, "a Job was deleted and created again"
    assert status["model"]["version"] == "0.0.1"
    expected_seen = {"Registered": "Running", "Unrecorded": "Running"}.get(moment, moment)
    assert expected_seen in phases, (moment, phases, killed_with)
    if moment == "Evaluating":
        assert phases[-2:] == ["Evaluating", "Completed"], phases
    if moment == "Unrecorded":
        assert not killed_with.get("model"), killed_with


def register_as_the_operator_would(kubectl: Kubectl, namespace: str, name: str) -> None:
    """The state a crash between the ModelVersion's creation and the status write leaves behind."""
    from finetune_operator import registry
    from finetune_operator.api import FineTuningJobSpec
    from finetune_operator.backends import BatchJobBackend
    from finetune_operator.observe import workload_state

    job = get_json(kubectl, "-n", namespace, "get", "ftj", name)
    uid = job["metadata"]["uid"]

    def trained() -> Any:
        selector = f"{JOB_UID}={uid},{COMPONENT}=training"
        workloads, pods = items(kubectl, namespace, "jobs.batch", selector), items(kubectl, namespace, "pods", selector)
        state = workload_state(workloads[0], pods) if workloads else None
        return state if state is not None and state.phase.value == "Succeeded" else None

    training = poll(trained, "the training Job to succeed with the operator down", 60)
    spec = FineTuningJobSpec.model_validate(job["spec"])
    mv = registry.model_version(
        job_name=name,
        namespace=namespace,
        job_uid=uid,
        spec=spec,
        version="0.0.1",
        artifact=BatchJobBackend().artifact(name, training.result),
        dataset=(job["status"].get("dataset") or {}),
        training_result=training.result,
        created_at="2026-01-01T00:00:00Z",
    )
    kubectl("-n", namespace, "create", "-f", "-", stdin=json.dumps(mv))


# ------------------------------------------------------------------------------------------ API server restart


def test_operator_reconnects_after_an_apiserver_restart(
    kubectl: Kubectl, kube: client.ApiClient, namespace: str, cluster: Any, operator_process: OperatorProcess
) -> None:
    names = ("during-a", "during-b")
    with PhaseRecorder(kube, namespace) as recorder:
        apply(kubectl, namespace, sessions_config_map(), *(gpu_job(n, model=n, run_for="8s") for n in names))
        for n in names:
            wait_status(kubectl, namespace, n, reason_is("Running", "Training"), "training", 90, operator_process)
        pid = operator_process.process.pid  # type: ignore[union-attr]
        localcluster.restart_apiserver(cluster.state_dir)

        # A job created after the restart proves the operator's watches came back, not just its writes.
        def apply_after() -> bool:
            apply(kubectl, namespace, gpu_job("after", model="after"))
            return True

        poll(apply_after, "a job applied after the restart", 60)
        for n in (*names, "after"):
            wait_status(kubectl, namespace, n, phase_is("Completed"), "Completed", 180, operator_process)
        poll(lambda: all(recorder.of(n)[-1:] == ["Completed"] for n in names), "the recorder to catch up", 30)
        phases = {n: recorder.of(n) for n in names}
    assert operator_process.alive() and operator_process.process is not None and operator_process.process.pid == pid, (
        "the operator restarted"
    )
    for n in names:
        assert_finished_once(kubectl, namespace, n, phases[n])


# ------------------------------------------------------------------------------------------ two replicas


def logged_about(process: OperatorProcess, namespace: str, name: str) -> list[str]:
    """The operator's log lines about one job: children created and phase transitions."""
    text = process.log.read_text(errors="replace") if process.log.exists() else ""
    return [line for line in text.splitlines() if f"{namespace}/{name}:" in line]


@pytest.fixture
def peering_name(kubectl: Kubectl, crds: Any, namespace: str) -> str:
    """Kopf's peering CRDs from the manifests, and a peering object of this test's own name.

    The replicas serve only the test's namespace (a cluster-wide pair would also act on the jobs of concurrent
    tests), so Kopf peers them through a namespaced KopfPeering rather than the ClusterKopfPeering of a
    cluster-wide install; the election is the same.
    """
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(PEERING_CRDS))
    for document in yaml.safe_load_all(PEERING_CRDS.read_text()):
        kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{document['metadata']['name']}")
    name = f"fto-test-{uuid.uuid4().hex[:10]}"
    peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": name}}
    apply(kubectl, namespace, peering)
    return name


def test_two_replicas_one_acts_and_the_other_takes_over(
    kubectl: Kubectl, namespace: str, cluster: Any, peering_name: str, request: pytest.FixtureRequest
) -> None:
    lifetime = 10
    replicas = {
        identity: operator(
            cluster,
            namespace,
            f"{request.node.name[:40]}-{identity[-1]}",
            FTO_PEERING=peering_name,
            FTO_PEERING_LIFETIME_SECONDS=str(lifetime),
            POD_ID=identity,  # Kopf's peer identity
        ).start()
        for identity in (f"{peering_name}-a", f"{peering_name}-b")
    }
    try:

        def elected() -> tuple[str, str] | None:
            peers = get_json(kubectl, "-n", namespace, "get", "kopfpeering", peering_name).get("status") or {}
            if set(peers) != set(replicas):
                return None
            active, standby = sorted(replicas, key=lambda identity: peers[identity]["priority"], reverse=True)
            paused = "Pausing operations in favour of" in replicas[standby].log.read_text(errors="replace")
            return (active, standby) if paused else None

        active_id, standby_id = poll(elected, "both replicas in the peering object, the lower one paused", 60)
        active, standby = replicas[active_id], replicas[standby_id]
        peers = get_json(kubectl, "-n", namespace, "get", "kopfpeering", peering_name)["status"]
        assert {peers[identity]["lifetime"] for identity in replicas} == {lifetime}, (
            peers
        )  # FTO_PEERING_LIFETIME_SECONDS
        assert "Pausing operations" not in active.log.read_text(errors="replace")

        apply(kubectl, namespace, sessions_config_map(), gpu_job("ha", run_for="6s"))
        wait_status(kubectl, namespace, "ha", reason_is("Running", "Training"), "training", 60, active)
        assert any("created Job/ha-train" in line for line in logged_about(active, namespace, "ha"))
        assert logged_about(standby, namespace, "ha") == [], "the standby replica acted"

        active.kill()
        status = wait_status(kubectl, namespace, "ha", phase_is("Completed"), "Completed", lifetime + 90, standby)
        assert any("-> Completed" in line for line in logged_about(standby, namespace, "ha"))
        assert "Resuming operations" in standby.log.read_text(errors="replace")
        assert_one_of_each_child(kubectl, namespace, "ha", status)
    finally:
        for process in replicas.values():
            process.stop()
            print(f"--- {process.log} ---\n{process.tail(40)}")
