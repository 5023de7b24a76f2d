"""Real S3 and MLflow servers on 127.0.0.1 for tests and local trials (never for production).

- S3: s3s-fs (crates.io), an S3 implementation serving a local directory; built once by
  hack/build-s3s-fs.sh. Not an emulator of AWS's behaviour: it parses and signs real S3 requests.
- MLflow: `mlflow server` from its own virtualenv (hack/mlflow-server.sh) with a SQLite backend and proxied
  artifacts (`--artifacts-destination`), so clients upload artifacts over HTTP like against a team's server.

Each server is a context manager that builds (or finds cached) its binary, picks a free port, starts the
process with its output in a log file, waits until it answers, and stops it (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

HACK = Path(__file__).resolve().parent


def _script_output(script: str) -> str:
    result = subprocess.run([str(HACK / script)], check=True, stdout=subprocess.PIPE, text=True)
    return result.stdout.strip().splitlines()[-1]


def s3s_fs_binary() -> Path:
    return Path(_script_output("build-s3s-fs.sh"))


def mlflow_binary() -> Path:
    return Path(_script_output("mlflow-server.sh"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    """A child process that serves HTTP on `port` once `ready()` says so."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                return bool(response.status < 500)
        except urllib.error.HTTPError as error:
            return error.code < 500
        except OSError:
            return False

    ready_path = "/"

    def start(self, timeout: float = 120.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = self.command()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not answer on {self.url} within {timeout:.0f} s")
            time.sleep(0.2)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> _Server:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class S3Server(_Server):
    """s3s-fs serving `workdir/data` with one access key pair. Buckets are folders under `data`."""

    name = "s3s-fs"

    def __init__(self, workdir: Path, access_key: str = "fto-test-key", secret_key: str = "fto-test-secret") -> None:
        super().__init__(workdir)
        self.access_key = access_key
        self.secret_key = secret_key
        self.root = workdir / "data"

    def command(self) -> list[str]:
        self.root.mkdir(parents=True, exist_ok=True)
        return [
            str(s3s_fs_binary()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--access-key",
            self.access_key,
            "--secret-key",
            self.secret_key,
            str(self.root),
        ]


class MlflowServer(_Server):
    """`mlflow server` with SQLite metadata and proxied artifacts under `workdir`."""

    name = "mlflow"
    ready_path = "/health"

    def command(self) -> list[str]:
        return [
            str(mlflow_binary()),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{self.workdir / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.workdir / "artifacts"),
        ]
