"""The local control plane behaves like a real cluster where the operator depends on it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

import localcluster
from support.fixtures import Kubectl, WaitFor

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

AGENT_PLACEMENT: dict[str, Any] = {
    "nodeSelector": {"finetune.dev/local-runner": "true"},
    "tolerations": [{"key": "finetune.dev/local-runner", "operator": "Exists", "effect": "NoSchedule"}],
}


def _pod(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "busybox", "command": command, **spec.pop("container", {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": spec.pop("annotations", {})},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def _apply(kubectl: Kubectl, namespace: str, *objects: dict[str, Any]) -> None:
    """`kubectl apply` of `objects`, as one List, in `namespace`."""
    manifest = json.dumps({"kind": "List", "apiVersion": "v1", "items": list(objects)})
    kubectl("apply", "-n", namespace, "-f", "-", stdin=manifest)


def _read_pod(kube: client.ApiClient, namespace: str, name: str) -> Any:
    return client.CoreV1Api(kube).read_namespaced_pod(name, namespace)


def _claim_folder(cluster: localcluster.ClusterInfo, kube: client.ApiClient, namespace: str, claim: str) -> Path:
    """The host folder of a PVC provisioned by the controller-manager's host-path provisioner."""
    core = client.CoreV1Api(kube)
    bound: Any = core.read_namespaced_persistent_volume_claim(claim, namespace)
    volume: Any = core.read_persistent_volume(bound.spec.volume_name)
    host_path = Path(volume.spec.host_path.path)
    return cluster.volumes_dir / host_path.relative_to(localcluster.cluster.HOSTPATH_PROVISIONER_DIR)


def _claim(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def _finished(kube: client.ApiClient, namespace: str, name: str) -> Any:
    pod = _read_pod(kube, namespace, name)
    return pod if pod.status.phase in ("Succeeded", "Failed") else None


def test_kubectl_get_ftj_prints_the_printer_columns(
    crds: list[dict[str, Any]], kubectl: Kubectl, namespace: str
) -> None:
    crd = next(c for c in crds if c["spec"]["names"]["kind"] == "FineTuningJob")
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    expected = ["NAME"] + [c["name"].upper() for c in columns if c.get("priority", 0) == 0]
    kubectl("apply", "-n", namespace, "-f", str(REPO / "manifests" / "samples" / "quickstart.yaml"))

    header, row = kubectl("get", "ftj", "-n", namespace).splitlines()

    assert header.split() == expected
    assert row.split()[0] == "quickstart"


def test_owned_child_is_garbage_collected_with_its_owner(
    kube: client.ApiClient, namespace: str, wait_for: WaitFor
) -> None:
    core = client.CoreV1Api(kube)
    owner: Any = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    reference = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
    child = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="child", owner_references=[reference]))
    core.create_namespaced_config_map(namespace, child)

    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def child_gone() -> bool:
        try:
            core.read_namespaced_config_map("child", namespace)
        except ApiException as e:
            return bool(e.status == 404)
        return False

    wait_for(child_gone, "the garbage collector to delete the child")


def test_gpu_pod_schedules_on_a_kwok_gpu_node_and_an_oversized_one_stays_pending(
    kube: client.ApiClient, kubectl: Kubectl, namespace: str, wait_for: WaitFor
) -> None:
    one = _pod("one-gpu", ["train"], container={"resources": {"limits": {"nvidia.com/gpu": "1"}}})
    nine = _pod("nine-gpus", ["train"], container={"resources": {"limits": {"nvidia.com/gpu": "9"}}})
    _apply(kubectl, namespace, one, nine)

    running = wait_for(
        lambda: (p := _read_pod(kube, namespace, "one-gpu")).status.phase == "Running" and p,
        "the 1-GPU pod to run",
    )
    assert running.spec.node_name in ("gpu-node-0", "gpu-node-1")

    def unschedulable() -> bool:
        conditions = _read_pod(kube, namespace, "nine-gpus").status.conditions or []
        return any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in conditions)

    wait_for(unschedulable, "the 9-GPU pod to be reported Unschedulable")
    assert _read_pod(kube, namespace, "nine-gpus").spec.node_name is None


def test_kwok_pod_ends_with_the_exit_code_and_message_of_its_annotations(
    kube: client.ApiClient, kubectl: Kubectl, namespace: str, wait_for: WaitFor
) -> None:
    annotations = {
        "kwok.finetune.dev/run-for": "1s",
        "kwok.finetune.dev/exit-code": "12",
        "kwok.finetune.dev/termination-message": '{"outcome": "Failed"}',
    }
    pod = _pod("fails", ["train"], annotations=annotations, nodeSelector={"finetune.dev/node-pool": "cpu"})
    _apply(kubectl, namespace, pod)

    finished = wait_for(lambda: _finished(kube, namespace, "fails"), "the KWOK pod to finish")

    terminated = finished.status.container_statuses[0].state.terminated
    assert (finished.status.phase, terminated.exit_code, terminated.reason) == ("Failed", 12, "Error")
    assert terminated.message == '{"outcome": "Failed"}'


