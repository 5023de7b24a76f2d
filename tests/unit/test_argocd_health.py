"""The Argo CD health check of FineTuningJobs, run in Lua 5.1 (the dialect of Argo CD's gopher-lua)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lupa import lua51

import strictyaml
from finetune_operator.api import Phase

GITOPS = Path(__file__).resolve().parents[2] / "manifests" / "gitops"
SCRIPT = (GITOPS / "argocd-health.lua").read_text()
CM_KEY = "resource.customizations.health.finetune.dev_FineTuningJob"


def health(obj: dict[str, Any]) -> dict[str, str]:
    """Runs the script the way Argo CD does: the resource as the global `obj`, a table returned."""
    lua = lua51.LuaRuntime()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT)
    return {str(k): str(v) for k, v in result.items()}


def job(status: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuningJob",
        "metadata": {"name": "demo", "namespace": "ml"},
        "spec": {"output": {"modelName": "demo"}},
    }
    if status is not None:
        obj["status"] = status
    return obj


EXPECTED = {
    Phase.PENDING: "Progressing",
    Phase.QUEUED: "Progressing",
    Phase.RUNNING: "Progressing",
    Phase.EVALUATING: "Progressing",
    Phase.COMPLETED: "Healthy",
    Phase.FAILED: "Degraded",
    Phase.CANCELLED: "Suspended",
}


@pytest.mark.parametrize("phase", list(Phase), ids=str)
def test_phase_maps_to_health_with_the_status_message(phase: Phase) -> None:
    # Parametrized from the API's enum: a new phase fails here until it is mapped deliberately.
    result = health(job({"phase": phase.value, "reason": "SomeReason", "message": f"the {phase} message"}))
    assert result == {"status": EXPECTED[phase], "message": f"{phase}: the {phase} message"}


def test_failed_job_without_message_reports_its_reason() -> None:
    result = health(job({"phase": "Failed", "reason": "OOMKilled"}))
    assert result == {"status": "Degraded", "message": "Failed: OOMKilled"}


def test_phase_alone_is_the_message() -> None:
    assert health(job({"phase": "Running"})) == {"status": "Progressing", "message": "Running"}


@pytest.mark.parametrize("status", [None, {}, {"progress": {"step": 1}}])
def test_job_without_phase_is_progressing(status: dict[str, Any] | None) -> None:
    result = health(job(status))
    assert result["status"] == "Progressing"
    assert "finetune-operator" in result["message"]


def test_argocd_cm_patch_carries_the_same_script() -> None:
    patch = strictyaml.load((GITOPS / "argocd-cm-patch.yaml").read_text())
    assert (patch["kind"], patch["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert patch["data"] == {CM_KEY: SCRIPT}
