"""The API server's audit log: every write, by whom, with what answer (and the bodies of status patches).

Tests count over a whole run from it what no end state can show: how many times each child was created,
which identity wrote each status patch, which patch was refused. `up` enables DEFAULT_POLICY unless given
another (bench/scale has its own); the log rotates at 200 MB, so a long-lived cluster stays bounded.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

WRITE_VERBS = ["create", "update", "patch", "delete", "deletecollection"]
DEFAULT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        # Node heartbeats are noise.
        {"level": "None", "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}]},
        {"level": "None", "resources": [{"group": "", "resources": ["nodes", "nodes/status"]}]},
        # FineTuningJob status writes with their bodies: who reported what (operator, trainer).
        {
            "level": "Request",
            "verbs": ["patch", "update"],
            "resources": [{"group": "finetune.dev", "resources": ["finetuningjobs/status"]}],
        },
        {"level": "Metadata", "verbs": WRITE_VERBS},
        {"level": "None"},
    ],
}


def policy_file(state: Path) -> Path:
    return state / "config" / "audit-policy.json"


def log_file(state: Path) -> Path:
    return state / "logs" / "audit.log"


def flags(state: Path) -> list[str]:
    policy = policy_file(state)
    if not policy.exists():
        return []
    return [
        f"--audit-policy-file={policy}",
        f"--audit-log-path={log_file(state)}",
        "--audit-log-maxsize=200",
        "--audit-log-maxbackup=1",
    ]


def write_policy(state: Path, policy: dict[str, Any] | None) -> None:
    """The given policy, else the default one unless a policy is there already."""
    path = policy_file(state)
    if policy is not None or not path.exists():
        path.write_text(json.dumps(policy or DEFAULT_POLICY, indent=2) + "\n")


def offset(state: Path) -> int:
    """Where the log ends now: `events(state, since=offset)` then reads only what happens afterwards."""
    try:
        return log_file(state).stat().st_size
    except FileNotFoundError:
        return 0


def events(state: Path, since: int = 0) -> Iterator[dict[str, Any]]:
    """Completed requests logged after byte `since` (a rotation in between restarts from the new file)."""
    path = log_file(state)
    with path.open("rb") as lines:
        if path.stat().st_size >= since:
            lines.seek(since)
        for line in lines:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("stage") == "ResponseComplete":
                    yield event


def resource(event: dict[str, Any]) -> str:
    ref = event.get("objectRef") or {}
    return str(ref.get("resource", "?")) + (f"/{ref['subresource']}" if ref.get("subresource") else "")


def code(event: dict[str, Any]) -> int:
    return int((event.get("responseStatus") or {}).get("code") or 0)
