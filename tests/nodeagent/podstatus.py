"""Pure builders of the pod status a kubelet reports (no I/O)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

# A kubelet caps the termination message at 4096 bytes.
MAX_MESSAGE_BYTES = 4096
NODE_IP = "127.0.0.1"


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerState:
    """What the agent knows about one container."""

    name: str
    image: str
    restart_count: int = 0
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    pid: int | None = None
    started_at: str | None = None
    exit_code: int | None = None
    finished_at: str | None = None
    message: str = ""
    last_terminated: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.exit_code is None

    @property
    def terminated(self) -> bool:
        return self.exit_code is not None

    def start(self, pid: int) -> None:
        if self.terminated:
            # A restart: keep the previous run as lastState, as a kubelet does.
            self.last_terminated = self._terminated()
            self.restart_count += 1
        self.pid, self.started_at, self.exit_code, self.finished_at, self.message = pid, now(), None, None, ""

    def finish(self, exit_code: int, message: str) -> None:
        self.exit_code, self.finished_at = exit_code, now()
        self.message = truncate_message(message)

    def _terminated(self) -> dict[str, Any]:
        reason = "Completed" if self.exit_code == 0 else "Error"
        term: dict[str, Any] = {
            "exitCode": self.exit_code,
            "reason": reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "containerID": f"nodeagent://{self.pid}",
        }
        if self.message:
            term["message"] = self.message
        return term

    def status(self) -> dict[str, Any]:
        state: dict[str, Any]
        if self.terminated:
            state = {"terminated": self._terminated()}
        elif self.running:
            state = {"running": {"startedAt": self.started_at}}
        else:
            waiting: dict[str, Any] = {"reason": self.waiting_reason}
            if self.waiting_message:
                waiting["message"] = self.waiting_message
            state = {"waiting": waiting}
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.running,
            "started": self.running,
            "restartCount": self.restart_count,
            "state": state,
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
        }
        if self.pid is not None:
            out["containerID"] = f"nodeagent://{self.pid}"
        return out


def truncate_message(message: str) -> str:
    return message.encode()[:MAX_MESSAGE_BYTES].decode(errors="ignore")


def _condition(kind: str, ok: bool, reason: str = "", since: str | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": since or now(),
    }
    if reason:
        cond["reason"] = reason
    return cond


def pod_status(
    phase: str,
    start_time: str,
    init: list[ContainerState],
    main: list[ContainerState],
    transitions: dict[str, tuple[bool, str]],
) -> dict[str, Any]:
    """The full `status` of a pod; `transitions` keeps each condition's last (value, time)."""
    initialized = all(c.exit_code == 0 for c in init)
    terminal = phase in ("Succeeded", "Failed")
    ready = phase == "Running" and bool(main) and all(c.running for c in main)
    values = {
        "PodReadyToStartContainers": (not terminal, ""),
        "Initialized": (initialized, "" if initialized else "ContainersNotInitialized"),
        "Ready": (ready, "" if ready else ("PodCompleted" if terminal else "ContainersNotReady")),
        "ContainersReady": (ready, "" if ready else ("PodCompleted" if terminal else "ContainersNotReady")),
        "PodScheduled": (True, ""),
    }
    conditions = []
    for kind, (ok, reason) in values.items():
        previous = transitions.get(kind)
        since = previous[1] if previous is not None and previous[0] == ok else now()
        transitions[kind] = (ok, since)
        conditions.append(_condition(kind, ok, reason, since))
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": NODE_IP,
        "hostIPs": [{"ip": NODE_IP}],
        "podIP": NODE_IP,
        "podIPs": [{"ip": NODE_IP}],
        "startTime": start_time,
        "containerStatuses": [c.status() for c in main],
    }
    if init:
        status["initContainerStatuses"] = [c.status() for c in init]
    return status