def test_node_agent_runs_a_pod_that_writes_to_its_pvc(
    cluster: localcluster.ClusterInfo,
    kube: client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
    wait_for: WaitFor,
) -> None:
    claim = _claim("work")
    script = textwrap.dedent(
        """
        import os, pathlib
        pathlib.Path("/data/out.txt").write_text(os.environ["POD_NAME"])
        pathlib.Path("/dev/termination-log").write_text("wrote /data/out.txt")
        """
    )
    pod = _pod(
        "writer",
        ["python", "-c", script],
        container={
            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "volumeMounts": [{"name": "work", "mountPath": "/data"}],
        },
        volumes=[{"name": "work", "persistentVolumeClaim": {"claimName": "work"}}],
        **AGENT_PLACEMENT,
    )
    _apply(kubectl, namespace, claim, pod)

    finished = wait_for(lambda: _finished(kube, namespace, "writer"), "the agent's pod to finish", timeout=120)

    terminated = finished.status.container_statuses[0].state.terminated
    assert (finished.status.phase, terminated.exit_code, terminated.reason) == ("Succeeded", 0, "Completed")
    assert terminated.message == "wrote /data/out.txt"
    assert finished.spec.node_name == "local-runner"
    assert (_claim_folder(cluster, kube, namespace, "work") / "out.txt").read_text() == "writer"


def test_projected_service_account_token_works_from_inside_an_agent_pod(
    kube: client.ApiClient, kubectl: Kubectl, namespace: str, wait_for: WaitFor
) -> None:
    # Any authenticated identity may ask who it is; the answer proves the token is real.
    script = textwrap.dedent(
        """
        from kubernetes import client, config
        config.load_incluster_config()
        review = client.AuthenticationV1Api().create_self_subject_review(client.V1SelfSubjectReview())
        open("/dev/termination-log", "w").write(review.status.user_info.username)
        """
    )
    pod = _pod("whoami", ["python3", "-c", script], **AGENT_PLACEMENT)
    _apply(kubectl, namespace, pod)

    finished = wait_for(lambda: _finished(kube, namespace, "whoami"), "the agent's pod to finish", timeout=120)

    terminated = finished.status.container_statuses[0].state.terminated
    assert finished.status.phase == "Succeeded", terminated
    assert terminated.message == f"system:serviceaccount:{namespace}:default"


def test_node_agent_runs_init_containers_then_the_container_with_its_config_and_secrets(
    kube: client.ApiClient, kubectl: Kubectl, namespace: str, wait_for: WaitFor
) -> None:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "job-config"},
        "data": {"job.json": '{"name": "demo"}'},
    }
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}}
    init = {
        "name": "prepare",
        "image": "busybox",
        "command": ["python3", "-c", "open('/scratch/ready', 'w').write('init ran')"],
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
    }
    script = textwrap.dedent(
        """
        import json, os
        job = json.load(open("/etc/finetune/job.json"))
        try:
            open("/etc/finetune/job.json", "w")
            writable = True
        except OSError:
            writable = False
        report = {"init": open("/scratch/ready").read(), "job": job["name"], "token": os.environ["TOKEN"],
                  "namespace": os.environ["NAMESPACE"], "writable": writable}
        open("/dev/termination-log", "w").write(json.dumps(report, sort_keys=True))
        """
    )
    pod = _pod(
        "configured",
        ["python", "-c", script],
        container={
            "env": [
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            ],
            "volumeMounts": [
                {"name": "scratch", "mountPath": "/scratch"},
                {"name": "config", "mountPath": "/etc/finetune/job.json", "subPath": "job.json", "readOnly": True},
            ],
        },
        initContainers=[init],
        volumes=[{"name": "scratch", "emptyDir": {}}, {"name": "config", "configMap": {"name": "job-config"}}],
        **AGENT_PLACEMENT,
    )
    _apply(kubectl, namespace, config_map, secret, pod)

    finished = wait_for(lambda: _finished(kube, namespace, "configured"), "the agent's pod to finish", timeout=120)

    terminated = finished.status.container_statuses[0].state.terminated
    assert finished.status.phase == "Succeeded", terminated
    expected = {"init": "init ran", "job": "demo", "token": "s3cret", "namespace": namespace, "writable": False}
    assert json.loads(terminated.message) == expected
    assert finished.status.init_container_statuses[0].state.terminated.reason == "Completed"
    conditions = {c.type: c.status for c in finished.status.conditions}
    assert (conditions["Initialized"], conditions["Ready"]) == ("True", "False")


