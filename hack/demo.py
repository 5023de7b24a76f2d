#!/usr/bin/env python3
"""The demo (`make demo`): a real FineTuningJob from apply to Completed on this machine.

Starts (or reuses) the local control plane with its node agent, installs the CRDs, runs the operator and the
read-only dashboard (its URL is printed) as local processes, creates the sessions ConfigMap, applies
manifests/samples/quickstart.yaml and streams
`kubectl get ftj -w` until the job finishes; then prints its status and the registered ModelVersion.
Curation and training really run (tiny-gpt on CPU), as processes started by the node agent.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
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


def start_dashboard(info: localcluster.ClusterInfo) -> str:
    """The read-only dashboard (`python -m finetune_dashboard`) as the cluster's admin; it outlives the demo.

    A dashboard left by an earlier demo (its pid in the state dir) is stopped first.
    """
    pid_file = info.state_dir / "dashboard.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError, PermissionError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
    port = int(os.environ.get("FTO_DASHBOARD_PORT") or localcluster.processes.free_port())
    log = (info.state_dir / "logs" / "dashboard-demo.log").open("ab")
    command = [sys.executable, "-m", "finetune_dashboard", "--kubeconfig", str(info.kubeconfig), "--port", str(port)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file.write_text(f"{process.pid}\n")
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), urllib.request.urlopen(url + "healthz", timeout=2):
            break
        time.sleep(0.3)
    return url


def phase(info: localcluster.ClusterInfo) -> str:
    return kubectl(info, "-n", NAMESPACE, "get", "ftj", JOB, "-o", "jsonpath={.status.phase}")


def main() -> int:
    started = time.monotonic()
    info = localcluster.up(localcluster.state_dir_from_env(), with_node_agent=True)
    print(f"cluster ready at {info.server} ({time.monotonic() - started:.0f} s)")
    crds = sorted((REPO / "crds").glob("finetune.dev_*.yaml"))
    for crd in crds:
        kubectl(info, "apply", "--server-side", "--force-conflicts", "-f", str(crd))
    # Named after the files crdgen writes: finetune.dev_<plural>.yaml holds <plural>.finetune.dev.
    names = [f"{crd.stem.removeprefix('finetune.dev_')}.finetune.dev" for crd in crds]
    localcluster.wait_established(info.kubeconfig, names)
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
    dashboard = start_dashboard(info)
    print(f"dashboard: {dashboard} (read-only; follow the job there)")
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
    print(f"dashboard: {dashboard} keeps running (stop it: kill $(cat {info.state_dir / 'dashboard.pid'}))")
    return 0 if current == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main())
