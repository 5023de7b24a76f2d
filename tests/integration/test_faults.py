"""Faults (issue #9) against the real control plane, with KWOK GPU nodes running the pods.

- the operator SIGKILLed at each stage of a job and restarted: the job finishes, nothing is created twice, and
  the phase never goes backwards (other than a requeue);
- kube-apiserver restarted under running jobs: the operator reconnects by itself;
- two replicas sharing a Kopf peering object: one acts, and the other takes over when it is killed.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from crashpoints import CRASH_POINTS, armed, creations
from kubernetes import client
from kwok_jobs import (
    COMPONENT,
    JOB_UID,
    PhaseRecorder,
    apply,
    backward_steps,
    children,
    get_json,
    gpu_job,
    items,
    job_status,
    phase_is,
    poll,
    reason_is,
    sessions_config_map,
    wait_status,
)
from operator_harness import OperatorProcess, operator
from rbac import operator_kubeconfig, username

import localcluster
import strictyaml
from localcluster import audit
from support.fixtures import Kubectl
from support.install import WAIT_FOR_ESTABLISHED

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

PEERING_CRDS = REPO / "manifests" / "crds" / "kopf-peering-crds.yaml"
GPU_NODES = "finetune.dev/node-pool=gpu"


def uid_of(kubectl: Kubectl, namespace: str, name: str) -> str:
    return str(get_json(kubectl, "-n", namespace, "get", "ftj", name)["metadata"]["uid"])


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


def assert_finished_once(
    kubectl: Kubectl, namespace: str, name: str, phases: list[str], requeue_caused: bool = False
) -> dict[str, Any]:
    """Completed, exactly one of each child, one training pod, and a phase sequence that never goes back."""
    status: dict[str, Any] = get_json(kubectl, "-n", namespace, "get", "ftj", name)["status"]
    assert status["phase"] == "Completed", status
    uid = assert_one_of_each_child(kubectl, namespace, name, status)
    pods = items(kubectl, namespace, "pods", f"{JOB_UID}={uid},{COMPONENT}=training")
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    assert phases and phases[-1] == "Completed", phases
    assert backward_steps(phases, requeue_caused) == [], phases
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


# Where the operator is idle when killed (the test waits for the status first) ...
IDLE_MOMENTS = ["Pending", "Queued", "Running", "Evaluating"]
# ... and where it is in the middle of a reconciliation: a step done, its status write held (crashpoints.py).
MOMENTS = [*IDLE_MOMENTS, *CRASH_POINTS]
# A job's children, each created once by the operator, and how the audit log names them.
OPERATOR_CREATES = {
    ("persistentvolumeclaims", "job-workspace"),
    ("configmaps", "job-config"),
    ("configmaps", "job-metrics"),  # the trainer's metric history
    ("configmaps", "finetune-report-pacing"),  # one per namespace with running jobs
    ("serviceaccounts", "job-trainer"),
    ("roles", "job-trainer"),
    ("rolebindings", "job-trainer"),
    ("jobs", "job-curate"),
    ("jobs", "job-train"),
    ("modelversions", "support-agent-v0.0.1"),
    ("registeredmodels", "support-agent"),  # with its first version
}


def kill_at_idle_moment(moment: str, name: str, kubectl: Kubectl, namespace: str, process: OperatorProcess) -> None:
    if moment == "Pending":
        # No source yet: the job waits in Pending; the source appears while the operator is down.
        apply(kubectl, namespace, gpu_job(name))
        wait_status(kubectl, namespace, name, reason_is("Pending", "SourceNotFound"), "SourceNotFound", 60, process)
        process.kill()
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
        wait_status(kubectl, namespace, name, reason_is("Queued", "WaitingForCapacity"), "Queued", 90, process)
        process.kill()
        kubectl("-n", namespace, "delete", "pods", "-l", "test=gpu-blocker", "--grace-period=0", "--force")
    else:
        apply(kubectl, namespace, sessions_config_map(), gpu_job(name, run_for="8s"))
        wait_status(kubectl, namespace, name, reason_is("Running", "Training"), "training", 60, process)
        if moment == "Evaluating":
            # What the trainer reports when it starts evaluating (status subresource, merge patch).
            patch = {"status": {"progress": {"stage": "Evaluating"}}}
            kubectl(
                *("-n", namespace, "patch", "ftj", name, "--subresource=status", "--type=merge"),
                *("-p", json.dumps(patch)),
            )
            wait_status(kubectl, namespace, name, phase_is("Evaluating"), "Evaluating", 30, process)
        process.kill()


def kill_at_crash_point(
    point: str, name: str, kubectl: Kubectl, namespace: str, process: OperatorProcess, cluster: Any
) -> dict[str, Any]:
    """Held at `point` by the admission policy, killed there; returns the job's status at the kill."""
    process.stop()
    apply(kubectl, namespace, sessions_config_map(), gpu_job(name, run_for="3s"))
    with armed(kubectl, point, namespace, name, process.kubeconfig, username(), cluster.state_dir) as held:
        process.start()
        refused = poll(held.refusals, f"the operator's status write held at {point}", 120, process)
        process.kill()
        status = job_status(kubectl, namespace, name)
    assert refused[0]["requestObject"]["status"]["reason"] == CRASH_POINTS[point][0]["reason"], refused[0]
    found = children(kubectl, namespace, uid_of(kubectl, namespace, name))
    # The step was done, and the status does not say so: the state a crash there leaves. (The ModelVersion is
    # created in the reconciliation that decides to register, so the last status written says training.)
    reasons, counts = {
        "prepared": ({None}, {"pvc": 1, "curation": 0}),
        "curation-created": ({"Creating"}, {"curation": 1, "training": 0}),
        "training-created": ({"CurationStarting", "Curating"}, {"training": 1, "modelversion": 0}),
        "registered": ({"TrainingStarting", "Training"}, {"modelversion": 1}),
    }[point]
    assert status.get("reason") in reasons and {k: len(found[k]) for k in counts} == counts, (status, found)
    assert not status.get("model"), status
    return status


