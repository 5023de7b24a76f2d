"""One thread per pod: volumes, init containers, containers, status, graceful deletion.

Each container runs as `unshare --mount --uts --propagation private <python> enter.py <spec>` in its own
session (so it and its children can be signalled as a group); enter.py bind-mounts the volumes
and execs the container's command, keeping the PID. Restarts (restartPolicy OnFailure/Always)
back off 1, 2, 4, 8, then 10 s, shorter than a kubelet's 10 s..5 min so tests stay quick.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import containerlog, podenv, security, volumes
from .dns import Records
from .objects import NotReadyYet, Objects
from .podstatus import ContainerState, now, pod_status, truncate_message

log = logging.getLogger(__name__)

_ENTER = Path(__file__).with_name("enter.py")
# What the container's process needs from the host because the image is ignored: this checkout (the
# project's packages are installed editable from it) and the Python installation running them.
RUNTIME_PATHS = sorted({str(Path(__file__).resolve().parents[2]), sys.prefix, sys.base_prefix})
_POLL = 0.2
_REPORT_RETRY_SECONDS = 120.0
# Reasons to keep a container waiting and retry: a missing object, or an API server that is away.
_WAIT_ON = (NotReadyYet, ApiException, urllib3.exceptions.HTTPError)
# A kubelet falls back to the log's tail for a failed container without a termination message.
_FALLBACK_LOG_BYTES = 2048


@dataclass(frozen=True)
class Context:
    core: client.CoreV1Api
    objects: Objects
    state_dir: Path
    apiserver_port: int
    forget: Callable[[str], None]
    """Called with the pod's UID when its worker ends."""
    records: Records
    """The headless Services' records (dns.py)."""


class _Stopped(Exception):
    """The pod is being deleted."""


class _Container:
    def __init__(self, spec: Any, state: ContainerState, pod_dir: Path, log_dir: Path) -> None:
        self.spec = spec
        self.state = state
        self.termination_file = pod_dir / "termination" / spec.name
        self.spec_file = pod_dir / "containers" / f"{spec.name}.json"
        self.log_folder = log_dir / spec.name
        self.proc: subprocess.Popen[bytes] | None = None
        self.recorder: containerlog.Recorder | None = None
        self.restart_at = 0.0

    def launch(self, pod: Any, ctx: Context, folders: dict[str, Path], hosts: Path | None = None) -> None:
        env = podenv.environment(pod, self.spec, ctx.objects, ctx.apiserver_port)
        user = security.identity(pod, self.spec)
        binds = volumes.binds(self.spec, folders, self.termination_file)
        if hosts is not None:
            binds.append(volumes.Bind(hosts, "/etc/hosts", read_only=True))
        spec = {
            "binds": [b.as_json() for b in binds],
            "argv": podenv.command_line(self.spec, env),
            "workingDir": self.spec.working_dir or "/",
            "runtimePaths": RUNTIME_PATHS,
            "user": user.as_json(),
            # A kubelet names the pod's UTS namespace after the pod (spec.hostname if set), at most 63 characters.
            "hostname": (pod.spec.hostname or pod.metadata.name)[:63],
        }
        os.chown(self.termination_file, user.uid, user.gid)
        self.spec_file.parent.mkdir(parents=True, exist_ok=True)
        self.spec_file.write_text(json.dumps(spec, indent=1))
        # The next run's number is what restartCount will say once it started.
        run = self.state.restart_count + (1 if self.state.terminated else 0)
        self.recorder = containerlog.Recorder(containerlog.run_file(self.log_folder, run))
        self.proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "private",
                sys.executable,
                str(_ENTER),
                str(self.spec_file),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            cwd="/",
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.recorder.attach(self.proc.stdout, self.proc.stderr)
        self.state.start(self.proc.pid)

    def poll(self) -> bool:
        """True when the process just exited (its state is then terminated)."""
        if self.proc is None or self.state.terminated:
            return False
        code = self.proc.poll()
        if code is None:
            return False
        # A signal death is reported as 128 + signal number, like a container runtime does.
        exit_code = 128 - code if code < 0 else code
        if self.recorder is not None:
            self.recorder.close()
        self.state.finish(exit_code, self._message(exit_code))
        return True

    def _message(self, exit_code: int) -> str:
        try:
            message = self.termination_file.read_bytes()[: 4 * 4096].decode(errors="replace")
        except FileNotFoundError:
            message = ""
        policy = self.spec.termination_message_policy or "File"
        if not message and exit_code != 0 and policy == "FallbackToLogsOnError" and self.recorder is not None:
            message = containerlog.tail_text(self.recorder.path, _FALLBACK_LOG_BYTES)
        return truncate_message(message)

    def signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)


