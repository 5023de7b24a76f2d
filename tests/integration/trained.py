"""The quickstart as manifests/samples has it, and one such job trained for real per session for the tests that only
read a trained job (its status, events, ModelVersion, metrics history, workspace and pod logs).

A real training is the most expensive thing these tests do: tests that only read its outcome share this one
(`trained_quickstart`) instead of each training their own. A test that changes the job, or needs a job set up
otherwise, trains its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kwok_jobs import PhaseRecorder, poll
from namespaces import fresh_namespace
from operator_harness import OperatorProcess, operator, wait_phase
from rbac import operator_kubeconfig

import localcluster
import strictyaml
from localcluster import audit
from support.fixtures import Kubectl, WaitFor

REPO = Path(__file__).resolve().parents[2]
SESSIONS = REPO / "manifests" / "samples" / "data" / "sessions.jsonl"


def quickstart(name: str, epochs: int = 2) -> dict[str, Any]:
    body: dict[str, Any] = strictyaml.load((REPO / "manifests" / "samples" / "quickstart.yaml").read_text())
    body["metadata"]["name"] = name
    body["spec"]["training"]["epochs"] = epochs
    body["spec"]["storage"]["retainPolicy"] = "Retain"
    return body


def setup(kubectl: Kubectl, namespace: str, *jobs: dict[str, Any]) -> None:
    """The quickstart's sessions ConfigMap, then `jobs`."""
    config_map = kubectl(
        "-n", namespace, "create", "configmap", "quickstart-sessions",
        f"--from-file=sessions.jsonl={SESSIONS}", "--dry-run=client", "-o", "yaml",
    )  # fmt: skip
    kubectl("-n", namespace, "apply", "-f", "-", stdin=config_map)
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump_all(jobs))


@dataclass(frozen=True)
class TrainedQuickstart:
    namespace: str
    name: str
    job: dict[str, Any]
    """The job as it was once Completed."""
    since: int
    """The audit log's offset before the job was applied (`localcluster.audit.events(state_dir, since)`)."""
    phases: list[str]
    """Every phase a watch started before the job was applied saw, in order."""
    statuses: list[dict[str, Any]]
    """Every status that watch saw, in order."""
    operator: OperatorProcess
    """The operator (production identity) serving only `namespace`; it keeps running for the whole session."""


@pytest.fixture(scope="session")
def trained_quickstart(
    cluster: localcluster.ClusterInfo,
    crds: Any,
    kube: client.ApiClient,
    kubectl: Kubectl,
    wait_for: WaitFor,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TrainedQuickstart]:
    """The quickstart (3 epochs, as manifests/samples has it) trained to Completed in a namespace of its own."""
    identity = operator_kubeconfig(cluster, kubectl, tmp_path_factory.mktemp("trained") / "operator.kubeconfig")
    with fresh_namespace(kube, wait_for, "trained-quickstart") as namespace:
        process = operator(cluster, namespace, "trained-quickstart", identity).start()
        try:
            since = audit.offset(cluster.state_dir)
            with PhaseRecorder(kube, namespace) as recorder:
                setup(kubectl, namespace, quickstart("trained", epochs=3))
                job = wait_phase(kubectl, namespace, "trained", ("Completed",), timeout=600, operator=process)
                poll(lambda: recorder.of("trained")[-1:] == ["Completed"], "the watch to see Completed", 30)
            yield TrainedQuickstart(
                namespace, "trained", job, since, recorder.of("trained"), recorder.seen("trained"), process
            )
        finally:
            process.stop()
            print(f"--- operator log of the trained quickstart ({process.log}) ---\n{process.tail()}")
