"""The gate against the champion, with real training on the real control plane (issue: model registry).

A first job registers 0.0.1 and promotes it to `champion`. Then, on the same sessions, a job trained worse on
purpose (one epoch at a learning rate that barely moves the weights) fails RegressedAgainstChampion with both
losses in its status, and a job trained longer passes the same gate and moves the alias.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from operator_harness import OperatorProcess, wait_phase
from trained import quickstart, setup

from support.fixtures import Kubectl

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GATE = {"compareTo": {"alias": "champion"}}


def gated(name: str, epochs: int, learning_rate: float | None = None, **spec: Any) -> dict[str, Any]:
    body = quickstart(name, epochs)
    if learning_rate is not None:
        body["spec"]["training"]["learningRate"] = learning_rate
    body["spec"]["output"] = {"modelName": "gated", "promoteTo": "champion"}
    # One CPU each: the local runner has two, so the last two jobs train side by side.
    body["spec"]["resources"]["cpu"] = "1"
    body["spec"].update(spec)
    return body


def apply(kubectl: Kubectl, namespace: str, *jobs: dict[str, Any]) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump_all(jobs))


def champion(kubectl: Kubectl, namespace: str) -> str:
    return kubectl("-n", namespace, "get", "rm", "gated", "-o", "jsonpath={.spec.aliases.champion}")


@pytest.mark.timeout(2400)  # three real trainings, the first one alone
def test_a_worse_model_fails_against_the_champion_and_a_better_one_replaces_it(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess
) -> None:
    # The model's first job: no champion yet, so its gate is skipped; it registers 0.0.1 and becomes champion.
    setup(kubectl, namespace, gated("first", epochs=2, evaluation=GATE))
    first = wait_phase(kubectl, namespace, "first", ("Completed", "Failed"), timeout=900, operator=operator_process)
    assert first["status"]["phase"] == "Completed", first["status"]
    assert "championEvalLoss" not in first["status"]["metrics"]
    assert champion(kubectl, namespace) == "0.0.1"

    apply(
        kubectl,
        namespace,
        gated("worse", epochs=1, learning_rate=1e-7, evaluation=GATE),
        gated("better", epochs=4, evaluation=GATE),
    )
    worse = wait_phase(kubectl, namespace, "worse", ("Completed", "Failed"), timeout=900, operator=operator_process)
    better = wait_phase(kubectl, namespace, "better", ("Completed", "Failed"), timeout=900, operator=operator_process)

    status = worse["status"]
    assert (status["phase"], status["reason"], status["failureKind"]) == ("Failed", "RegressedAgainstChampion", "User")
    assert "than gated 0.0.1 (alias champion)" in status["message"], status["message"]
    metrics = status["metrics"]
    assert metrics["candidateEvalLoss"] > metrics["championEvalLoss"] > 0, metrics
    assert kubectl("-n", namespace, "get", "mv", "-l", "finetune.dev/job=worse", "-o", "name") == ""

    status = better["status"]
    assert status["phase"] == "Completed", status
    metrics = status["metrics"]
    assert metrics["candidateEvalLoss"] <= metrics["championEvalLoss"], metrics
    mv = json.loads(kubectl("-n", namespace, "get", "mv", status["model"]["modelVersion"], "-o", "json"))["spec"]
    assert mv["comparedTo"] == {"model": "gated", "alias": "champion", "version": "0.0.1", "maxRegression": 0.0}
    assert mv["metrics"]["championEvalLoss"] == pytest.approx(metrics["championEvalLoss"])
    assert champion(kubectl, namespace) == mv["version"] == "0.0.2"
