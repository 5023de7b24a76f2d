"""Run the real operator (`python -m finetune_operator`) as a process against the local cluster.

Tests start, SIGKILL and restart it like a crashing pod would be; its log is kept under the cluster's
state dir and printed when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rbac import operator_kubeconfig

import localcluster
from support.fixtures import Kubectl

TERMINAL = ("Completed", "Failed", "Cancelled")


class OperatorProcess:
    """One operator process; `restart()` after `kill()` models a crash-looping pod."""

    def __init__(self, kubeconfig: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.log = log
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        with self.log.open("ab") as out:
            out.write(f"\n===== operator start {time.strftime('%H:%M:%S')} =====\n".encode())
        health_port = localcluster.processes.free_port()
        self.process = localcluster.start_operator(
            self.kubeconfig, self.log, health_port, env={"FTO_SWEEP_SECONDS": "2", **self.env}
        )
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no last status write, as when a node dies."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self) -> None:
        self.stop()
        self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 80) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def isolated(namespace: str, **env: str) -> dict[str, str]:
    """Environment of an operator that serves only `namespace`, under a peering name of its own.

    The cluster is shared by concurrent test runs: a cluster-wide operator would reconcile other tests' jobs
    (and keep reconciling a test's jobs after that test killed its own operator), and operators sharing the
    default peering name would pause in favour of each other whenever a peering object of that name exists.
    """
    return {"FTO_NAMESPACES": namespace, "FTO_PEERING": f"fto-test-{uuid.uuid4().hex[:10]}", **env}


def operator(
    cluster: localcluster.ClusterInfo, namespace: str, label: str, kubeconfig: Path, **env: str
) -> OperatorProcess:
    """An operator process serving only `namespace` (see `isolated`) with `kubeconfig`'s identity, not started yet.

    Give it the production identity (`production_identity`): the admin's would hide a missing RBAC rule.
    """
    log = cluster.state_dir / "logs" / f"operator-{label[:60]}.log"
    log.unlink(missing_ok=True)
    return OperatorProcess(kubeconfig, log, env=isolated(namespace, **env))


@pytest.fixture
def production_identity(cluster: localcluster.ClusterInfo, kubectl: Kubectl, tmp_path: Path) -> Path:
    """A kubeconfig of the operator's ServiceAccount with the ClusterRole of manifests/base, and nothing more."""
    return operator_kubeconfig(cluster, kubectl, tmp_path / "operator.kubeconfig")


@pytest.fixture
def operator_process(
    cluster: localcluster.ClusterInfo,
    crds: Any,
    namespace: str,
    production_identity: Path,
    request: pytest.FixtureRequest,
) -> Iterator[OperatorProcess]:
    """The operator as its production identity, serving only this test's namespace; its log's tail is shown with a
    failing test's output."""
    process = operator(cluster, namespace, request.node.name, production_identity).start()
    yield process
    process.stop()
    print(f"--- operator log ({process.log}) ---\n{process.tail()}")


def get_job(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return json.loads(kubectl("-n", namespace, "get", "ftj", name, "-o", "json"))  # type: ignore[no-any-return]


def phase_of(kubectl: Kubectl, namespace: str, name: str) -> str:
    return str((get_job(kubectl, namespace, name).get("status") or {}).get("phase") or "")


def wait_phase(
    kubectl: Kubectl,
    namespace: str,
    name: str,
    phases: tuple[str, ...],
    timeout: float,
    operator: OperatorProcess | None = None,
    seen: list[str] | None = None,
) -> dict[str, Any]:
    """Wait until the job reaches one of `phases`; records every phase seen (for ordering checks)."""
    deadline = time.monotonic() + timeout
    while True:
        job = get_job(kubectl, namespace, name)
        phase = (job.get("status") or {}).get("phase")
        if seen is not None and phase and (not seen or seen[-1] != phase):
            seen.append(phase)
        if phase in phases:
            return job
        if phase in TERMINAL:
            raise AssertionError(f"job ended {phase} ({job['status'].get('reason')}): {job['status'].get('message')}")
        if operator is not None and not operator.alive():
            raise AssertionError(f"the operator exited:\n{operator.tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {phases}; status: {json.dumps(job.get('status'))}")
        time.sleep(0.5)
