"""Compose the job's next status from a lifecycle decision (pure).

Only changed fields are returned, so an unchanged job costs no API write, and the training pod's live
`progress`/`metrics` reports are merged into, never overwritten.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from finetune_operator.api import Phase
from finetune_operator.api.status import CONDITION_MESSAGE_LIMIT, MAX_RECORDED_PODS, REASON_LIMIT, bounded
from finetune_operator.api.termination import TerminationMessage
from finetune_operator.lifecycle import TERMINAL_PHASES
from finetune_operator.observation import Decision, Observed

_METRIC_KEYS = (
    "trainLoss",
    "evalLoss",
    "perplexity",
    "learningRate",
    "tokensPerSecond",
    "evalExactMatch",
    "evalTokenF1",
    "championEvalLoss",
    "candidateEvalLoss",
    "toolCallAccuracy",
    "toolCallArgumentsMatch",
    "toolCallsScored",
)


def dataset_status(curation_result: TerminationMessage) -> dict[str, Any] | None:
    if curation_result.dataset is None:
        return None
    return curation_result.dataset.model_dump(by_alias=True, exclude_none=True, mode="json")


def finite(value: Any) -> float | None:
    """`value` if it is a finite number (an integer stays one), else None.

    A diverged run reports NaN or Infinity (Python's json writes and reads them), but they are not JSON: the API
    server would refuse the whole status patch or ModelVersion, and the job would never leave its phase.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):  # counts stay integers: the CRD types them so
        return value
    return value if math.isfinite(value) else None


def final_metrics(training_result: TerminationMessage) -> dict[str, float]:
    if training_result.metrics is None:
        return {}
    reported = training_result.metrics.model_dump(by_alias=True, exclude_none=True)
    values = {key: finite(reported.get(key)) for key in _METRIC_KEYS}
    return {key: value for key, value in values.items() if value is not None}


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
    if terminal_before:
        # A terminal job's reason and message are final; its conditions only follow the generation.
        conditions = _observed_again(current, generation, now)
    else:
        # Within the CRD's bounds: a status patch the API server refuses would leave the job where it was.
        desired["reason"] = bounded(decision.reason, REASON_LIMIT)
        desired["message"] = bounded(decision.message)
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
    new_pods = [name for name in observed.training.attempt_ids if name not in recorded]
    attempts = max(previous, observed.training.attempts, previous + len(new_pods))
    if attempts:
        desired["attempts"] = attempts
    if new_pods:
        desired["trainingPods"] = (recorded + new_pods)[-MAX_RECORDED_PODS:]
    retried = list(current.get("retriedAttempts") or [])
    if decision.retried_attempt and decision.retried_attempt not in retried:
        desired["retriedAttempts"] = [*retried, decision.retried_attempt]
    dataset = dataset_status(observed.curation.result)
    if dataset:
        desired["dataset"] = dataset
    metrics = final_metrics(observed.training.result)
    if metrics:
        desired["metrics"] = {**(current.get("metrics") or {}), **metrics}
        progress = dict(current.get("progress") or {})
        reported = observed.training.result.progress
        if reported is not None:
            progress.update(
                reported.model_dump(by_alias=True, exclude_none=True, include={"step", "total_steps", "epoch"})
            )
        progress.update({"percent": 100, "stage": "Done"})
        desired["progress"] = progress
    checkpoint = observed.training.result.checkpoint
    if checkpoint is not None:
        desired["checkpoint"] = checkpoint.to_wire()
    tracking = observed.training.result.tracking
    if tracking is not None:
        desired["tracking"] = tracking.to_wire()
    if model:
        desired["model"] = dict(model)
    return {k: v for k, v in desired.items() if current.get(k) != v}


def tracking_degraded(patch: Mapping[str, Any]) -> str | None:
    """The Warning to post when this status patch first reports a tracking error (training went on)."""
    runs = patch.get("tracking") or {}
    errors = [str(run["degraded"]) for run in runs.values() if isinstance(run, Mapping) and run.get("degraded")]
    if not errors:
        return None
    return bounded("experiment tracking degraded, the job went on: " + "; ".join(errors), CONDITION_MESSAGE_LIMIT)


def _observed_again(current: Mapping[str, Any], generation: int | None, now: str) -> list[dict[str, Any]]:
    """A terminal job's conditions at a new generation, computed from its final phase, reason and message.

    Also completes the conditions of a job that ended under an older operator, which wrote no Reconciling or
    Stalled: without them kstatus reads a Failed job as InProgress forever.
    """
    final = Decision(
        Phase(current["phase"]),
        str(current.get("reason") or ""),
        str(current.get("message") or ""),
        dataset_ready=_condition_true(current, "DatasetReady"),
    )
    return merge_conditions(current.get("conditions"), final, now, generation)


def _condition_true(current: Mapping[str, Any], ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True" for c in current.get("conditions") or [])


def _conditions_differ(before: Any, after: list[dict[str, Any]]) -> bool:
    if not isinstance(before, list):
        return True
    return [dict(c) for c in before] != after


# ---------------------------------------------------------------------------------------- conditions


# kstatus (Flux's health checks, `flux ... --wait`, cli-utils) reads `Reconciling` True as InProgress and
# `Stalled` True as Failed before anything else; `Ready` True as Current. Cancelled is Stalled too: a cancelled
# job never becomes Ready, so a pipeline waiting for it must stop at once rather than at its timeout.
_PROGRESSING = frozenset({Phase.PENDING, Phase.QUEUED, Phase.RUNNING, Phase.EVALUATING})
_STALLED = frozenset({Phase.FAILED, Phase.CANCELLED})


def condition_states(decision: Decision) -> dict[str, tuple[bool, str]]:
    """The kstatus-style conditions for a decision: type -> (status, reason)."""
    phase = decision.phase
    return {
        "Ready": (phase is Phase.COMPLETED, decision.reason),
        "Reconciling": (phase in _PROGRESSING, decision.reason),
        "Stalled": (phase in _STALLED, decision.reason),
        "DatasetReady": (decision.dataset_ready, "Curated" if decision.dataset_ready else decision.reason),
        "Queued": (phase is Phase.QUEUED, decision.reason),
        "Running": (phase is Phase.RUNNING, decision.reason),
        "Training": (decision.training_active and phase is Phase.RUNNING, decision.reason),
        "Evaluating": (phase is Phase.EVALUATING, decision.reason),
        "Succeeded": (phase is Phase.COMPLETED, decision.reason),
        "Failed": (phase is Phase.FAILED, decision.reason),
    }


def merge_conditions(
    previous: list[Mapping[str, Any]] | None,
    decision: Decision,
    now: str,
    generation: int | None,
) -> list[dict[str, Any]]:
    """New condition list; lastTransitionTime moves only when a condition's status flips."""
    by_type = {c["type"]: c for c in previous or []}
    merged: list[dict[str, Any]] = []
    for ctype, (value, reason) in condition_states(decision).items():
        status = "True" if value else "False"
        before = by_type.get(ctype)
        changed = before is None or before.get("status") != status
        merged.append(
            {
                "type": ctype,
                "status": status,
                "reason": bounded(reason or "Unknown", REASON_LIMIT),
                "message": bounded(decision.message, CONDITION_MESSAGE_LIMIT) if value else "",
                "lastTransitionTime": now if changed else before.get("lastTransitionTime", now),  # type: ignore[union-attr]
                "observedGeneration": generation,
            }
        )
    return merged
