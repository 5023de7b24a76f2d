"""What the dashboard keeps of each watched object (pure): only the fields its pages show.

At 1,000 jobs the full bodies (managedFields, Kopf's last-handled-configuration annotation, pod specs) would
be most of the process's memory; the pages need a fraction of them.
"""

from __future__ import annotations

import json
from typing import Any

from finetune_operator.api import reporting

Obj = dict[str, Any]
HISTORY_KEY = reporting.HISTORY_KEY


def _meta(obj: Obj, *, labels: bool = True) -> Obj:
    meta = obj.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "namespace", "uid", "creationTimestamp", "resourceVersion") if k in meta}
    if labels and meta.get("labels"):
        kept["labels"] = dict(meta["labels"])
    return kept


def job(obj: Obj) -> Obj:
    return {"metadata": _meta(obj), "spec": obj.get("spec") or {}, "status": obj.get("status") or {}}


def model_version(obj: Obj) -> Obj:
    return {"metadata": _meta(obj), "spec": obj.get("spec") or {}}


def registered_model(obj: Obj) -> Obj:
    """A RegisteredModel: its aliases and lifecycle (spec) and the resolved view (status); conditions dropped."""
    status = obj.get("status") or {}
    kept = {k: status[k] for k in ("versions", "aliases", "latestVersion", "highestVersion") if k in status}
    return {"metadata": _meta(obj, labels=False), "spec": obj.get("spec") or {}, "status": kept}


def event(obj: Obj) -> Obj:
    involved = obj.get("involvedObject") or {}
    return {
        "metadata": _meta(obj, labels=False),
        "involved": {k: involved.get(k) for k in ("kind", "name", "namespace", "uid")},
        "type": obj.get("type"),
        "reason": obj.get("reason"),
        "message": obj.get("message"),
        "count": obj.get("count") or 1,
        # Core events from events.k8s.io writers carry eventTime and no lastTimestamp.
        "time": obj.get("lastTimestamp") or obj.get("eventTime") or obj.get("firstTimestamp") or "",
    }


def pod(obj: Obj) -> Obj:
    status = obj.get("status") or {}
    containers = []
    for container in status.get("containerStatuses") or []:
        state: dict[str, Obj] = container.get("state") or {}
        name, detail = next(iter(state.items()), ("waiting", {}))
        containers.append(
            {
                "name": container.get("name"),
                "state": name,
                "reason": (detail or {}).get("reason"),
                "exitCode": (detail or {}).get("exitCode"),
                "restarts": container.get("restartCount", 0),
            }
        )
    return {
        "metadata": _meta(obj),
        "node": (obj.get("spec") or {}).get("nodeName"),
        "phase": status.get("phase"),
        "reason": status.get("reason"),
        "startTime": status.get("startTime"),
        "containers": containers,
    }


def metrics(obj: Obj) -> Obj:
    """A `<job>-metrics` ConfigMap, its history parsed once here rather than per page view."""
    text = (obj.get("data") or {}).get(HISTORY_KEY) or "{}"
    try:
        history = json.loads(text)
    except ValueError:
        history = {}
    return {"metadata": _meta(obj), "history": history if isinstance(history, dict) else {}}