@pytest.mark.parametrize("moment", MOMENTS)
def test_operator_sigkilled_resumes_without_duplicates(
    moment: str,
    kubectl: Kubectl,
    kube: client.ApiClient,
    namespace: str,
    cluster: Any,
    operator_process: OperatorProcess,
) -> None:
    name = "job"
    since = audit.offset(cluster.state_dir)
    with PhaseRecorder(kube, namespace) as recorder:
        if moment in CRASH_POINTS:
            killed_with = kill_at_crash_point(moment, name, kubectl, namespace, operator_process, cluster)
        else:
            kill_at_idle_moment(moment, name, kubectl, namespace, operator_process)
            killed_with = job_status(kubectl, namespace, name)
        operator_process.start()
        wait_status(
            kubectl, namespace, name, phase_is("Completed"), "Completed after the restart", 120, operator_process
        )
        poll(lambda: recorder.of(name)[-1:] == ["Completed"], "the recorder to see Completed", 30)
        phases = recorder.of(name)

    # Only the Queued moment holds every GPU: curation runs, then training waits for capacity (Running -> Queued).
    status = assert_finished_once(kubectl, namespace, name, phases, requeue_caused=moment == "Queued")
    assert status["model"]["version"] == "0.0.1"
    if moment in IDLE_MOMENTS:
        assert moment in phases, (moment, phases, killed_with)
    if moment == "Evaluating":
        assert phases[-2:] == ["Evaluating", "Completed"], phases
    # Over the whole run, not only what survives: every child created exactly once, by the operator.
    created = creations(cluster.state_dir, since, namespace)
    by_operator = {(resource, child): n for (user, resource, child), n in created.items() if user == username()}
    assert by_operator == dict.fromkeys(OPERATOR_CREATES, 1), by_operator
    # The Job controller's pods (generated names: the audit log cannot name them), the GPU blockers aside.
    pods = sum(n for (_, resource, pod), n in created.items() if resource == "pods" and pod == "?")
    assert pods == 2, created  # one curation pod and one training pod, ever


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


