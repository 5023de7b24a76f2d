"""The agent's Node object and its heartbeat (a Lease renewed every 10 s, conditions refreshed)."""

from __future__ import annotations

import datetime
import logging
import os
import threading
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .podstatus import NODE_IP, now

log = logging.getLogger(__name__)

LABEL = "finetune.dev/local-runner"
# Pods land here only when they ask to (nodeSelector + toleration): everything else goes to
# the KWOK nodes, whose pods are simulated.
TAINT = {"key": LABEL, "value": "true", "effect": "NoSchedule"}
LEASE_SECONDS = 40
_RENEW_SECONDS = 10.0
MAX_PODS = 20


def _capacity() -> dict[str, str]:
    memory_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_kib}Ki", "pods": str(MAX_PODS)}


def _conditions() -> list[dict[str, Any]]:
    stamp = now()
    healthy = {
        "MemoryPressure": ("False", "KubeletHasSufficientMemory"),
        "DiskPressure": ("False", "KubeletHasNoDiskPressure"),
        "PIDPressure": ("False", "KubeletHasSufficientPID"),
        "Ready": ("True", "KubeletReady"),
    }
    return [
        {
            "type": t,
            "status": s,
            "reason": r,
            "message": "node agent",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        for t, (s, r) in healthy.items()
    ]


def _status(log_port: int) -> dict[str, Any]:
    capacity = _capacity()
    return {
        # Where the API server reaches the agent's log endpoint (tests/nodeagent/logserver.py).
        "daemonEndpoints": {"kubeletEndpoint": {"Port": log_port}},
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": _conditions(),
        "addresses": [
            {"type": "InternalIP", "address": NODE_IP},
            {"type": "Hostname", "address": os.uname().nodename},
        ],
        "nodeInfo": {
            "architecture": "amd64",
            "operatingSystem": "linux",
            "kernelVersion": os.uname().release,
            "kubeletVersion": "nodeagent",
            "kubeProxyVersion": "",
            "containerRuntimeVersion": "nodeagent://processes",
            "osImage": "host",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }


def register(core: client.CoreV1Api, name: str, log_port: int) -> None:
    """Creates the Node (or takes over an existing one of that name) and marks it Ready."""
    labels = {LABEL: "true", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {LABEL: "true", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
        },
        "spec": {"taints": [TAINT]},
        "status": _status(log_port),
    }
    try:
        core.create_node(client.V1Node.model_validate(node))
    except ApiException as e:
        if e.status != 409:
            raise
        core.patch_node(
            name,
            {"metadata": {"labels": labels}, "spec": node["spec"]},
            _content_type="application/strategic-merge-patch+json",
        )
    core.patch_node_status(name, {"status": _status(log_port)}, _content_type="application/strategic-merge-patch+json")


def _renew_lease(coordination: client.CoordinationV1Api, core: client.CoreV1Api, name: str) -> None:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    spec = {"holderIdentity": name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": stamp}
    try:
        coordination.patch_namespaced_lease(
            name, "kube-node-lease", {"spec": spec}, _content_type="application/merge-patch+json"
        )
    except ApiException as e:
        if e.status != 404:
            raise
        read: Any = core.read_node(name)
        node_uid = read.metadata.uid
        owner = {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease", "ownerReferences": [owner]},
            "spec": spec,
        }
        coordination.create_namespaced_lease("kube-node-lease", client.V1Lease.model_validate(lease))


def heartbeat(core: client.CoreV1Api, name: str, stop: threading.Event) -> None:
    """Renews the Lease and the Ready condition until `stop` is set (run it in a thread)."""
    coordination = client.CoordinationV1Api(core.api_client)
    while not stop.is_set():
        try:
            _renew_lease(coordination, core, name)
            core.patch_node_status(
                name,
                {"status": {"conditions": _conditions()}},
                _content_type="application/strategic-merge-patch+json",
            )
        except Exception as e:
            # A restarting API server must not kill the heartbeat; the next beat retries.
            log.warning("heartbeat of node %s failed: %s", name, e)
        stop.wait(_RENEW_SECONDS)
