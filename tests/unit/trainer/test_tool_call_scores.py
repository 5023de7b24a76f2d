"""Tool calls parsed back from generated text and scored against the session's calls; the gates on them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from finetune_operator.api import JobConfig
from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import data, heldout
from finetune_trainer.train.config import Device, TrainConfig, resolve
from finetune_trainer.train.conversation import ToolCall
from finetune_trainer.train.toolcalls import parse_tool_calls, score_tool_calls

from .chatdata import write_chat_dataset
from .conftest import write_dataset, write_job

WEATHER = ToolCall("get_weather", {"city": "Oslo"})
TESTS = ToolCall("run_tests", {"path": "tests/unit"})


@pytest.mark.parametrize(
    ("text", "calls"),
    [
        ('<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call><|im_end|>', [WEATHER]),
        # Qwen2.5: newlines inside the block; two parallel calls.
        (
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
            '<tool_call>\n{"name": "run_tests", "arguments": {"path": "tests/unit"}}\n</tool_call>',
            [WEATHER, TESTS],
        ),
        # Cut off by the token budget: the unclosed last block is still read if its JSON is complete.
        ('<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}', [WEATHER]),
        # Llama 3.1 style: a bare JSON object with "parameters"; arguments written as a JSON string.
        ('{"name": "get_weather", "parameters": {"city": "Oslo"}}<|eot_id|>', [WEATHER]),
        ('{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}', [WEATHER]),
        # Not calls: prose, broken JSON in a block, JSON without a name.
        ("I would call get_weather for Oslo.", []),
        ('<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>', []),
        ('{"city": "Oslo"}', []),
    ],
)
def test_calls_are_parsed_as_templates_render_them(text: str, calls: list[ToolCall]) -> None:
    assert parse_tool_calls(text) == calls


def test_scores_count_names_and_exact_arguments_per_reference_call() -> None:
    scores = score_tool_calls(
        [
            ([WEATHER], [WEATHER]),  # right
            ([ToolCall("get_weather", {"city": "Lima"})], [WEATHER]),  # right name, wrong argument
            ([], [TESTS]),  # no call made
            (
                [TESTS, ToolCall("get_weather", {"city": 1.0})],
                [ToolCall("get_weather", {"city": 1}), TESTS],
            ),  # any order
        ]
    )
    assert (scores.calls, scores.turns) == (5, 4)
    assert scores.name_accuracy == pytest.approx(4 / 5)
    assert scores.arguments_match == pytest.approx(3 / 5)  # 1 == 1.0, as JSON
    assert scores.metrics() == {"toolCallAccuracy": 0.8, "toolCallArgumentsMatch": 0.6, "toolCallsScored": 5}


def test_a_wrong_call_of_the_same_function_does_not_take_the_right_ones_place() -> None:
    lima = ToolCall("get_weather", {"city": "Lima"})
    scores = score_tool_calls([([lima, WEATHER], [WEATHER, WEATHER])])
    assert (scores.name_accuracy, scores.arguments_match) == (1.0, 0.5)
    extra = score_tool_calls([([WEATHER, WEATHER, TESTS], [WEATHER])])  # extra calls earn nothing
    assert (extra.name_accuracy, extra.arguments_match) == (1.0, 1.0)


def test_no_turns_score_zero() -> None:
    assert score_tool_calls([]).calls == 0


def config(tmp_path: Path, **evaluation: float) -> TrainConfig:
    job = JobConfig.load(write_job(tmp_path, {"epochs": 1}, evaluation=evaluation))
    return resolve(job.spec, base_model_path=None, dataset_sha256="0" * 64, device=Device(0, False))


def test_failing_gates_are_named_with_their_figures(tmp_path: Path) -> None:
    both = config(tmp_path, maxEvalLoss=2.0, minToolCallAccuracy=0.9)
    figures = {"toolCallAccuracy": 0.5, "toolCallArgumentsMatch": 0.25, "toolCallsScored": 8}
    assert heldout.failed_gates(both, 1.5, {**figures, "toolCallAccuracy": 0.9}) == []
    assert heldout.failed_gates(both, 2.5, figures) == [
        "evalLoss 2.5000 > maxEvalLoss 2.0",
        "toolCallAccuracy 0.5000 < minToolCallAccuracy 0.9 (held-out calls: 8, arguments match 0.2500)",
    ]
    with pytest.raises(JobFailed) as failure:
        heldout.check_gates(dataclasses.replace(both, max_eval_loss=None), 2.5, figures)
    assert failure.value.reason == Reason.EVALUATION_GATE_FAILED
    assert failure.value.message.startswith("toolCallAccuracy 0.5000 < minToolCallAccuracy 0.9")


def test_a_tool_call_gate_without_held_out_tool_calls_fails_before_training(tmp_path: Path) -> None:
    gated = config(tmp_path, minToolCallAccuracy=0.5)
    write_chat_dataset(tmp_path / "chat", train=4, evaluation=2)
    heldout.check_applicable(gated, data.load_dataset(tmp_path / "chat" / "dataset"))  # has tool calls: fine
    write_dataset(tmp_path / "instruction", train=4, evaluation=2)
    instruction = data.load_dataset(tmp_path / "instruction" / "dataset")
    heldout.check_applicable(config(tmp_path), instruction)  # no gate: fine
    with pytest.raises(JobFailed) as failure:
        heldout.check_applicable(gated, instruction)
    assert failure.value.reason == Reason.EVALUATION_GATE_FAILED
    assert (
        "instruction format" in failure.value.message and "no assistant turn with tool calls" in failure.value.message
    )
