"""The node agent's pods run as a restricted cluster runs them, and `kubectl logs` reads them as on a real node.

- securityContext: runAsUser/runAsGroup/fsGroup give the process its user and groups and the volumes their group;
  readOnlyRootFilesystem leaves writable only the volumes; runAsNonRoot without a user is refused.
- The container-log endpoint (tests/nodeagent/logserver.py), reached by the API server as a kubelet's:
  `kubectl logs`, `-f` (streams until the container ends), `--previous`, `--tail`, `--timestamps`.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_controlplane import AGENT_PLACEMENT, _claim, _claim_folder, _finished, _pod, _read_pod

import localcluster

pytestmark = pytest.mark.integration

Kubectl = Callable[..., str]
WaitFor = Callable[..., Any]

RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000}
RESTRICTED_CONTAINER = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
# Writes outside the volumes: the root, the project's checkout (a Python path the pod sees), the interpreter.
PROBE = textwrap.dedent(
    """
    import errno, json, os, pathlib, socket, sys
    def attempt(path):
        try:
            pathlib.Path(path).write_text("x")
            return "written"
        except OSError as e:
            return errno.errorcode[e.errno]
    report = {
        "uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()),
        "volume": attempt("/data/out.txt"), "emptyDir": attempt("/scratch/out.txt"),
        "root": attempt("/fto-probe"), "checkout": attempt(sys.argv[1] + "/fto-probe"),
        "python": attempt(sys.base_prefix + "/fto-probe"), "hostname": socket.gethostname(),
    }
    open("/dev/termination-log", "w").write(json.dumps(report))
    """
)


def test_agent_pod_runs_as_its_user_and_groups_with_a_read_only_root(
    cluster: localcluster.ClusterInfo, kube: Any, kubectl: Kubectl, namespace: str, wait_for: WaitFor
) -> None:
    checkout = str(Path(__file__).resolve().parents[2])
    pod = _pod(
        "restricted",
        ["python", "-c", PROBE, checkout],
        container={
            "securityContext": RESTRICTED_CONTAINER,
            "volumeMounts": [{"name": "work", "mountPath": "/data"}, {"name": "scratch", "mountPath": "/scratch"}],
        },
        securityContext=RESTRICTED_POD,
        volumes=[
            {"name": "work", "persistentVolumeClaim": {"claimName": "work"}},
            {"name": "scratch", "emptyDir": {}},
        ],
        **AGENT_PLACEMENT,
    )
    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps({"kind": "List", "apiVersion": "v1",
                                                                     "items": [_claim("work"), pod]}))  # fmt: skip
    finished = wait_for(lambda: _finished(kube, namespace, "restricted"), "the restricted pod to finish", timeout=120)

    terminated = finished.status.container_statuses[0].state.terminated
    assert finished.status.phase == "Succeeded", terminated
    report = json.loads(terminated.message)
    assert (report["uid"], report["gid"]) == (1000, 3000), report
    assert report["hostname"] == "restricted", report  # its own UTS namespace, named after the pod
    assert 2000 in report["groups"], report
    assert (report["volume"], report["emptyDir"]) == ("written", "written"), report
    assert (report["root"], report["checkout"], report["python"]) == ("EROFS", "EROFS", "EROFS"), report
    written = _claim_folder(cluster, kube, namespace, "work") / "out.txt"
    assert (written.stat().st_uid, written.stat().st_gid) == (1000, 2000)  # fsGroup: setgid volume folder
    assert not Path("/fto-probe").exists() and not Path(checkout, "fto-probe").exists()


def test_agent_refuses_run_as_non_root_without_a_user(kube: Any, kubectl: Kubectl, namespace: str,
                                                      wait_for: WaitFor) -> None:  # fmt: skip
    pod = _pod("rootish", ["python", "-c", "pass"], securityContext={"runAsNonRoot": True}, **AGENT_PLACEMENT)
    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(pod))

    def waiting() -> Any:
        statuses = _read_pod(kube, namespace, "rootish").status.container_statuses or []
        state = statuses[0].state.waiting if statuses else None
        return state if state is not None and state.reason == "CreateContainerConfigError" else None

    state = wait_for(waiting, "CreateContainerConfigError", timeout=60)
    assert "runAsNonRoot" in state.message


# Run 0 writes to both streams, waits for the test's gate, then fails; run 1 (the restart) succeeds.
TALKER = textwrap.dedent(
    """
    import pathlib, sys, time
    runs = pathlib.Path("/state/runs")
    run = int(runs.read_text()) if runs.exists() else 0
    runs.write_text(str(run + 1))
    print(f"run {run}: started", flush=True)
    print(f"run {run}: to stderr", file=sys.stderr, flush=True)
    if run == 0:
        while not pathlib.Path("/gate/open").exists():
            time.sleep(0.1)
        print("run 0: gate opened", flush=True)
        sys.exit(1)
    # Each stream is read by its own reader (as in a container runtime): lines written to both within the same
    # instant can reach the log in either order, so the last line waits to be last.
    time.sleep(0.5)
    print("run 1: done", flush=True)
    """
)


def test_kubectl_logs_follow_previous_tail_and_timestamps(
    kube: Any, kubectl: Kubectl, namespace: str, wait_for: WaitFor, tmp_path: Path,
    cluster: localcluster.ClusterInfo,
) -> None:  # fmt: skip
    gate = tmp_path / "gate"
    gate.mkdir()
    pod = _pod(
        "talker",
        ["python", "-c", TALKER],
        container={"volumeMounts": [{"name": "state", "mountPath": "/state"}, {"name": "gate", "mountPath": "/gate"}]},
        restartPolicy="OnFailure",
        volumes=[{"name": "state", "emptyDir": {}}, {"name": "gate", "hostPath": {"path": str(gate)}}],
        **AGENT_PLACEMENT,
    )
    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(pod))
    wait_for(lambda: "run 0: to stderr" in kubectl("-n", namespace, "logs", "talker", check=False),
             "both lines of run 0 in kubectl logs", timeout=120)  # fmt: skip
    assert set(kubectl("-n", namespace, "logs", "talker").splitlines()) == {"run 0: started", "run 0: to stderr"}

    # -f streams what the running container writes and ends when it exits (here: after the gate opens).
    follow = subprocess.Popen(
        [localcluster.kubectl_binary(), f"--kubeconfig={cluster.kubeconfig}", "-n", namespace, "logs", "-f", "talker"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert follow.stdout is not None
    first = [follow.stdout.readline(), follow.stdout.readline()]
    assert follow.poll() is None and _read_pod(kube, namespace, "talker").status.phase == "Running"
    (gate / "open").touch()
    rest = follow.stdout.read()
    assert follow.wait(timeout=60) == 0
    assert {line.strip() for line in first} == {"run 0: started", "run 0: to stderr"}
    assert rest.splitlines() == ["run 0: gate opened"], rest

    wait_for(lambda: _finished(kube, namespace, "talker"), "the restarted container to succeed", timeout=120)
    current = kubectl("-n", namespace, "logs", "talker").splitlines()
    assert sorted(current) == ["run 1: done", "run 1: started", "run 1: to stderr"]
    previous = kubectl("-n", namespace, "logs", "talker", "--previous").splitlines()
    assert sorted(previous) == ["run 0: gate opened", "run 0: started", "run 0: to stderr"]
    assert kubectl("-n", namespace, "logs", "talker", "--tail=1") == "run 1: done\n"
    stamped = kubectl("-n", namespace, "logs", "talker", "--timestamps").splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z run 1: ", line) for line in stamped), stamped
    # sinceSeconds: nothing was written in the last second once the pod had finished a while ago.
    time.sleep(1.5)
    assert kubectl("-n", namespace, "logs", "talker", "--since=1s") == ""
