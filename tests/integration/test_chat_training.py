"""Agent sessions with tool calls, end to end on the real control plane (issue 20).

`messages` sessions from the tool-calling corpus (hack/toolcorpus.py) go through real curation (the format is
decided from the sessions: chat) and real training of tiny-gpt; the held-out tool-call scores reach the job's
status and the ModelVersion. A second job on the same sessions, barely trained (one epoch at a learning rate
that does not move the weights) and gated at minToolCallAccuracy 1.0, fails EvaluationGateFailed with its
figures in the message. Both train side by side on one CPU each, on few sessions for few epochs: this is one
more real training in CI. How well tiny-gpt learns the calls is measured by tests/unit/trainer/test_chat_training.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from operator_harness import OperatorProcess, wait_phase
from test_champion_gate import apply
from trained import quickstart

import toolcorpus
from support.fixtures import Kubectl

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SESSIONS = 60


def chat_job(name: str, epochs: int, learning_rate: float | None = None, **evaluation: float) -> dict[str, Any]:
    body = quickstart(name, epochs)
    if learning_rate is not None:
        body["spec"]["training"]["learningRate"] = learning_rate
    body["spec"]["evaluation"] = {**body["spec"].get("evaluation", {}), **evaluation}
    # One CPU each: the local runner has two, so both jobs train side by side.
    body["spec"]["resources"]["cpu"] = "1"
    body["spec"]["dataset"]["source"]["configMap"]["name"] = "tool-sessions"
    # A conversation with the corpus's tool definitions is ~950 tiny-gpt tokens: the longest get truncated.
    body["spec"]["training"]["maxSeqLength"] = 1024
    body["spec"]["output"] = {"modelName": f"{name}-model"}
    return body


@pytest.mark.timeout(1800)
def test_tool_call_sessions_train_to_scored_models_and_the_gate_names_its_figures(
    kubectl: Kubectl, namespace: str, operator_process: OperatorProcess, tmp_path: Path
) -> None:
    sessions = tmp_path / "sessions.jsonl"
    sessions.write_bytes(b"".join(line + b"\n" for line in toolcorpus.generate(SESSIONS, seed=5, mix=toolcorpus.CLEAN)))
    configmap = kubectl(
        "-n", namespace, "create", "configmap", "tool-sessions",
        f"--from-file=sessions.jsonl={sessions}", "--dry-run=client", "-o", "yaml",
    )  # fmt: skip
    kubectl("-n", namespace, "apply", "-f", "-", stdin=configmap)
    apply(
        kubectl,
        namespace,
        chat_job("agent", epochs=2),
        chat_job("untrained", epochs=1, learning_rate=1e-7, minToolCallAccuracy=1.0),
    )
    agent = wait_phase(kubectl, namespace, "agent", ("Completed", "Failed"), timeout=1200, operator=operator_process)
    untrained = wait_phase(
        kubectl, namespace, "untrained", ("Completed", "Failed"), timeout=600, operator=operator_process
    )

    status = agent["status"]
    assert status["phase"] == "Completed", status
    metrics = status["metrics"]
    assert "unansweredToolCall" in status["dataset"]["rejected"], status["dataset"]  # counted in chat format only
    assert metrics["toolCallsScored"] > 0 and 0 <= metrics["toolCallAccuracy"] <= 1, metrics
    assert 0 <= metrics["toolCallArgumentsMatch"] <= metrics["toolCallAccuracy"], metrics
    mv = kubectl(
        "-n", namespace, "get", "mv", "-l", "finetune.dev/job=agent", "-o", "jsonpath={.items[0].spec.metrics}"
    )
    registered = json.loads(mv)
    for key in ("toolCallAccuracy", "toolCallArgumentsMatch", "toolCallsScored"):
        assert registered[key] == pytest.approx(metrics[key]), (key, registered, metrics)

    failed = untrained["status"]
    assert (failed["phase"], failed["reason"], failed["failureKind"]) == ("Failed", "EvaluationGateFailed", "User")
    assert "< minToolCallAccuracy 1.0 (held-out calls: " in failed["message"], failed["message"]
    assert failed["message"].startswith(f"toolCallAccuracy {failed['metrics']['toolCallAccuracy']:.4f}"), failed
    assert kubectl("-n", namespace, "get", "mv", "-l", "finetune.dev/job=untrained", "-o", "name") == ""
