"""Namespaces for the integration tests: one per test (the `namespace` fixture), or one a session fixture owns."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client

from support.fixtures import WaitFor


@contextmanager
def fresh_namespace(kube: client.ApiClient, wait_for: WaitFor, label: str) -> Iterator[str]:
    """A new namespace named after `label` (deleted afterwards), ready for pods: its `default` SA exists."""
    stem = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))

    def default_sa() -> bool:
        accounts: Any = core.list_namespaced_service_account(name, field_selector="metadata.name=default")
        return bool(accounts.items)

    # The ServiceAccount admission plugin rejects pods until the controller-manager made it.
    wait_for(default_sa, f"serviceaccount default in {name}", timeout=30)
    yield name
    core.delete_namespace(name, propagation_policy="Background")
