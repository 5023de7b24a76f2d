"""Deterministic crash points: the operator is held in the dangerous gap until the test has SIGKILLed it.

A ValidatingAdmissionPolicy refuses the operator identity's status write that would record a step (the
`CRASH_POINTS` conditions, in CEL on the patched object): the operator has done the step (created the child,
the ModelVersion) but cannot say so, and keeps retrying. The test waits until the API server's audit log shows
the refusal, kills the operator there, checks the state a crash at that moment leaves, lifts the policy and
restarts the operator, which must recover without doing anything twice.

Creations are counted over the whole run from the audit log (`creations`), not from what survives at the end.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcluster import audit, run_kubectl

Kubectl = Callable[..., str]

# Each point: the status the operator writes right after its step (the write refused first), the reasons written
# before the step (the only status writes let through while the point is held), and, in CEL, the creations that
# come after the step (refused too). A held operator retries, and a retry must not carry it past the point, nor
# create the next child, before the test has killed it.
CRASH_POINTS: dict[str, tuple[dict[str, str], list[str], str]] = {
    # PVC, ConfigMap, ServiceAccount, Role, RoleBinding created; no phase written yet.
    "prepared": ({"phase": "Pending", "reason": "Creating"}, [], "true"),
    # The curation Job created; Pending/CurationStarting not written yet.
    "curation-created": (
        {"phase": "Pending", "reason": "CurationStarting"},
        ["Creating"],
        "request.resource.resource == 'modelversions' || object.metadata.name.endsWith('-train')",
    ),
    # The training Job created; Running/TrainingStarting not written yet.
    "training-created": (
        {"phase": "Running", "reason": "TrainingStarting"},
        ["Creating", "CurationStarting", "Curating"],
        "request.resource.resource == 'modelversions'",
    ),
    # The ModelVersion created; Completed (and status.model) not written yet.
    "registered": ({"phase": "Completed", "reason": "ModelRegistered"}, [], "false"),
}
MARKER = "fto crash point"


@dataclass
class CrashPoint:
    name: str
    namespace: str
    job: str
    user: str
    state_dir: Path
    since: int
    """Audit log offset when the point was armed."""

    def refusals(self) -> list[dict[str, Any]]:
        """The operator's status writes of this job that the API server refused since the point was armed."""
        return [
            event
            for event in audit.events(self.state_dir, self.since)
            if event["user"]["username"] == self.user
            and audit.resource(event) == "finetuningjobs/status"
            and event["objectRef"].get("namespace") == self.namespace
            and event["objectRef"].get("name") == self.job
            and audit.code(event) >= 400
        ]


def _policy(point: str, name: str, namespace: str, user: str) -> list[dict[str, Any]]:
    refused, before, later_creations = CRASH_POINTS[point]
    if refused["phase"] == "Completed":
        allowed = "object.status.phase != 'Completed'"
    else:
        allowed = f"has(object.status.reason) && object.status.reason in {json.dumps(before)}"
    message = f"{MARKER} {point}: refused until the test has killed the operator"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["finetune.dev"],
                        "apiVersions": ["*"],
                        "operations": ["UPDATE"],
                        "resources": ["finetuningjobs/status"],
                    },
                    {
                        "apiGroups": ["finetune.dev", "batch"],
                        "apiVersions": ["*"],
                        "operations": ["CREATE"],
                        "resources": ["modelversions", "jobs"],
                    },
                ]
            },
            "matchConditions": [{"name": "the-operator", "expression": f"request.userInfo.username == '{user}'"}],
            "validations": [
                {
                    "expression": f"request.operation != 'UPDATE' || !has(object.status) || ({allowed})",
                    "message": message,
                },
                {"expression": f"request.operation != 'CREATE' || !({later_creations})", "message": message},
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
        },
    }
    return [policy, binding]


@contextmanager
def armed(
    kubectl: Kubectl,
    point: str,
    namespace: str,
    job: str,
    operator_kubeconfig: Path,
    user: str,
    state_dir: Path,
) -> Iterator[CrashPoint]:
    """Holds `point` for `job` (which must exist, and not have passed the point yet) until the block ends.

    Returns once the API server enforces the policy: a server-side dry run of the refused write, as the
    operator, is refused (admission runs for dry runs too; policies take a moment to be loaded).
    """
    name = f"fto-crash-{namespace}"[:63]
    objects = _policy(point, name, namespace, user)
    kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    probe = {"status": CRASH_POINTS[point][0]}
    deadline = time.monotonic() + 60
    while True:
        refused = run_kubectl(
            operator_kubeconfig,
            *("-n", namespace, "patch", "ftj", job, "--subresource=status", "--type=merge", "--dry-run=server"),
            *("-p", json.dumps(probe)),
        )
        if refused.returncode != 0 and MARKER in refused.stderr:
            break
        assert time.monotonic() < deadline, f"the crash-point policy never took effect: {refused.stderr}"
        time.sleep(0.3)
    try:
        yield CrashPoint(point, namespace, job, user, state_dir, audit.offset(state_dir))
    finally:
        kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, "--ignore-not-found")


def creations(state_dir: Path, since: int, namespace: str) -> dict[tuple[str, str, str], int]:
    """(user, resource, name) -> successful creations in `namespace` since audit offset `since` (events excluded)."""
    counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for event in audit.events(state_dir, since):
        ref = event.get("objectRef") or {}
        if event["verb"] != "create" or audit.code(event) != 201 or ref.get("namespace") != namespace:
            continue
        if ref.get("subresource") or ref.get("resource") == "events":
            continue
        name = ref.get("name") or (event.get("responseObject") or {}).get("metadata", {}).get("name") or "?"
        counts[(event["user"]["username"], audit.resource(event), name)] += 1
    return dict(counts)