def writes_by(cluster: Any, since: int, namespace: str, user: str) -> list[dict[str, Any]]:
    """The writes `user` made in `namespace` since audit offset `since`, other than its peering keep-alives."""
    return [
        event
        for event in audit.events(cluster.state_dir, since)
        if event["user"]["username"] == user
        and (event.get("objectRef") or {}).get("namespace") == namespace
        and audit.resource(event) != "kopfpeerings"
    ]


@pytest.fixture
def peering_name(kubectl: Kubectl, crds: Any, namespace: str) -> str:
    """Kopf's peering CRDs from the manifests, and a peering object of this test's own name.

    The replicas serve only the test's namespace (a cluster-wide pair would also act on the jobs of concurrent
    tests), so Kopf peers them through a namespaced KopfPeering rather than the ClusterKopfPeering of a
    cluster-wide install; the election is the same.
    """
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(PEERING_CRDS))
    for document in strictyaml.load_all(PEERING_CRDS.read_text()):
        kubectl("wait", WAIT_FOR_ESTABLISHED, "--timeout=60s", f"crd/{document['metadata']['name']}")
    name = f"fto-test-{uuid.uuid4().hex[:10]}"
    peering = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": name}}
    apply(kubectl, namespace, peering)
    return name


def test_two_replicas_one_acts_and_the_other_takes_over(
    kubectl: Kubectl, namespace: str, cluster: Any, peering_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    lifetime = 10
    since = audit.offset(cluster.state_dir)
    # Each replica authenticates as a ServiceAccount of its own (the operator's ClusterRole), so the audit log
    # says which one wrote what.
    accounts = {identity: f"fto-replica-{identity[-1]}-{uuid.uuid4().hex[:6]}" for identity in
                (f"{peering_name}-a", f"{peering_name}-b")}  # fmt: skip
    replicas = {
        identity: operator(
            cluster,
            namespace,
            f"{request.node.name[:40]}-{identity[-1]}",
            operator_kubeconfig(cluster, kubectl, tmp_path / f"{account}.kubeconfig", account=account),
            FTO_PEERING=peering_name,
            FTO_PEERING_LIFETIME_SECONDS=str(lifetime),
            POD_ID=identity,  # Kopf's peer identity
        ).start()
        for identity, account in accounts.items()
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
        active_user, standby_user = username(accounts[active_id]), username(accounts[standby_id])
        peers = get_json(kubectl, "-n", namespace, "get", "kopfpeering", peering_name)["status"]
        assert {peers[identity]["lifetime"] for identity in replicas} == {lifetime}, peers

        apply(kubectl, namespace, sessions_config_map(), gpu_job("ha", run_for="6s"))
        wait_status(kubectl, namespace, "ha", reason_is("Running", "Training"), "training", 60, active)
        killed_at = audit.offset(cluster.state_dir)
        active.kill()
        before = {(e["verb"], audit.resource(e)) for e in writes_by(cluster, since, namespace, active_user)}
        assert {("create", "jobs"), ("patch", "finetuningjobs/status")} <= before, before
        assert writes_by(cluster, since, namespace, standby_user) == [], "the standby replica wrote while paused"

        status = wait_status(kubectl, namespace, "ha", phase_is("Completed"), "Completed", lifetime + 90, standby)
        assert "Resuming operations" in standby.log.read_text(errors="replace")
        assert_one_of_each_child(kubectl, namespace, "ha", status)
        after = writes_by(cluster, killed_at, namespace, standby_user)
        assert ("create", "modelversions") in {(e["verb"], audit.resource(e)) for e in after}, after
        completed = [e for e in after if (e.get("requestObject") or {}).get("status", {}).get("phase") == "Completed"]
        assert len(completed) == 1, after
        assert writes_by(cluster, killed_at, namespace, active_user) == []
        created = creations(cluster.state_dir, since, namespace)
        operators = {active_user, standby_user}
        assert [key for key, n in created.items() if key[0] in operators and n != 1] == [], created
    finally:
        for process in replicas.values():
            process.stop()
            print(f"--- {process.log} ---\n{process.tail(40)}")
        for account in accounts.values():
            kubectl("delete", "clusterrolebinding", account, "--ignore-not-found")
            kubectl("-n", "finetune-system", "delete", "serviceaccount", account, "--ignore-not-found")
