#!/usr/bin/env python3
"""The demo (`make demo`): a real FineTuningJob from apply to Completed on this machine.

Starts (or reuses) the local control plane with its node agent, installs the CRDs, runs the operator as a
local process, creates the sessions ConfigMap, applies manifests/samples/quickstart.yaml and streams
`kubectl get ftj -w` until the job finishes; then prints its status and the registered ModelVersion.
Curation and training really run (tiny-gpt on CPU), as processes started by the node agent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import localcluster
from localcluster import kubectl

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "finetune-demo"
JOB = "quickstart"
TERMINAL = {"Completed", "Failed", "Cancelled"}


def start_operator(info: localcluster.ClusterInfo) -> subprocess.Popen[bytes]:
    log = info.state_dir / "logs" / "operator-demo.log"
    print(f"operator: logging to {log}")
    return localcluster.start_operator(info.kubeconfig, log, localcluster.processes.free_port())


def phase(info: localcluster.ClusterInfo) -> str:
    return kubectl(info, "-n", NAMESPACE, "get", "ftj", JOB, "-o", "jsonpath={.status.phase}")


def main() -> int:
    started = time.monotonic()
    info = localcluster.up(localcluster.state_dir_from_env(), with_node_agent=True)
    print(f"cluster ready at {info.server} ({time.monotonic() - started:.0f} s)")
    for crd in sorted((REPO / "crds").glob("finetune.dev_*.yaml")):
        kubectl(info, "apply", "--server-side", "--force-conflicts", "-f", str(crd))
    kubectl(info, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    manifest = kubectl(info, "create", "namespace", NAMESPACE, "--dry-run=client", "-o", "yaml")
    kubectl(info, "apply", "-f", "-", stdin=manifest)
    kubectl(info, "-n", NAMESPACE, "delete", "ftj", JOB, "--ignore-not-found", "--wait=true")
    sessions = REPO / "manifests" / "samples" / "data" / "sessions.jsonl"
    config_map = kubectl(
        info, "-n", NAMESPACE, "create", "configmap", "quickstart-sessions",
        f"--from-file=sessions.jsonl={sessions}", "--dry-run=client", "-o", "yaml",
    )  # fmt: skip
    kubectl(info, "apply", "--server-side", "-f", "-", stdin=config_map)

    operator = start_operator(info)
    watcher: subprocess.Popen[bytes] | None = None
    try:
        kubectl(info, "-n", NAMESPACE, "apply", "-f", str(REPO / "manifests" / "samples" / "quickstart.yaml"))
        watcher = subprocess.Popen(
            [localcluster.kubectl_binary(), f"--kubeconfig={info.kubeconfig}", "-n", NAMESPACE, "get", "ftj", "-w"]
        )
        deadline = time.monotonic() + 1800
        current = ""
        while current not in TERMINAL:
            if operator.poll() is not None:
                print(f"the operator exited with {operator.returncode}; see its log", file=sys.stderr)
                return 1
            if time.monotonic() > deadline:
                print("the job did not finish within 30 minutes", file=sys.stderr)
                return 1
            time.sleep(2)
            current = phase(info)
        time.sleep(1)
    finally:
        if watcher is not None:
            watcher.terminate()
        operator.terminate()
        operator.wait(timeout=30)
    print()
    print(kubectl(info, "-n", NAMESPACE, "get", "ftj", "-o", "wide"))
    status = json.loads(kubectl(info, "-n", NAMESPACE, "get", "ftj", JOB, "-o", "json"))["status"]
    print(
        json.dumps({k: status.get(k) for k in ("phase", "reason", "message", "dataset", "metrics", "model")}, indent=2)
    )
    print(kubectl(info, "-n", NAMESPACE, "get", "modelversions", "-o", "wide"))
    print(f"done in {time.monotonic() - started:.0f} s; the cluster keeps running (stop it: make cluster-down)")
    return 0 if current == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main())
