"""Where a job's tracking run is, as the operator passes it on: the training pod's termination message ->
status.tracking (the ModelVersion's spec.tracking: test_registry), and the TrackingDegraded Warning."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from finetune_operator.api import FineTuningJobStatus, Phase
from finetune_operator.api.termination import TerminationMessage
from finetune_operator.api.tracking import DEGRADED_LIMIT, TrackedRun
from finetune_operator.lifecycle import Decision, Observed, WorkloadPhase, WorkloadState
from finetune_operator.status import next_status, tracking_degraded

TRAINING_RESULT = {
    "outcome": "Succeeded",
    "metrics": {"trainLoss": 1.9, "evalLoss": 2.0},
    "model": {"path": "model", "format": "safetensors", "adapter": True, "merged": False},
}
RUN = {
    "runId": "5f0c0b2e8c8f4a7c9f1d2e3a4b5c6d7e",
    "experimentId": "3",
    "url": "https://mlflow.ml.example/#/experiments/3/runs/5f0c0b2e8c8f4a7c9f1d2e3a4b5c6d7e",
}
CURATED = WorkloadState(
    WorkloadPhase.SUCCEEDED, result=TerminationMessage.parse(json.dumps({"outcome": "Succeeded"})), attempts=1
)


def completed_patch(tracking: dict[str, Any]) -> dict[str, Any]:
    result = TerminationMessage.parse(json.dumps({**TRAINING_RESULT, "tracking": tracking}))
    observed = Observed(
        phase=Phase.EVALUATING,
        curation=CURATED,
        training=WorkloadState(WorkloadPhase.SUCCEEDED, result=result),
        model_registered=True,
    )
    decision = Decision(Phase.COMPLETED, "ModelRegistered", "evaluation passed; model registered", dataset_ready=True)
    return next_status({"phase": "Evaluating"}, decision, observed, generation=1, now="2026-12-03T14:00:00Z")


def test_the_run_reference_reaches_the_status_and_posts_no_warning() -> None:
    patch = completed_patch({"mlflow": RUN})
    assert patch["tracking"] == {"mlflow": RUN}
    FineTuningJobStatus.model_validate(patch)
    assert tracking_degraded(patch) is None


def test_a_tracking_error_reaches_the_status_and_becomes_one_warning() -> None:
    degraded = "mlflow: logging metrics failed: POST http://127.0.0.1:5000/api/2.0/mlflow/runs/log-batch: refused"
    patch = completed_patch({"mlflow": {**RUN, "degraded": degraded, "unsentSteps": 40}})
    assert patch["tracking"]["mlflow"]["unsentSteps"] == 40
    message = tracking_degraded(patch)
    assert message == f"experiment tracking degraded, the job went on: {degraded}"
    # A later reconciliation writes no tracking again, so it posts nothing again.
    assert tracking_degraded({"phase": "Completed"}) is None


def test_a_degraded_note_longer_than_the_status_bound_is_refused() -> None:
    TrackedRun.model_validate({"degraded": "x" * DEGRADED_LIMIT})
    with pytest.raises(ValidationError):
        TrackedRun.model_validate({"degraded": "x" * (DEGRADED_LIMIT + 1)})
