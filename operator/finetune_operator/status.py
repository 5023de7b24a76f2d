"""Compose the job's next status from a lifecycle decision (pure).

Only changed fields are returned, so an unchanged job costs no API write, and the training pod's live
`progress`/`metrics` reports are merged into, never overwritten.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from finetune_operator.api import Phase
from finetune_operator.lifecycle import TERMINAL_PHASES, Decision, Observed, merge_conditions

MAX_RECORDED_PODS = 20
_DATASET_KEYS = (
    "sourceFiles",
    "sourceRecords",
    "samples",
    "trainSamples",
    "evalSamples",
    "sha256",
    "redactions",
)
_REJECTED_KEYS = ("malformed", "lowSuccess", "duplicate", "tooLong", "empty")
_METRIC_KEYS = (
    "trainLoss",
    "evalLoss",
    "perplexity",
    "learningRate",
    "tokensPerSecond",
    "evalExactMatch",
    "evalTokenF1",
)


def dataset_status(curation_result: Mapping[str, Any]) -> dict[str, Any] | None:
    dataset = curation_result.get("dataset")
    if not isinstance(dataset, Mapping):
        return None
    out: dict[str, Any] = {k: dataset[k] for k in _DATASET_KEYS if dataset.get(k) is not None}
    rejected = dataset.get("rejected")
    if isinstance(rejected, Mapping):
        out["rejected"] = {k: int(rejected.get(k) or 0) for k in _REJECTED_KEYS}
    return out


def finite(value: Any) -> float | None:
    """`value` as a float if it is a finite number, else None.

    A diverged run reports NaN or Infinity (Python's json writes and reads them), but they are not JSON: the API
    server would refuse the whole status patch or ModelVersion, and the job would never leave its phase.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def final_metrics(training_result: Mapping[str, Any]) -> dict[str, float]:
    metrics = training_result.get("metrics")
    if not isinstance(metrics, Mapping):
        return {}
    values = {k: finite(metrics.get(k)) for k in _METRIC_KEYS}
    return {k: v for k, v in values.items() if v is not None}


def next_status(
    current: Mapping[str, Any],
    decision: Decision,
    observed: Observed,
    *,
    generation: int | None,
    now: str,
    model: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The status fields that differ from `current`; empty when nothing changed."""
    phase = decision.phase
    desired: dict[str, Any] = {
        "phase": phase.value,
        "observedGeneration": generation,
    }
    terminal_before = current.get("phase") in {p.value for p in TERMINAL_PHASES}
    if not terminal_before:
        desired["reason"] = decision.reason
        desired["message"] = decision.message
        desired["failureKind"] = decision.failure_kind.value if decision.failure_kind else None
        conditions = merge_conditions(current.get("conditions"), decision, now, generation)
        if _conditions_differ(current.get("conditions"), conditions):
            desired["conditions"] = conditions
    if phase in (Phase.RUNNING, Phase.EVALUATING, Phase.COMPLETED) and not current.get("startTime"):
        desired["startTime"] = now
    if phase in TERMINAL_PHASES and not current.get("completionTime"):
        desired["completionTime"] = now
    # Evicted pods vanish (and the Job does not count them as failures), so every training pod name seen is
    # remembered: a name not seen before is a new attempt, even when its predecessor is already gone.
    previous = int(current.get("attempts") or 0)
    recorded = list(current.get("trainingPods") or [])
    new_pods = [name for name in observed.training.pod_names if name not in recorded]
    attempts = max(previous, observed.training.attempts, previous + len(new_pods))
    if attempts:
        desired["attempts"] = attempts
    if new_pods:
        desired["trainingPods"] = (recorded + new_pods)[-MAX_RECORDED_PODS:]
    dataset = dataset_status(observed.curation.result)
    if dataset:
        desired["dataset"] = dataset
    metrics = final_metrics(observed.training.result)
    if metrics:
        desired["metrics"] = {**(current.get("metrics") or {}), **metrics}
        progress = dict(current.get("progress") or {})
        reported = observed.training.result.get("progress")
        if isinstance(reported, Mapping):
            progress.update({k: v for k, v in reported.items() if k in ("step", "totalSteps", "epoch")})
        progress.update({"percent": 100, "stage": "Done"})
        desired["progress"] = progress
    checkpoint = observed.training.result.get("checkpoint")
    if isinstance(checkpoint, Mapping):
        desired["checkpoint"] = dict(checkpoint)
    if model:
        desired["model"] = dict(model)
    return {k: v for k, v in desired.items() if current.get(k) != v}


def _conditions_differ(before: Any, after: list[dict[str, Any]]) -> bool:
    if not isinstance(before, list):
        return True
    return [dict(c) for c in before] != after