class PodWorker(threading.Thread):
    def __init__(self, pod: Any, ctx: Context) -> None:
        meta = pod.metadata
        super().__init__(name=f"pod-{meta.namespace}/{meta.name}", daemon=True)
        self.pod = pod
        self.ctx = ctx
        self.pod_dir = pod_dir(ctx.state_dir, pod)
        # Logs outlive the pod's folder (tokens, secrets, emptyDirs): `kubectl logs` of a finished pod works.
        log_dir = ctx.state_dir / "logs" / self.pod_dir.name
        self.init = [
            _Container(c, ContainerState(c.name, c.image or ""), self.pod_dir, log_dir)
            for c in pod.spec.init_containers or []
        ]
        self.main = [
            _Container(c, ContainerState(c.name, c.image or ""), self.pod_dir, log_dir) for c in pod.spec.containers
        ]
        if self.init:
            for c in self.main:
                c.state.waiting_reason = "PodInitializing"
        self.phase = "Pending"
        self.start_time = now()
        self.transitions: dict[str, tuple[bool, str]] = {}
        self._stop = threading.Event()
        self._grace = 30.0
        self._remove_after_stop = True
        self._gone = False
        self._hosts: Path | None = None

    # --- called from the agent's watch thread
    def request_stop(self, grace_seconds: int | None, remove: bool = True) -> None:
        """Ends the pod's processes; `remove` deletes the pod object afterwards (pod deletion)."""
        if not self._stop.is_set():
            self._grace = float(grace_seconds if grace_seconds is not None else 30)
            self._remove_after_stop = remove
            self._stop.set()

    def pod_gone(self) -> None:
        """The pod object was removed (force deletion): kill its processes, drop its folder."""
        self._gone = True
        self.request_stop(0, remove=False)

    # --- the pod's thread
    def run(self) -> None:
        try:
            self._run()
        except _Stopped:
            pass
        except Exception:
            log.exception("pod %s failed in the node agent", self.name)
        finally:
            if self._stop.is_set():
                self._terminate()
                if self._remove_after_stop:
                    self._remove()
            if self._gone or (self._stop.is_set() and self._remove_after_stop):
                shutil.rmtree(self.pod_dir, ignore_errors=True)
            self.ctx.records.withdraw(self.pod)
            self.ctx.forget(self.pod.metadata.uid)

    def _run(self) -> None:
        self._report()
        folders = self._prepare()
        self._hosts = self.ctx.records.publish(self.pod)
        policy = self.pod.spec.restart_policy or "Always"
        for container in self.init:
            if not self._run_to_success(container, folders, policy):
                self.phase = "Failed"
                self._report()
                return
        for container in self.main:
            self._launch(container, folders)
        self.phase = "Running"
        self._report()
        while True:
            self._sleep()
            changed = False
            for c in self.main:
                if c.poll():
                    changed = True
                    if policy == "Always" or (policy == "OnFailure" and c.state.exit_code != 0):
                        c.restart_at = time.monotonic() + _backoff(c.state.restart_count)
                if c.state.terminated and c.restart_at and time.monotonic() >= c.restart_at:
                    c.restart_at = 0.0
                    self._launch(c, folders)
                    changed = True
            if all(c.state.terminated and not c.restart_at for c in self.main):
                self.phase = "Succeeded" if all(c.state.exit_code == 0 for c in self.main) else "Failed"
                self._report()
                return
            if changed:
                self._report()

    def _prepare(self) -> dict[str, Path]:
        """Volumes; retried (ContainerCreating, with the reason) until every reference resolves."""
        while True:
            try:
                return volumes.materialize(self.pod, self.ctx.objects, self.pod_dir)
            except (*_WAIT_ON, podenv.ConfigError) as e:
                for c in [*self.init, *self.main]:
                    c.state.waiting_message = str(e)
                self._report()
                self._sleep(2.0)

    def _launch(self, container: _Container, folders: dict[str, Path]) -> None:
        """Starts a container; a missing env reference keeps it waiting, as CreateContainerConfigError."""
        while True:
            try:
                container.launch(self.pod, self.ctx, folders, self._hosts)
                return
            except (*_WAIT_ON, podenv.ConfigError) as e:
                container.state.waiting_reason = "CreateContainerConfigError"
                container.state.waiting_message = str(e)
                self._report()
                self._sleep(2.0)

    def _run_to_success(self, container: _Container, folders: dict[str, Path], policy: str) -> bool:
        while True:
            self._launch(container, folders)
            self._report()
            while not container.poll():
                self._sleep()
            self._report()
            if container.state.exit_code == 0:
                return True
            if policy == "Never":
                return False
            self._sleep(_backoff(container.state.restart_count))

    def _sleep(self, seconds: float = _POLL) -> None:
        if self._stop.wait(seconds):
            raise _Stopped

    def _terminate(self) -> None:
        """SIGTERM, terminationGracePeriodSeconds, then SIGKILL; the final status is reported."""
        containers = [*self.init, *self.main]
        for c in containers:
            c.signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        while any(c.proc is not None and c.proc.poll() is None for c in containers):
            if time.monotonic() > deadline:
                for c in containers:
                    c.signal(signal.SIGKILL)
            time.sleep(0.05)
        for c in containers:
            c.poll()
        if self.phase not in ("Succeeded", "Failed"):
            ran = [c for c in self.main if c.state.terminated]
            ok = ran and len(ran) == len(self.main) and all(c.state.exit_code == 0 for c in ran)
            self.phase = "Succeeded" if ok else "Failed"
            self._report()

    def _remove(self) -> None:
        """What a kubelet does last: delete the pod with grace 0 (guarded by its UID)."""
        meta = self.pod.metadata
        options = client.V1DeleteOptions(grace_period_seconds=0, preconditions=client.V1Preconditions(uid=meta.uid))
        try:
            self.ctx.core.delete_namespaced_pod(meta.name, meta.namespace, body=options)
        except ApiException as e:
            if e.status not in (404, 409):
                raise

    def _report(self) -> None:
        status = pod_status(
            self.phase,
            self.start_time,
            [c.state for c in self.init],
            [c.state for c in self.main],
            self.transitions,
        )
        meta = self.pod.metadata
        deadline = time.monotonic() + _REPORT_RETRY_SECONDS
        while True:
            try:
                self.ctx.core.patch_namespaced_pod_status(
                    meta.name,
                    meta.namespace,
                    {"status": status},
                    _content_type="application/strategic-merge-patch+json",
                )
                return
            except ApiException as e:
                # Gone already (deleted with grace 0 elsewhere); nothing left to report to.
                if e.status == 404:
                    return
                error: Exception = e
            except (urllib3.exceptions.HTTPError, OSError) as e:
                error = e
            # The API server may be restarting (fault tests): a kubelet keeps retrying too.
            if time.monotonic() > deadline:
                raise error
            log.warning("reporting the status of %s failed, retrying: %s", self.name, error)
            time.sleep(1.0)


def pod_dir(state_dir: Path, pod: Any) -> Path:
    meta = pod.metadata
    return state_dir / "pods" / f"{meta.namespace}_{meta.name}_{meta.uid}"


def _backoff(restarts: int) -> float:
    return float(min(10, 2 ** min(restarts, 4)))
