"""The production install runs: the operator's Deployment from manifests/ as a pod of the local cluster.

The node agent runs the pod as a process (tests/nodeagent): the image is ignored, but its entrypoint (from
operator/Dockerfile), the ServiceAccount token projected into the pod, the environment, the in-cluster
configuration, the restricted securityContext (user 1000, read-only root) and the cluster-wide scope are the
Deployment's own. Only placement (the agent's node) and the two host ports (pods share the host's network here)
are patched. One real job goes through it, from `kubectl apply` to the ModelVersion.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from rbac import NAMESPACE, username
from test_install import MANIFESTS, get, install, uninstall
from test_operator_e2e import quickstart, setup

import localcluster
import strictyaml
from localcluster import audit, processes
from support.fixtures import Kubectl, WaitFor

# The uninstall deletes finetune-system's ServiceAccount, whose tokens the other tests' operators use.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.uninstalls_operator]


def on_the_node_agent(directory: Path) -> Path:
    """overlays/dev, placed on the node agent's node, its two ports moved to free ones of this host."""
    directory.mkdir()
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "finetune-operator", "namespace": NAMESPACE},
        "spec": {
            "template": {
                "spec": {
                    "nodeSelector": {"finetune.dev/local-runner": "true"},
                    "tolerations": [{"key": "finetune.dev/local-runner", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [
                        {
                            "name": "operator",
                            "env": [
                                {"name": "FTO_METRICS_PORT", "value": str(processes.free_port())},
                                {"name": "FTO_HEALTH_PORT", "value": str(processes.free_port())},
                            ],
                        }
                    ],
                }
            }
        },
    }
    (directory / "placement.yaml").write_text(yaml.safe_dump(patch))
    kustomization = {
        "resources": [os.path.relpath(MANIFESTS / "overlays" / "dev", directory)],
        "patches": [{"path": "placement.yaml"}],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return directory


def test_operator_deployment_runs_cluster_wide_in_the_cluster_and_completes_a_job(
    kubectl: Kubectl,
    wait_for: WaitFor,
    crds: Any,
    namespace: str,
    cluster: localcluster.ClusterInfo,
    tmp_path: Path,
) -> None:
    overlay = on_the_node_agent(tmp_path / "in-cluster")
    rendered = list(strictyaml.load_all(kubectl("kustomize", str(overlay))))
    deployment = next(o for o in rendered if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "command" not in container, "the Deployment relies on the image's entrypoint"
    assert {e["name"]: e["value"] for e in container["env"]}["FTO_NAMESPACES"] == "", "not cluster-wide"
    since = audit.offset(cluster.state_dir)
    install(kubectl, overlay)
    try:

        def running_pod() -> dict[str, Any] | None:
            pods = get(kubectl, "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/name=finetune-operator")["items"]
            return pods[0] if pods and pods[0]["status"].get("phase") == "Running" else None

        pod = wait_for(running_pod, "the operator pod running on the node agent", timeout=120)
        name = pod["metadata"]["name"]
        assert pod["spec"]["nodeName"] == localcluster.cluster.NODE_AGENT_NAME

        job = quickstart("in-cluster")
        # The operator's pod holds 100m of the node agent's CPUs (as many as the host has): the job asks for less
        # than all of them, or it would wait for capacity forever.
        job["spec"]["resources"]["cpu"] = "1"
        setup(kubectl, namespace, job)

        def completed() -> dict[str, Any] | None:
            status = get(kubectl, "ftj", "in-cluster", "-n", namespace).get("status") or {}
            assert status.get("phase") != "Failed", status
            return status if status.get("phase") == "Completed" else None

        try:
            status = wait_for(completed, "the job Completed by the in-cluster operator", timeout=600)
        except AssertionError:
            print(kubectl("-n", NAMESPACE, "logs", name, "--tail=60", check=False))
            raise
        assert status["model"]["version"] == "0.0.1"

        # Every write of the job's lifecycle came from the pod's own token (in-cluster configuration): the API
        # server ties a projected token to the pod it was issued for.
        writes = [
            e
            for e in audit.events(cluster.state_dir, since)
            if (e.get("objectRef") or {}).get("namespace") == namespace and e["user"]["username"] == username()
        ]
        pods = {tuple(e["user"].get("extra", {}).get("authentication.kubernetes.io/pod-name", [])) for e in writes}
        assert pods == {(name,)}, pods
        assert any(audit.resource(e) == "modelversions" and e["verb"] == "create" for e in writes)
        # Cluster-wide peering (ClusterKopfPeering), with the pod as its peer.
        peers = get(kubectl, "clusterkopfpeering", "finetune-operator").get("status") or {}
        assert any(name in peer for peer in peers), peers
        # Its JSON log (FTO_LOG_FORMAT=json), read through the node agent's log endpoint.
        lines = [json.loads(line) for line in kubectl("-n", NAMESPACE, "logs", name).splitlines() if line]
        assert any(f"{namespace}/in-cluster" in json.dumps(line) for line in lines), lines[-5:]
    finally:
        uninstall(kubectl, overlay)
