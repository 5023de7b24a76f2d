"""Run the dashboard (`python -m finetune_dashboard`) as a process against the local cluster, as some identity.

with DashboardProcess(kubeconfig, log) as dashboard:
    html = dashboard.get("/")
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hack"))

import localcluster

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_MANIFESTS = REPO / "manifests" / "dashboard"


class DashboardProcess:
    def __init__(self, kubeconfig: Path, log: Path, *args: str) -> None:
        self.kubeconfig, self.log, self.args = kubeconfig, log, args
        self.port = localcluster.processes.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DashboardProcess:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "finetune_dashboard", "--kubeconfig", str(self.kubeconfig),
                 "--port", str(self.port), *self.args],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ},
            )  # fmt: skip
        self.wait_ready()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        if error is not None:
            print(f"--- dashboard log ({self.log}) ---\n{self.log.read_text(errors='replace')[-4000:]}")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log.read_text(errors="replace")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"the dashboard did not become ready:\n{self.log.read_text(errors='replace')}")

    def get(self, path: str) -> tuple[int, str, dict[str, str]]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), dict(error.headers)


def token_kubeconfig(cluster: Any, token: str, namespace: str, path: Path) -> Path:
    """A kubeconfig that authenticates with `token` and whose context's namespace is `namespace`."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": cluster.server, "certificate-authority": str(cluster.ca_cert)}}
        ],
        "users": [{"name": "user", "user": {"token": token}}],
        "contexts": [{"name": "user", "context": {"cluster": "local", "user": "user", "namespace": namespace}}],
        "current-context": "user",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