def test_deleting_an_agent_pod_sends_sigterm_then_removes_it(
    cluster: localcluster.ClusterInfo, kube: client.ApiClient, kubectl: Kubectl, namespace: str, wait_for: WaitFor
) -> None:
    script = textwrap.dedent(
        """
        import pathlib, signal, sys, time
        def stop(*_):
            pathlib.Path("/data/stopped").write_text("SIGTERM")
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        pathlib.Path("/data/started").write_text("yes")
        time.sleep(600)
        """
    )
    pod = _pod(
        "sleeper",
        ["python", "-c", script],
        container={"volumeMounts": [{"name": "work", "mountPath": "/data"}]},
        volumes=[{"name": "work", "persistentVolumeClaim": {"claimName": "work"}}],
        terminationGracePeriodSeconds=30,
        **AGENT_PLACEMENT,
    )
    _apply(kubectl, namespace, _claim("work"), pod)
    wait_for(lambda: _read_pod(kube, namespace, "sleeper").status.phase == "Running", "the pod to run", timeout=120)
    folder = _claim_folder(cluster, kube, namespace, "work")
    wait_for(lambda: (folder / "started").exists(), "the process to start")

    kubectl("delete", "pod", "sleeper", "-n", namespace, "--wait=true", "--timeout=60s")

    assert (folder / "stopped").read_text() == "SIGTERM"


def test_restarting_the_apiserver_keeps_the_data_and_the_node_agent_keeps_working(
    cluster: localcluster.ClusterInfo, kube: client.ApiClient, kubectl: Kubectl, namespace: str, wait_for: WaitFor
) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="kept")))

    localcluster.restart_apiserver(cluster.state_dir)

    kept: Any = core.read_namespaced_config_map("kept", namespace)
    assert kept.metadata.name == "kept"
    pod = _pod("after-restart", ["python", "-c", "print('still here')"], **AGENT_PLACEMENT)
    _apply(kubectl, namespace, pod)
    finished = wait_for(lambda: _finished(kube, namespace, "after-restart"), "the agent's pod to finish", timeout=120)
    assert finished.status.phase == "Succeeded"


def test_node_agent_restarts_a_failed_container_under_restart_policy_on_failure(
    kube: client.ApiClient, kubectl: Kubectl, namespace: str, wait_for: WaitFor
) -> None:
    # Fails on the first run, succeeds on the second: the emptyDir outlives a container restart.
    script = textwrap.dedent(
        """
        import pathlib, sys
        marker = pathlib.Path("/scratch/first-run-done")
        if not marker.exists():
            marker.write_text("x")
            sys.exit(3)
        """
    )
    pod = _pod(
        "flaky",
        ["python", "-c", script],
        container={"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
        volumes=[{"name": "scratch", "emptyDir": {}}],
        restartPolicy="OnFailure",
        **AGENT_PLACEMENT,
    )
    _apply(kubectl, namespace, pod)

    finished = wait_for(lambda: _finished(kube, namespace, "flaky"), "the agent's pod to finish", timeout=120)

    status = finished.status.container_statuses[0]
    assert (finished.status.phase, status.restart_count) == ("Succeeded", 1)
    assert status.last_state.terminated.exit_code == 3


def _job(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    template = _pod(name, command, **AGENT_PLACEMENT)
    template["spec"]["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": template["spec"]}, **spec},
    }


def _job_condition(kube: client.ApiClient, namespace: str, name: str) -> str | None:
    job: Any = client.BatchV1Api(kube).read_namespaced_job(name, namespace)
    done = [c.type for c in job.status.conditions or [] if c.type in ("Complete", "Failed") and c.status == "True"]
    return done[0] if done else None


def test_jobs_on_the_node_agent_complete_or_fail_by_their_pods_exit_code(
    kube: client.ApiClient, kubectl: Kubectl, namespace: str, wait_for: WaitFor
) -> None:
    # The operator's curation and training steps are Jobs with a podFailurePolicy on exit codes.
    fail_fast = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [10]}}]}
    ok = _job("ok", ["python", "-c", "print('fine')"])
    bad = _job("bad-data", ["python", "-c", "raise SystemExit(10)"], podFailurePolicy=fail_fast)
    _apply(kubectl, namespace, ok, bad)

    assert wait_for(lambda: _job_condition(kube, namespace, "ok"), "job ok to finish", timeout=120) == "Complete"
    assert (
        wait_for(lambda: _job_condition(kube, namespace, "bad-data"), "job bad-data to finish", timeout=120) == "Failed"
    )
    job: Any = client.BatchV1Api(kube).read_namespaced_job("bad-data", namespace)
    assert "PodFailurePolicy" in {c.reason for c in job.status.conditions}


def test_a_stopped_kueue_leaves_its_objects_readable(
    cluster: localcluster.ClusterInfo, kubectl: Kubectl, namespace: str
) -> None:
    """Stopping Kueue keeps its CRDs (as a controller scaled to zero does) but not their conversion webhook: a read
    of either served version must not call a webhook nobody serves any more (such a failing list also blocks
    every namespace deletion: the namespace controller lists each namespaced resource)."""
    localcluster.kueue.start(cluster)
    localcluster.kueue.stop(cluster)
    queue = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "LocalQueue",
        "metadata": {"name": "left-behind", "namespace": namespace},
        "spec": {"clusterQueue": "none"},
    }
    _apply(kubectl, namespace, queue)
    for version in ("v1beta1", "v1beta2"):
        listed = json.loads(kubectl("-n", namespace, "get", f"localqueues.{version}.kueue.x-k8s.io", "-o", "json"))
        assert [item["metadata"]["name"] for item in listed["items"]] == ["left-behind"], version
