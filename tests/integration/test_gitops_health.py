"""GitOps health of live FineTuningJobs in every phase, as Flux (kstatus) and Argo CD (its Lua check) read it.

One job is driven to each phase on the local control plane (KWOK pods follow `spec.podMetadata` annotations),
then every job is read back as the API server serves it and judged by the real kstatus library and the real
Argo CD Lua health check: a Flux `wait` must finish as soon as a job is Completed and fail as soon as it is
Failed, instead of waiting out its timeout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from gitops_health import REPO, argocd_health, gitops_crds, kstatus
from kwok_jobs import EXIT_CODE, apply, get_json, gpu_job, phase_is, reason_is, sessions_config_map, wait_status
from operator_harness import OperatorProcess

import localcluster
import strictyaml

pytestmark = pytest.mark.integration

Kubectl = Callable[..., str]
GITOPS = REPO / "manifests" / "gitops"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
FLUX_AND_ARGOCD_CRDS = (
    "kustomizations.kustomize.toolkit.fluxcd.io",
    "applications.argoproj.io",
    "appprojects.argoproj.io",
)
FAILED_RESULT = {"outcome": "Failed", "reason": "CurationFailed", "message": "no session passed the filter"}

# phase -> (kstatus status, Argo CD health status)
EXPECTED = {
    "Pending": ("InProgress", "Progressing"),
    "Queued": ("InProgress", "Progressing"),
    "Running": ("InProgress", "Progressing"),
    "Evaluating": ("InProgress", "Progressing"),
    "Completed": ("Current", "Healthy"),
    "Failed": ("Failed", "Degraded"),
    "Cancelled": ("Failed", "Suspended"),
}


def patch(kubectl: Kubectl, namespace: str, name: str, body: dict[str, Any], *subresource: str) -> None:
    kubectl("-n", namespace, "patch", "ftj", name, *subresource, "--type=merge", "-p", json.dumps(body))


def failing_job(name: str) -> dict[str, Any]:
    """Its curation exits 10 (CurationFailed) with the trainer image's failure result as termination message."""
    body = gpu_job(name, message=FAILED_RESULT, run_for="1s", gpus=1)
    body["spec"]["podMetadata"]["annotations"][EXIT_CODE] = "10"
    return body


class Judge:
    """Reads a job the moment it is in a phase and records what kstatus and Argo CD make of that live object."""

    def __init__(self, kubectl: Kubectl, namespace: str, operator: OperatorProcess) -> None:
        self.kubectl, self.namespace, self.operator = kubectl, namespace, operator
        self.seen: dict[str, tuple[dict[str, Any], dict[str, str], dict[str, str]]] = {}

    def when(self, name: str, accept: Callable[[dict[str, Any]], bool], what: str) -> None:
        wait_status(self.kubectl, self.namespace, name, accept, what, 120.0, self.operator)
        job = get_json(self.kubectl, "-n", self.namespace, "get", "ftj", name)
        assert accept(job["status"]), job["status"]  # still there when read whole
        self.seen[job["status"]["phase"]] = (job, kstatus(json.dumps(job))[name], argocd_health(job))


