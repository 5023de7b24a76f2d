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


RUNNING = with_changes(MINIMAL, ("training.lora", {"r": 8}), ("resources.nodeSelector", {"gpu": "a100"}))
"""The stored spec of the update (transition rule) cases: nested objects set, so an update can change inside them."""
