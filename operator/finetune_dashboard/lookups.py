"""Joins between cached objects (pure): a job's metrics history, events, pods and registered version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from finetune_operator import naming
from finetune_operator.api import reporting

Obj = dict[str, Any]
Store = Mapping[tuple[str, str], Obj]
Point = tuple[float, float]


def metrics_of(metrics: Store, namespace: str, job: str) -> Obj | None:
    """The job's `<job>-metrics` object, if the cache holds one."""
    return metrics.get((namespace, reporting.metrics_config_map(job)))


def history(metrics: Store, namespace: str, job: str) -> Obj:
    found = metrics_of(metrics, namespace, job)
    return found["history"] if found else {}


def series(recorded: Obj, name: str) -> list[Point]:
    """[[step, value], ...] of one series, anything malformed skipped."""
    points = (recorded.get("series") or {}).get(name) or []
    out: list[Point] = []
    for point in points:
        if isinstance(point, list | tuple) and len(point) == 2 and all(isinstance(v, int | float) for v in point):
            out.append((float(point[0]), float(point[1])))
    return out


def events_of(events: Store, job: Obj) -> list[Obj]:
    uid, meta = job["metadata"].get("uid"), job["metadata"]
    mine = [
        e
        for e in events.values()
        if e["involved"].get("uid") == uid
        or (e["involved"].get("name") == meta["name"] and e["involved"].get("namespace") == meta.get("namespace"))
    ]
    return sorted(mine, key=lambda e: e.get("time") or "")


def pods_of(pods: Store, job: Obj) -> list[Obj]:
    meta = job["metadata"]
    value = naming.label_value(meta["name"])
    mine = [
        p
        for (namespace, _), p in pods.items()
        if namespace == meta.get("namespace") and (p["metadata"].get("labels") or {}).get(naming.LABEL_JOB) == value
    ]
    return sorted(mine, key=lambda p: p["metadata"].get("creationTimestamp") or "")


def version_of(versions: Store, job: Obj) -> Obj | None:
    model = (job.get("status") or {}).get("model") or {}
    name = model.get("modelVersion")
    return versions.get((job["metadata"].get("namespace") or "", name)) if name else None


def job_of(jobs: Store, version: Obj) -> Obj | None:
    """The job that registered `version`, if it still exists (same uid, not a later job of the same name)."""
    reference = version["spec"].get("job") or {}
    found = jobs.get((version["metadata"].get("namespace") or "", reference.get("name") or ""))
    return found if found and found["metadata"].get("uid") == reference.get("uid") else None
