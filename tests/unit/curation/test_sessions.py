import json

import pytest

from finetune_trainer.curate.outcomes import Outcome, Rejection

from .helpers import Session, parse_session


def parse(record: object) -> Session | Rejection:
    return parse_session(json.dumps(record).encode())


def test_flat_shape() -> None:
    session = parse({"id": "a", "success_rate": 0.95, "instruction": "Do X", "input": "ctx", "output": "Done"})
    assert session == Session("a", 0.95, "Do X", "ctx", "Done")


def test_flat_shape_input_is_optional_and_integer_ids_become_strings() -> None:
    assert parse({"id": 7, "success_rate": 1, "instruction": "Do X", "output": "Done"}) == Session(
        "7", 1.0, "Do X", "", "Done"
    )


def test_camel_case_success_rate_is_accepted() -> None:
    session = parse({"id": "a", "successRate": 0.5, "instruction": "Do X", "output": "Done"})
    assert isinstance(session, Session)
    assert session.success_rate == 0.5


def test_messages_shape_derives_instruction_input_and_output() -> None:
    session = parse(
        {
            "id": "m",
            "successRate": 0.99,
            "messages": [
                {"role": "system", "content": "You are a coding agent."},
                {"role": "user", "content": "Fix the test."},
                {"role": "assistant", "content": None, "tool_calls": [{"name": "run_tests"}]},
                {"role": "tool", "content": "1 failed"},
                {"role": "assistant", "content": [{"type": "text", "text": "Looking."}, {"type": "image"}]},
                {"role": "user", "content": "Go on."},
                {"role": "assistant", "content": "Fixed: the clock was wrong."},
                {"role": "tool", "content": "ignored: after the final answer"},
            ],
        }
    )
    assert session == Session(
        "m",
        0.99,
        "You are a coding agent.\n\nFix the test.",
        "[tool] 1 failed\n\n[assistant] Looking.\n\n[user] Go on.",
        "Fixed: the clock was wrong.",
    )


@pytest.mark.parametrize(
    ("record", "detail"),
    [
        ([1, 2], "must be a JSON object"),
        ({"success_rate": 1, "instruction": "x", "output": "y"}, "'id'"),
        ({"id": "", "success_rate": 1, "instruction": "x", "output": "y"}, "'id'"),
        ({"id": True, "success_rate": 1, "instruction": "x", "output": "y"}, "'id'"),
        ({"id": "a", "instruction": "x", "output": "y"}, "success_rate"),
        ({"id": "a", "success_rate": "high", "instruction": "x", "output": "y"}, "success_rate"),
        ({"id": "a", "success_rate": 1.5, "instruction": "x", "output": "y"}, "success_rate"),
        ({"id": "a", "success_rate": True, "instruction": "x", "output": "y"}, "success_rate"),
        ({"id": "a", "success_rate": 1, "output": "y"}, "missing 'instruction'"),
        ({"id": "a", "success_rate": 1, "instruction": "x"}, "missing 'output'"),
        ({"id": "a", "success_rate": 1, "instruction": "x", "output": 3}, "'output' must be a string"),
        ({"id": "a", "success_rate": 1, "instruction": "x", "output": "y", "metadata": []}, "'metadata'"),
        ({"id": "a", "success_rate": 1, "messages": []}, "non-empty list"),
        ({"id": "a", "success_rate": 1, "messages": [{"role": "bot", "content": "x"}]}, "role"),
        ({"id": "a", "success_rate": 1, "messages": [{"role": "assistant", "content": "x"}]}, "no user message"),
        ({"id": "a", "success_rate": 1, "messages": [{"role": "user", "content": 5}]}, "content"),
    ],
)
def test_malformed_records_name_the_problem(record: object, detail: str) -> None:
    result = parse(record)
    assert isinstance(result, Rejection)
    assert result.outcome is Outcome.MALFORMED
    assert detail in result.detail


@pytest.mark.parametrize(
    "raw",
    [b'{"id": "a", "success_rate": 1, "instr', b"\x00\x01\xff garbage", b'{"id": "caf\xe9"}', b"nul"],
)
def test_undecodable_lines_are_malformed(raw: bytes) -> None:
    result = parse_session(raw)
    assert isinstance(result, Rejection)
    assert result.outcome is Outcome.MALFORMED
    assert result.detail.startswith("invalid JSON")


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"   ", "blank line"),
        (json.dumps({"id": "a", "success_rate": 1, "instruction": " ", "output": "y"}).encode(), "no instruction"),
        (json.dumps({"id": "a", "success_rate": 1, "instruction": "x", "output": "\n"}).encode(), "no output"),
        (
            json.dumps(
                {"id": "a", "success_rate": 1, "messages": [{"role": "user", "content": "x"}, {"role": "tool"}]}
            ).encode(),
            "no output",
        ),
    ],
)
def test_sessions_without_content_are_empty(raw: bytes, detail: str) -> None:
    assert parse_session(raw) == Rejection(Outcome.EMPTY, detail)
