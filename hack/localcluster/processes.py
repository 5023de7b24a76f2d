"""Starting, probing and stopping the control plane's processes.

Each component runs detached (own session, so a Ctrl-C in the shell that ran `up` does not reach
it) with its output in `<state>/logs/<name>.log` and its PID in `<state>/pids/<name>.pid`.
Stopping goes by those PID files only, never by process name, so two clusters (two state dirs)
never touch each other. A PID file also records the process's start time: PIDs are reused (pid_max is
32768 here), and a stale file of a cluster that died long ago must not make `down` signal whatever process
holds that number now (it once stopped another cluster's API server in the middle of a CI run).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path


class ComponentFailed(RuntimeError):
    """A component exited or did not become ready; the message names its log file."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _pid_file(state: Path, name: str) -> Path:
    return state / "pids" / f"{name}.pid"


def log_file(state: Path, name: str) -> Path:
    return state / "logs" / f"{name}.log"


def start(
    state: Path, name: str, argv: Sequence[str | os.PathLike[str]], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Starts `argv` in the background and records its PID under `name`."""
    for sub in ("pids", "logs"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    with log_file(state, name).open("ab") as log:
        proc = subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    _pid_file(state, name).write_text(f"{proc.pid} {_start_time(proc.pid)}\n")
    return proc


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (the state letter) on; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    # The command name in parentheses may hold spaces and parentheses: split after the last one.
    return stat.rsplit(")", 1)[1].split()


def _start_time(pid: int) -> str | None:
    """When the process started, in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    fields = _stat_fields(pid)
    return fields[19] if fields else None


def running_pid(state: Path, name: str) -> int | None:
    """The recorded PID of `name` if that very process (same start time) is still alive and not a zombie."""
    try:
        pid_text, started = _pid_file(state, name).read_text().split()
        pid = int(pid_text)
    except (FileNotFoundError, ValueError):
        return None
    fields = _stat_fields(pid)
    # Z: exited but not reaped. Another start time: the PID now belongs to another process.
    if fields is None or fields[0] == "Z" or fields[19] != started:
        return None
    return pid


def stop(state: Path, name: str, grace: float = 10.0) -> None:
    """SIGTERM to the component's process group, SIGKILL after `grace` seconds; forgets the PID."""
    pid = running_pid(state, name)
    if pid is not None:
        # start() made each component a session (and group) leader: signal the whole group so
        # helpers it spawned (the node agent's pods) go too.
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while running_pid(state, name) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if running_pid(state, name) is not None:
            _signal_group(pid, signal.SIGKILL)
            while running_pid(state, name) is not None:
                time.sleep(0.05)
    _pid_file(state, name).unlink(missing_ok=True)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def https_ok(url: str, context: ssl.SSLContext) -> bool:
    """True when `url` answers 200 (used for /readyz and /health)."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_until(state: Path, name: str, ready: Callable[[], bool], timeout: float, what: str) -> None:
    """Polls `ready` until true; fails early, with the log's tail, if the component exits."""
    deadline = time.monotonic() + timeout
    while not ready():
        if running_pid(state, name) is None:
            raise ComponentFailed(f"{name} exited; last log lines:\n{tail(log_file(state, name))}")
        if time.monotonic() > deadline:
            raise ComponentFailed(f"{name}: {what} not reached in {timeout:.0f} s; see {log_file(state, name)}")
        time.sleep(0.1)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
