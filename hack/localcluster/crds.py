"""Waiting until the API server serves CustomResourceDefinitions.

Not `kubectl wait --for=condition=Established`: on a CRD created a moment before, whose status has no
conditions yet, it fails at once (`.status.conditions accessor error: <nil> is of the type <nil>`,
kubernetes/kubernetes#66439) instead of waiting. Seen here on a fresh cluster under load.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .cluster import run_kubectl

_POLL_SECONDS = 0.2


def _established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def wait_established(kubeconfig: Path, names: Iterable[str], timeout: float = 60.0) -> None:
    """Returns once every CRD in `names` is Established; raises TimeoutError naming those that are not."""
    waiting = sorted(set(names))
    deadline = time.monotonic() + timeout
    while waiting:
        found = run_kubectl(kubeconfig, "get", "crd", "--ignore-not-found", "-o", "json", *waiting)
        if found.returncode == 0:
            listed = json.loads(found.stdout or '{"items": []}')
            # kubectl prints one object, not a List, when it was given a single name.
            crds = listed.get("items", [listed] if listed.get("kind") == "CustomResourceDefinition" else [])
            ready = {c["metadata"]["name"] for c in crds if _established(c)}
            waiting = [name for name in waiting if name not in ready]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"CRDs not Established after {timeout:.0f} s: {', '.join(waiting)} ({found.stderr.strip()})"
            )
        time.sleep(_POLL_SECONDS)
