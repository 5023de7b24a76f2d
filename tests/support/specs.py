"""FineTuningJob specs for the CRD tests: the smallest valid spec and copies of it with dotted-path changes.

The unit tests check the generated schema against an emulation of the API server (tests/unit/test_crd.py), the
integration tests against a real one (tests/integration/test_crd_apply.py): both start from the same spec.
"""

from __future__ import annotations

import copy
from typing import Any

Spec = dict[str, Any]

DELETE = object()
"""As a change's value: remove the field."""

MINIMAL: Spec = {
    "baseModel": {"name": "tiny", "builtin": "tiny-gpt"},
    "dataset": {"source": {"configMap": {"name": "sessions", "key": "sessions.jsonl"}}},
    "output": {"modelName": "chat"},
}


def with_changes(spec: Spec, *changes: tuple[Any, Any]) -> Spec:
    """A copy of `spec` with each `dotted.path` set to its value (or removed with DELETE); a change may itself be
    a tuple of changes (a case that needs two fields set)."""
    spec = copy.deepcopy(spec)
    for change in changes:
        if isinstance(change[0], tuple):
            spec = with_changes(spec, *change)
            continue
        path, value = change
        *parents, leaf = path.split(".")
        node = spec
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return spec


SERVER_DEFAULTS: Spec = {
    "dataset": {"curation": {"minSuccessRate": 0.9, "dedup": True, "evalFraction": 0.05}},
    "output": {"bump": "patch"},
    "training": {"method": "lora", "epochs": 3, "precision": "auto", "quantization": "none", "sharding": "auto"},
    "resources": {"gpus": 1, "nodes": 1, "gpuResourceName": "nvidia.com/gpu"},
    "evaluation": {},
    "storage": {"size": "10Gi", "accessMode": "ReadWriteOnce", "retainPolicy": "Retain"},
    "runPolicy": {"backoffLimit": 2},
    "cancel": False,
}
"""The defaults the API server fills into MINIMAL, which the operator's models assume (written out by hand: the
tests compare the schema's defaulting, emulated and real, against them)."""


def with_server_defaults(spec: Spec) -> Spec:
    """`spec` as the API server stores it when it sets none of SERVER_DEFAULTS' fields (MINIMAL and its kin)."""
    return _merged(SERVER_DEFAULTS, spec)


def _merged(defaults: Spec, spec: Spec) -> Spec:
    merged = copy.deepcopy(spec)
    for key, value in defaults.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(value, merged[key])
        elif key not in merged:
            merged[key] = copy.deepcopy(value)
    return merged


RUNNING = with_changes(MINIMAL, ("training.lora", {"r": 8}), ("resources.nodeSelector", {"gpu": "a100"}))
"""The stored spec of the update (transition rule) cases: nested objects set, so an update can change inside them."""