def test_kstatus_and_argocd_read_every_live_phase(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    apply(
        kubectl,
        namespace,
        sessions_config_map(),
        gpu_job("pending", source="not-there", gpus=1),
        # Without Kueue in the cluster, nothing admits the suspended training Job.
        gpu_job("queued", queueName="no-kueue-here", run_for="1s", gpus=1),
        # Curation and training pods each run 30 s: time to see it train, then evaluate.
        gpu_job("trains", run_for="30s", gpus=1),
        gpu_job("completes", run_for="1s", gpus=1),
        failing_job("fails"),
        gpu_job("cancelled", run_for="1h", gpus=1),
    )
    judge = Judge(kubectl, namespace, operator_process)
    judge.when("pending", reason_is("Pending", "SourceNotFound"), "Pending")
    judge.when("queued", phase_is("Queued"), "Queued")
    judge.when("completes", phase_is("Completed"), "Completed")
    judge.when("fails", phase_is("Failed"), "Failed")
    judge.when("trains", reason_is("Running", "Training"), "Training")
    # What the trainer reports when it starts evaluating (status subresource, merge patch).
    patch(kubectl, namespace, "trains", {"status": {"progress": {"stage": "Evaluating"}}}, "--subresource=status")
    judge.when("trains", phase_is("Evaluating"), "Evaluating")
    patch(kubectl, namespace, "cancelled", {"spec": {"cancel": True}})
    judge.when("cancelled", phase_is("Cancelled"), "Cancelled")

    assert {phase: (k["status"], a["status"]) for phase, (_, k, a) in judge.seen.items()} == EXPECTED
    for phase, (job, verdict, health) in judge.seen.items():
        status = job["status"]
        assert status["observedGeneration"] == job["metadata"]["generation"], phase
        assert {c["observedGeneration"] for c in status["conditions"]} == {job["metadata"]["generation"]}, phase
        assert health["message"] == f"{phase}: {status['message']}"
        if verdict["status"] != "Current":
            # Flux shows kstatus' message: the operator's own, e.g. why a job failed.
            assert verdict["message"] == status["message"], phase
    failed = judge.seen["Failed"][0]["status"]
    assert (failed["reason"], failed["message"]) == ("CurationFailed", FAILED_RESULT["message"])
    stalled = {c["type"]: c for c in failed["conditions"]}["Stalled"]
    assert (stalled["status"], stalled["reason"], stalled["message"]) == ("True", "CurationFailed", failed["message"])


def test_a_spec_change_reads_in_progress_until_the_operator_observes_it(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    apply(kubectl, namespace, sessions_config_map(), gpu_job("edited", run_for="1h", gpus=1))
    wait_status(kubectl, namespace, "edited", phase_is("Running"), "Running", 120.0, operator_process)
    operator_process.stop()
    patch(kubectl, namespace, "edited", {"spec": {"cancel": True}})
    job = get_json(kubectl, "-n", namespace, "get", "ftj", "edited")
    assert job["status"]["observedGeneration"] < job["metadata"]["generation"]
    assert kstatus(json.dumps(job))["edited"]["status"] == "InProgress"

    operator_process.start()
    job = wait_status(kubectl, namespace, "edited", phase_is("Cancelled"), "Cancelled", 120.0, operator_process)
    fresh = get_json(kubectl, "-n", namespace, "get", "ftj", "edited")
    assert fresh["status"]["observedGeneration"] == fresh["metadata"]["generation"]
    assert kstatus(json.dumps(fresh))["edited"]["status"] == "Failed"


def test_the_documented_flux_and_argocd_examples_pass_a_server_side_dry_run(
    cluster: localcluster.ClusterInfo, kubectl: Kubectl, crds: Any
) -> None:
    for crd in sorted(gitops_crds().glob("*.yaml")):
        kubectl("apply", "--server-side", "-f", str(crd))
    localcluster.wait_established(cluster.kubeconfig, FLUX_AND_ARGOCD_CRDS)
    for namespace in ("flux-system", "argocd"):
        kubectl(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        )
    # Strict field validation: a misspelt or unknown field fails, as it would on a real cluster.
    for example in ("flux-kustomizations.yaml", "argocd-application.yaml", "argocd-cm-patch.yaml"):
        kubectl("apply", "--server-side", "--dry-run=server", "--validate=strict", "-f", str(GITOPS / example))

    # The Argo CD overlay is the production overlay with every CRD, and nothing else, in sync wave -1.
    rendered = [o for o in strictyaml.load_all(kubectl("kustomize", str(GITOPS / "argocd"))) if o]
    production_overlay = str(REPO / "manifests/overlays/production")
    production = [o for o in strictyaml.load_all(kubectl("kustomize", production_overlay)) if o]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in rendered) == sorted(
        (o["kind"], o["metadata"]["name"]) for o in production
    )
    waves = {(o["kind"], o["metadata"]["name"]): o["metadata"].get("annotations", {}).get(SYNC_WAVE) for o in rendered}
    assert {k: w for k, w in waves.items() if k[0] == "CustomResourceDefinition"} == {
        k: "-1" for k in waves if k[0] == "CustomResourceDefinition"
    }
    assert {w for k, w in waves.items() if k[0] != "CustomResourceDefinition"} == {None}
    definitions = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [o for o in rendered if o["kind"] == "CustomResourceDefinition"],
    }
    kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-", stdin=json.dumps(definitions))
