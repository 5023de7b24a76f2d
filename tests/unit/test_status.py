"""Status composition (finetune_operator.status): only changed fields, idempotence, dataset counts, final
metrics over live ones, condition timestamps, terminal phases, completion time.

Each test applies the returned patch the way the API server applies a JSON merge patch to the status, so the
second reconciliation sees exactly what the first one wrote.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from typing import Any

import pytest

from finetune_operator.api import FailureKind, FineTuningJobStatus, Phase
from finetune_operator.api.termination import TerminationMessage
from finetune_operator.lifecycle import derive
from finetune_operator.observation import Decision, Observed, StorageState, WorkloadPhase, WorkloadState
from finetune_operator.status import dataset_status, final_metrics, next_status


def tm(message: Mapping[str, Any]) -> TerminationMessage:
    """A termination message as the operator reads it."""
    return TerminationMessage.parse(json.dumps(message))


Obj = dict[str, Any]

T1 = "2026-11-23T16:00:00Z"
T2 = "2026-11-23T16:05:00Z"
T3 = "2026-11-23T16:10:00Z"
T4 = "2026-11-23T16:15:00Z"

CURATION_RESULT: Obj = {
    "outcome": "Succeeded",
    "dataset": {
        "sourceFiles": 2,
        "sourceRecords": 1200,
        "samples": 950,
        "trainSamples": 902,
        "evalSamples": 48,
        "sha256": "a" * 64,
        "rejected": {"malformed": 20, "lowSuccess": 200, "duplicate": 25, "tooLong": 5},
        "redactions": 17,
        "unknownFutureField": 1,
    },
}
TRAINING_RESULT: Obj = {
    "outcome": "Succeeded",
    "metrics": {
        "trainLoss": 1.9,
        "evalLoss": 2,
        "perplexity": 7.39,
        "tokensPerSecond": 5400.0,
        "evalExactMatch": 0.1,
        "evalTokenF1": 0.4,
        "gpuMemory": 12.0,  # not a status metric
        "learningRate": "n/a",  # not a number: ignored
    },
    "progress": {"step": 120, "totalSteps": 120, "epoch": 3.0, "bogus": 1},
    "model": {"path": "model", "format": "safetensors", "adapter": True, "merged": False},
}
CURATED = WorkloadState(WorkloadPhase.SUCCEEDED, result=tm(CURATION_RESULT), attempts=1)
TRAINED = WorkloadState(WorkloadPhase.SUCCEEDED, result=tm(TRAINING_RESULT), attempts=2)


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> Obj:
    """RFC 7386 JSON merge patch, as the API server applies application/merge-patch+json."""
    out = copy.deepcopy(dict(target))
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def running_decision() -> Decision:
    return Decision(Phase.RUNNING, "Training", "training", training_active=True, dataset_ready=True)


# ------------------------------------------------------------------------------------ pure helpers


def test_dataset_status_from_a_curation_result() -> None:
    assert dataset_status(tm(CURATION_RESULT)) == {
        "sourceFiles": 2,
        "sourceRecords": 1200,
        "samples": 950,
        "trainSamples": 902,
        "evalSamples": 48,
        "sha256": "a" * 64,
        "redactions": 17,
        "rejected": {"malformed": 20, "lowSuccess": 200, "duplicate": 25, "tooLong": 5, "empty": 0},
    }


@pytest.mark.parametrize("result", [{}, {"outcome": "Failed", "reason": "X"}, {"dataset": "not a map"}])
def test_dataset_status_without_a_dataset(result: Obj) -> None:
    assert dataset_status(tm(result)) is None


def test_final_metrics_keeps_known_numeric_metrics_as_floats() -> None:
    metrics = final_metrics(tm(TRAINING_RESULT))
    assert metrics == {
        "trainLoss": 1.9,
        "evalLoss": 2.0,
        "perplexity": 7.39,
        "tokensPerSecond": 5400.0,
        "evalExactMatch": 0.1,
        "evalTokenF1": 0.4,
    }
    assert all(type(v) is float for v in metrics.values())
    assert final_metrics(tm({})) == {}
    assert final_metrics(tm({"metrics": [1, 2]})) == {}


def test_final_metrics_drops_values_json_cannot_carry() -> None:
    # A diverged run reports NaN (Python's json writes and reads it), but NaN and Infinity are not JSON: the API
    # server would refuse the whole status patch and the job would never leave its phase.
    result = {"metrics": {"trainLoss": math.nan, "evalLoss": math.inf, "perplexity": -math.inf, "evalTokenF1": 0.2}}
    assert final_metrics(tm(result)) == {"evalTokenF1": 0.2}


# ------------------------------------------------------------------------------------ next_status


def test_first_reconcile_writes_phase_reason_conditions() -> None:
    decision = Decision(Phase.PENDING, "Creating", "creating the workspace and configuration")
    patch = next_status({}, decision, Observed(), generation=1, now=T1)
    assert patch["phase"] == "Pending"
    assert patch["reason"] == "Creating"
    assert patch["message"] == "creating the workspace and configuration"
    assert patch["observedGeneration"] == 1
    assert "failureKind" not in patch  # None equals the absent field: nothing to write
    assert {c["type"] for c in patch["conditions"]} == {
        "Ready",
        "Reconciling",
        "Stalled",
        "DatasetReady",
        "Queued",
        "Running",
        "Training",
        "Evaluating",
        "Succeeded",
        "Failed",
    }
    assert all(c["lastTransitionTime"] == T1 for c in patch["conditions"])
    for absent in ("startTime", "completionTime", "attempts", "dataset", "metrics", "progress", "model"):
        assert absent not in patch
    # The patch is a valid status.
    FineTuningJobStatus.model_validate(patch)


def test_a_failure_message_and_reason_of_any_length_fit_the_crd_bounds() -> None:
    """The trainer's reason and message (and the operator's text around them) are cut to the status schema's
    bounds: a patch over them is refused by the API server and the job would never reach Failed."""
    long_failure = {"outcome": "Failed", "reason": "R" * 5000, "message": "m" * 5000}
    training = WorkloadState(WorkloadPhase.FAILED, result=tm(long_failure), exit_code=20)
    observed = Observed(phase=Phase.RUNNING, storage=StorageState.BOUND, curation=CURATED, training=training)
    patch = next_status({}, derive(observed), observed, generation=1, now=T1)
    assert patch["phase"] == "Failed"
    assert len(patch["reason"]) == 256 and len(patch["message"]) == 4096
    assert all(len(c["message"]) <= 1024 and len(c["reason"]) <= 256 for c in patch["conditions"])
    FineTuningJobStatus.model_validate(patch)


def test_returns_only_changed_fields_and_nothing_the_second_time() -> None:
    observed = Observed(phase=Phase.RUNNING, curation=CURATED, training=WorkloadState(WorkloadPhase.RUNNING))
    decision = running_decision()
    first = next_status({}, decision, observed, generation=3, now=T1)
    status = merge_patch({}, first)
    assert next_status(status, decision, observed, generation=3, now=T2) == {}
    # A new generation changes only observedGeneration (and the conditions that carry it).
    third = next_status(status, decision, observed, generation=4, now=T3)
    assert set(third) == {"observedGeneration", "conditions"}
    assert third["observedGeneration"] == 4
    assert all(c["lastTransitionTime"] == T1 for c in third["conditions"])


def test_unchanged_fields_are_left_out() -> None:
    observed = Observed(phase=Phase.RUNNING, curation=CURATED)
    status = merge_patch({}, next_status({}, running_decision(), observed, generation=1, now=T1))
    queued = Decision(Phase.QUEUED, "WaitingForCapacity", "waiting for 1 nvidia.com/gpu", dataset_ready=True)
    patch = next_status(status, queued, observed, generation=1, now=T2)
    assert set(patch) == {"phase", "reason", "message", "conditions"}


def test_dataset_counts_from_the_curation_result() -> None:
    observed = Observed(phase=Phase.RUNNING, curation=CURATED)
    patch = next_status({}, running_decision(), observed, generation=1, now=T1)
    assert patch["dataset"] == dataset_status(tm(CURATION_RESULT))
    assert patch["dataset"]["rejected"]["lowSuccess"] == 200
    assert patch["dataset"]["samples"] == 950
    FineTuningJobStatus.model_validate(patch)


def test_attempts_never_go_down() -> None:
    observed = Observed(phase=Phase.RUNNING, training=WorkloadState(WorkloadPhase.RUNNING, attempts=1))
    assert next_status({"attempts": 3}, running_decision(), observed, generation=1, now=T1).get("attempts") is None
    observed = Observed(phase=Phase.RUNNING, training=WorkloadState(WorkloadPhase.RUNNING, attempts=4))
    assert next_status({"attempts": 3}, running_decision(), observed, generation=1, now=T1)["attempts"] == 4


def test_final_metrics_merge_over_live_ones() -> None:
    live = {
        "phase": "Evaluating",
        "metrics": {"trainLoss": 2.3, "learningRate": 0.0002, "tokensPerSecond": 5100.0},
        "progress": {"stage": "Evaluating", "step": 118, "totalSteps": 120, "epoch": 2.9, "percent": 98},
    }
    observed = Observed(phase=Phase.EVALUATING, curation=CURATED, training=TRAINED)
    decision = Decision(
        Phase.EVALUATING, "Registering", "evaluation passed; registering the model version", dataset_ready=True
    )
    patch = next_status(live, decision, observed, generation=1, now=T2)
    assert patch["metrics"] == {
        "trainLoss": 1.9,  # final replaces live
        "learningRate": 0.0002,  # live only: kept
        "tokensPerSecond": 5400.0,
        "evalLoss": 2.0,
        "perplexity": 7.39,
        "evalExactMatch": 0.1,
        "evalTokenF1": 0.4,
    }
    assert patch["progress"] == {
        "stage": "Done",
        "step": 120,
        "totalSteps": 120,
        "epoch": 3.0,
        "percent": 100,
    }
    assert patch["attempts"] == 2
    status = merge_patch(live, patch)
    assert next_status(status, decision, observed, generation=1, now=T3) == {}


def test_live_progress_is_not_overwritten_while_training() -> None:
    live = {"phase": "Running", "progress": {"stage": "Training", "step": 40}, "metrics": {"trainLoss": 2.3}}
    observed = Observed(phase=Phase.RUNNING, curation=CURATED, training=WorkloadState(WorkloadPhase.RUNNING))
    patch = next_status(live, running_decision(), observed, generation=1, now=T1)
    assert "progress" not in patch
    assert "metrics" not in patch


def test_checkpoint_and_model_are_written_once() -> None:
    result = {**TRAINING_RESULT, "checkpoint": {"path": "checkpoints/checkpoint-120", "step": 120}}
    observed = Observed(
        phase=Phase.EVALUATING,
        curation=CURATED,
        training=WorkloadState(WorkloadPhase.SUCCEEDED, result=tm(result)),
        model_registered=True,
    )
    decision = Decision(Phase.COMPLETED, "ModelRegistered", "evaluation passed; model registered", dataset_ready=True)
    model = {"name": "support-bot", "version": "0.0.1", "modelVersion": "support-bot-v0.0.1", "uri": "pvc://w/model"}
    patch = next_status({"phase": "Evaluating"}, decision, observed, generation=1, now=T1, model=model)
    assert patch["checkpoint"] == {"path": "checkpoints/checkpoint-120", "step": 120}
    assert patch["model"] == model
    FineTuningJobStatus.model_validate(patch)
    status = merge_patch({"phase": "Evaluating"}, patch)
    assert next_status(status, decision, observed, generation=1, now=T2, model=model) == {}


def condition(conditions: list[Obj], ctype: str) -> Obj:
    (found,) = [c for c in conditions if c["type"] == ctype]
    return found


def test_last_transition_time_moves_only_on_flips() -> None:
    observed = Observed(curation=CURATED)
    status: Obj = {}
    steps = [
        (T1, Decision(Phase.RUNNING, "TrainingStarting", "creating the training workload", dataset_ready=True)),
        (T2, Decision(Phase.RUNNING, "Training", "training", training_active=True, dataset_ready=True)),
        (T3, Decision(Phase.QUEUED, "WaitingForCapacity", "preempted", dataset_ready=True)),
    ]
    history: list[list[Obj]] = []
    for now, decision in steps:
        status = merge_patch(status, next_status(status, decision, observed, generation=1, now=now))
        history.append(copy.deepcopy(status["conditions"]))
    first, second, third = history
    # Running stays True from T1 to T2: its time stays, although its reason changed.
    assert condition(first, "Running")["lastTransitionTime"] == T1
    assert condition(second, "Running") == {**condition(first, "Running"), "reason": "Training", "message": "training"}
    # Training flips to True at T2 and back to False at T3.
    assert condition(first, "Training")["status"] == "False"
    assert condition(second, "Training")["status"] == "True"
    assert condition(second, "Training")["lastTransitionTime"] == T2
    assert condition(third, "Training")["status"] == "False"
    assert condition(third, "Training")["lastTransitionTime"] == T3
    # Running -> Queued: both flip at T3; DatasetReady never flips.
    assert condition(third, "Running")["lastTransitionTime"] == T3
    assert condition(third, "Queued")["status"] == "True"
    assert condition(third, "Queued")["lastTransitionTime"] == T3
    assert condition(third, "DatasetReady")["lastTransitionTime"] == T1
    assert condition(third, "Failed")["lastTransitionTime"] == T1


def test_start_time_is_set_once_on_the_first_active_phase() -> None:
    observed = Observed(curation=CURATED)
    pending = Decision(Phase.PENDING, "CurationStarting", "starting curation")
    assert "startTime" not in next_status({}, pending, observed, generation=1, now=T1)
    queued = Decision(Phase.QUEUED, "WaitingForAdmission", "waiting for Kueue admission", dataset_ready=True)
    assert "startTime" not in next_status({}, queued, observed, generation=1, now=T1)
    assert next_status({}, running_decision(), observed, generation=1, now=T2)["startTime"] == T2
    assert "startTime" not in next_status({"startTime": T1}, running_decision(), observed, generation=1, now=T3)


def fail(now: str, status: Obj) -> Obj:
    observed = Observed(phase=Phase(status["phase"]) if status.get("phase") else None, curation=CURATED)
    decision = Decision(
        Phase.FAILED,
        "OOMKilled",
        "the container ran out of memory: raise resources.memory or lower training.batchSize",
        FailureKind.USER,
        dataset_ready=True,
    )
    return next_status(status, decision, observed, generation=1, now=now)


def test_terminal_phase_keeps_reason_message_and_completion_time() -> None:
    running = merge_patch({}, next_status({}, running_decision(), Observed(curation=CURATED), generation=1, now=T1))
    patch = fail(T2, running)
    assert patch["phase"] == "Failed"
    assert patch["reason"] == "OOMKilled"
    assert patch["failureKind"] == "User"
    assert patch["completionTime"] == T2
    assert condition(patch["conditions"], "Failed")["status"] == "True"
    failed = merge_patch(running, patch)
    # Later reconciliations of the terminal job derive an empty reason: nothing is rewritten.
    observed = Observed(phase=Phase.FAILED, curation=CURATED)
    decision = derive(observed)
    assert decision.phase is Phase.FAILED
    assert decision.reason == ""
    assert next_status(failed, decision, observed, generation=1, now=T3) == {}
    # A new generation (a spec edit after the end) is observed: the conditions carry it, nothing else moves.
    edited = next_status(failed, decision, observed, generation=2, now=T4)
    assert set(edited) == {"observedGeneration", "conditions"}
    assert edited["conditions"] == [{**c, "observedGeneration": 2} for c in failed["conditions"]]


def test_failed_and_cancelled_jobs_are_stalled_with_their_reason_and_message() -> None:
    running = merge_patch({}, next_status({}, running_decision(), Observed(curation=CURATED), generation=1, now=T1))
    failed = merge_patch(running, fail(T2, running))
    stalled = condition(failed["conditions"], "Stalled")
    assert (stalled["status"], stalled["reason"], stalled["message"]) == ("True", "OOMKilled", failed["message"])
    assert condition(failed["conditions"], "Reconciling")["status"] == "False"
    assert condition(running["conditions"], "Reconciling")["status"] == "True"
    cancelled = Decision(Phase.CANCELLED, "Cancelled", "spec.cancel is true")
    patch = next_status(running, cancelled, Observed(), generation=2, now=T3)
    assert condition(patch["conditions"], "Stalled")["reason"] == "Cancelled"
    assert condition(patch["conditions"], "Ready")["status"] == "False"


def test_a_job_that_ended_under_an_older_operator_gets_reconciling_and_stalled() -> None:
    # Written before kstatus conditions existed: kstatus would read this Failed job as InProgress forever.
    legacy_types = ("Ready", "DatasetReady", "Queued", "Running", "Training", "Evaluating", "Succeeded", "Failed")
    legacy = {
        "phase": "Failed",
        "reason": "OOMKilled",
        "message": "the container ran out of memory",
        "observedGeneration": 1,
        "conditions": [
            {"type": t, "status": "True" if t in ("Failed", "DatasetReady") else "False", "reason": "OOMKilled",
             "message": "", "lastTransitionTime": T1, "observedGeneration": 1}
            for t in legacy_types
        ],
    }  # fmt: skip
    observed = Observed(phase=Phase.FAILED, curation=CURATED)
    patch = next_status(legacy, derive(observed), observed, generation=1, now=T2)
    assert not {"phase", "reason", "message", "observedGeneration"} & set(patch)
    stalled = condition(patch["conditions"], "Stalled")
    assert (stalled["status"], stalled["reason"], stalled["message"]) == ("True", "OOMKilled", legacy["message"])
    assert stalled["lastTransitionTime"] == T2
    assert condition(patch["conditions"], "Reconciling")["status"] == "False"
    assert condition(patch["conditions"], "DatasetReady")["status"] == "True"
    assert condition(patch["conditions"], "Failed")["lastTransitionTime"] == T1


def test_completion_time_is_set_once() -> None:
    status = {"phase": "Running", "completionTime": T1}
    assert "completionTime" not in fail(T2, status)
    cancelled = Decision(Phase.CANCELLED, "Cancelled", "spec.cancel is true")
    assert next_status({"phase": "Queued"}, cancelled, Observed(), generation=1, now=T3)["completionTime"] == T3
    completed = Decision(Phase.COMPLETED, "ModelRegistered", "registered", dataset_ready=True)
    patch = next_status({"phase": "Evaluating", "startTime": T1}, completed, Observed(), generation=1, now=T4)
    assert patch["completionTime"] == T4
    assert "startTime" not in patch


def test_does_not_mutate_the_current_status() -> None:
    live = {
        "phase": "Evaluating",
        "metrics": {"trainLoss": 2.3},
        "progress": {"stage": "Evaluating", "step": 100},
        "conditions": [{"type": "Ready", "status": "False", "reason": "Evaluating", "lastTransitionTime": T1}],
    }
    before = copy.deepcopy(live)
    observed = Observed(phase=Phase.EVALUATING, curation=CURATED, training=TRAINED)
    next_status(live, Decision(Phase.EVALUATING, "Registering", "registering"), observed, generation=1, now=T2)
    assert live == before


def test_a_replacement_pod_is_a_new_attempt_even_when_its_predecessor_is_gone() -> None:
    # An evicted pod is deleted and not counted as failed by the Job, so only its name tells it ran.
    first = Observed(
        phase=Phase.RUNNING, training=WorkloadState(WorkloadPhase.RUNNING, attempts=1, attempt_ids=("demo-train-a",))
    )
    patch = next_status({}, running_decision(), first, generation=1, now=T1)
    assert patch["attempts"] == 1 and patch["trainingPods"] == ["demo-train-a"]
    replacement = Observed(
        phase=Phase.RUNNING, training=WorkloadState(WorkloadPhase.RUNNING, attempts=1, attempt_ids=("demo-train-b",))
    )
    patch = next_status({**patch, "phase": "Running"}, running_decision(), replacement, generation=1, now=T1)
    assert patch["attempts"] == 2
    assert patch["trainingPods"] == ["demo-train-a", "demo-train-b"]
    FineTuningJobStatus.model_validate(patch)
