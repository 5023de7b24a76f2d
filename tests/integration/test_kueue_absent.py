"""`spec.queueName` on a cluster where no Kueue acts on the training Job: the job says so instead of waiting
silently.

The training Job is created suspended with Kueue's queue label; without a running Kueue no Workload ever appears,
and the job showed "waiting for Kueue admission in LocalQueue X" for good. Both states are real here: Kueue not
installed (its CRDs deleted), and its CRDs installed but its controller stopped (what tests/integration/
test_kueue.py leaves the shared cluster in: `localcluster.kueue.stop` removes the webhooks and stops the process).
After FTO_KUEUE_WORKLOAD_WAIT_SECONDS the job is still Queued, with reason NoKueueWorkload. Nothing sends the job
an event after its training Job was suspended, so the change comes from the operator's sweep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kwok_jobs import apply, get_json, gpu_job, reason_is, sessions_config_map, wait_status
from operator_harness import operator

import localcluster
from support.fixtures import Kubectl

pytestmark = pytest.mark.integration

JOB = "unqueued"
QUEUE = "gpus"
WAIT_SECONDS = 5
KUEUE_CRD = "workloads.kueue.x-k8s.io"


def kueue_crds_installed(kubectl: Kubectl) -> bool:
    return bool(kubectl("get", "crd", KUEUE_CRD, "--ignore-not-found", "-o", "name").strip())


@pytest.fixture(params=["not-installed", "crds-without-controller"])
def kueue_absent(request: pytest.FixtureRequest, cluster: localcluster.ClusterInfo, kubectl: Kubectl) -> str:
    if request.param == "not-installed":
        localcluster.kueue.uninstall(cluster)
        assert not kueue_crds_installed(kubectl)
    else:
        if not kueue_crds_installed(kubectl):
            localcluster.kueue.start(cluster)  # installs the CRDs (and the webhooks, which stop removes)
        localcluster.kueue.stop(cluster)
        assert kueue_crds_installed(kubectl)
    assert not localcluster.kueue.running(cluster.state_dir)
    return str(request.param)


def test_a_job_whose_training_job_gets_no_kueue_workload_says_so_and_keeps_waiting(
    kubectl: Kubectl,
    namespace: str,
    cluster: localcluster.ClusterInfo,
    crds: Any,
    kueue_absent: str,
    production_identity: Path,
    request: pytest.FixtureRequest,
) -> None:
    env = {"FTO_KUEUE_WORKLOAD_WAIT_SECONDS": str(WAIT_SECONDS)}
    process = operator(cluster, namespace, request.node.name, production_identity, **env).start()
    try:
        apply(kubectl, namespace, sessions_config_map(), gpu_job(JOB, gpus=1, queueName=QUEUE))
        status = wait_status(
            kubectl, namespace, JOB, reason_is("Queued", "NoKueueWorkload"), "NoKueueWorkload", 180, process
        )
    finally:
        process.stop()
        print(f"--- operator log ({process.log}) ---\n{process.tail()}")
    assert "failureKind" not in status, status
    message = status["message"]
    expected = f"Kueue created no Workload for training Job {JOB}-train in {WAIT_SECONDS}s: is Kueue installed"
    assert expected in message, message
    assert f"LocalQueue {QUEUE}" in message and f"namespace {namespace}" in message, message
    training = get_json(kubectl, "-n", namespace, "get", "jobs.batch", f"{JOB}-train")
    assert training["spec"]["suspend"] is True  # still waiting: a Kueue started now would admit it
    assert training["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == QUEUE
    if kueue_absent == "crds-without-controller":
        assert not kubectl("-n", namespace, "get", "workloads", "-o", "name").strip()
