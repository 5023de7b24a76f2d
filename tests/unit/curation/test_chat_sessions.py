"""The chat format, line by line: a `messages` session with tool calls becomes a chat record or one named rejection."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import finetune_curate_native as native
import orjson
import pytest

import toolcorpus

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "run_tests",
            "description": "Run a test file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "read_file"}},
]


def conversation(**extra: Any) -> dict[str, Any]:
    return {
        "id": "c-1",
        "success_rate": 0.95,
        "tools": TOOLS,
        "messages": [
            {"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": [{"type": "text", "text": "Fix the retry test."}, {"type": "image_url"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "run_tests", "arguments": '{"path": "tests/test_retry.py", "k": [1]}'},
                    },
                    {"id": "call_2", "type": "function", "function": {"name": "read_file", "arguments": {"n": 2}}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_2", "content": "def backoff(): ..."},
            {"role": "tool", "tool_call_id": "call_1", "name": "run_tests", "content": "1 failed"},
            {"role": "assistant", "content": "The backoff used wall time."},
        ],
        **extra,
    }


def assess(record: dict[str, Any] | bytes, max_tokens: int | None = None, keep_texts: bool = False) -> Any:
    """The chat record the curator writes for one line, or its (outcome, detail)."""
    raw = record if isinstance(record, bytes) else json.dumps(record).encode()
    assessor = native.Assessor(-1.0, 0.1, False, max_tokens, keep_texts, True)
    assessed = assessor.assess_block("s.jsonl", 7, raw, 0, len(raw), len(raw))
    candidate = assessed.candidate(0)
    if candidate is None:
        return assessed.outcome(0)
    return orjson.loads(candidate[0])


def test_a_tool_calling_session_becomes_a_normalised_chat_record() -> None:
    record = assess(conversation())
    assert record == {
        "messages": [
            {"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": "Fix the retry test."},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "run_tests", "arguments": {"path": "tests/test_retry.py", "k": [1]}},
                    },
                    {"id": "call_2", "type": "function", "function": {"name": "read_file", "arguments": {"n": 2}}},
                ],
            },
            {"role": "tool", "content": "def backoff(): ...", "tool_call_id": "call_2"},
            {"role": "tool", "content": "1 failed", "tool_call_id": "call_1"},
            {"role": "assistant", "content": "The backoff used wall time."},
        ],
        "tools": TOOLS,
        "metadata": {"session_id": "c-1", "success_rate": 0.95, "source": "s.jsonl", "line": 7},
    }


def test_arguments_keep_their_key_order_and_a_call_without_arguments_gets_an_empty_object() -> None:
    session = conversation()
    calls = session["messages"][2]["tool_calls"]
    calls[0]["function"]["arguments"] = '{"z": 1, "a": 2, "m": {"y": 1, "b": 2}}'
    del calls[1]["function"]["arguments"]
    del calls[1]["type"]
    record = assess(session)
    written = [call["function"]["arguments"] for call in record["messages"][2]["tool_calls"]]
    assert written == [{"z": 1, "a": 2, "m": {"y": 1, "b": 2}}, {}]
    assert list(written[0]) == ["z", "a", "m"]


def test_without_tools_any_function_may_be_called_and_no_tools_key_is_written() -> None:
    session = conversation()
    del session["tools"]
    session["messages"][2]["tool_calls"][0]["function"]["name"] = "deploy"
    record = assess(session)
    assert "tools" not in record
    assert record["messages"][2]["tool_calls"][0]["function"]["name"] == "deploy"
    session["tools"] = []
    assert "tools" not in assess(session)


def test_an_instruction_session_becomes_a_user_and_an_assistant_message() -> None:
    fields = {"id": 3, "success_rate": 1, "instruction": "Do X", "input": "ctx", "output": "Done"}
    assert assess(fields)["messages"] == [
        {"role": "user", "content": "Do X\n\nctx"},
        {"role": "assistant", "content": "Done"},
    ]
    del fields["input"]
    assert assess(fields)["messages"][0] == {"role": "user", "content": "Do X"}


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """A mutation setting messages[i].key... (a dotted path of indexes and keys) to `value`."""

    def mutate(session: dict[str, Any]) -> None:
        *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
        target: Any = session
        for part in parents:
            target = target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return mutate


_DELETE = object()
CALL = "messages.2.tool_calls.0"
ANSWER = "messages.4"
ORPHAN = "orphanToolResult"

REJECTIONS: list[tuple[str, Mutation, str, str]] = [
    ("unknown call id", _set(f"{ANSWER}.tool_call_id", "call_9"), ORPHAN, "messages[4] answers tool call 'call_9'"),
    ("no call id", _set(f"{ANSWER}.tool_call_id", _DELETE), ORPHAN, "messages[4] is a tool result without"),
    ("answered twice", _set(f"{ANSWER}.tool_call_id", "call_2"), ORPHAN, "messages[4] answers tool call 'call_2'"),
    ("before the call", lambda s: s["messages"].insert(2, {"role": "tool", "tool_call_id": "call_1", "content": "x"}),
     ORPHAN, "messages[2] answers"),
    ("never answered", lambda s: s["messages"].pop(4), "unansweredToolCall",
     "messages[2].tool_calls[0] (run_tests, id 'call_1') is never answered"),
    ("not JSON", _set(f"{CALL}.function.arguments", '{"path": '), "invalidToolArguments",
     "messages[2].tool_calls[0] (run_tests): arguments are not valid JSON: EOF while parsing"),
    ("JSON, not an object", _set(f"{CALL}.function.arguments", "[1]"), "invalidToolArguments",
     "arguments must be a JSON object"),
    ("a number", _set(f"{CALL}.function.arguments", 3), "invalidToolArguments", "or a string holding one"),
    ("unknown function", _set(f"{CALL}.function.name", "deploy"), "unknownTool",
     "messages[2].tool_calls[0] calls 'deploy', which 'tools' does not define"),
    ("ends with the user", lambda s: s["messages"].append({"role": "user", "content": "And?"}),
     "notEndingWithAssistant", "the last message (messages[6]) is a user message"),
    ("ends with a tool result", lambda s: s["messages"].pop(), "notEndingWithAssistant", "is a tool message"),
    ("calls not a list", _set("messages.2.tool_calls", {"id": "x"}), "malformed", "tool_calls must be a list"),
    ("a user calls", _set("messages.1.tool_calls", [{"id": "x"}]), "malformed", "only assistant messages call tools"),
    ("call without id", _set(f"{CALL}.id", ""), "malformed", "messages[2].tool_calls[0].id must be a non-empty string"),
    ("not a function", _set(f"{CALL}.type", "code"), "malformed", "messages[2].tool_calls[0].type must be 'function'"),
    ("function missing", _set(f"{CALL}.function", "run_tests"), "malformed", ".function must be an object"),
    ("function unnamed", _set(f"{CALL}.function.name", None), "malformed", ".function.name must be a non-empty string"),
    ("tools not a list", _set("tools", {"run_tests": {}}), "malformed", "'tools' must be a list"),
    ("tool unnamed", _set("tools.1", {"type": "function", "function": {}}), "malformed", "tools[1] must be"),
    ("no user", _set("messages.1.role", "system"), "malformed", "'messages' has no user message"),
    ("bad role", _set("messages.3.role", "robot"), "malformed", "messages[3].role must be one of"),
    ("blank answer", _set("messages.5.content", " \n"), "empty", "no output"),
    ("blank question", lambda s: [_set(f"messages.{i}.content", "")(s) for i in (0, 1)], "empty", "no instruction"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "outcome", "detail"), [case[1:] for case in REJECTIONS], ids=[case[0] for case in REJECTIONS]
)
def test_each_defect_of_a_conversation_is_rejected_with_its_reason(mutate: Mutation, outcome: str, detail: str) -> None:
    session = copy.deepcopy(conversation())
    mutate(session)
    rejected = assess(session)
    assert isinstance(rejected, tuple), rejected
    assert rejected[0] == outcome
    assert detail in rejected[1]


def test_the_first_defect_in_message_order_decides() -> None:
    session = conversation()
    session["messages"][2]["tool_calls"][1]["function"]["name"] = "deploy"  # unknown function, message 2
    session["messages"].append({"role": "user", "content": "And?"})  # and not ending with the assistant
    assert assess(session)[0] == "unknownTool"


def test_chat_rules_do_not_apply_in_the_instruction_format() -> None:
    session = conversation()
    session["messages"][4]["tool_call_id"] = "call_9"
    raw = json.dumps(session).encode()
    assessed = native.Assessor(-1.0, 0.1, False, None, False).assess_block("s.jsonl", 1, raw, 0, len(raw), len(raw))
    candidate = assessed.candidate(0)
    assert candidate is not None
    assert orjson.loads(candidate[0])["output"] == "The backoff used wall time."


def test_secrets_are_redacted_in_arguments_results_and_tool_definitions_but_not_in_names_or_ids() -> None:
    token = "ghp_" + "a1B2c3D4" * 5
    session = conversation()
    session["tools"] = copy.deepcopy(TOOLS)
    session["tools"][0]["function"]["description"] = f"Run tests; the CI token is {token}"
    calls = session["messages"][2]["tool_calls"]
    calls[0]["function"]["arguments"] = json.dumps({"path": "t.py", "env": [{"GITHUB_TOKEN": f"{token}"}]})
    calls[1]["function"]["arguments"] = {"header": f"Authorization: Bearer {'x' * 24}"}
    session["messages"][4]["content"] = f"1 failed\nexport TOKEN={token}"
    raw = json.dumps(session).encode()
    assessed = native.Assessor(-1.0, 0.1, False, None, False, True).assess_block("s", 1, raw, 0, len(raw), len(raw))
    candidate = assessed.candidate(0)
    assert candidate is not None
    line, redactions = candidate[0], candidate[5]
    assert token.encode() not in line and b"x" * 24 not in line
    record = orjson.loads(line)
    calls = record["messages"][2]["tool_calls"]
    assert calls[0]["function"]["arguments"]["env"] == [{"GITHUB_TOKEN": "[REDACTED:github_token]"}]
    assert calls[1]["function"]["arguments"] == {"header": "Authorization: Bearer [REDACTED:bearer_token]"}
    assert record["messages"][4]["content"].endswith("TOKEN=[REDACTED:github_token]")
    assert record["tools"][0]["function"]["description"].endswith("[REDACTED:github_token]")
    assert [call["id"] for call in calls] == ["call_1", "call_2"]
    assert record["tools"][0]["function"]["name"] == "run_tests"
    assert redactions == {"github_token": 3, "bearer_token": 1}


def _digest(record: dict[str, Any]) -> int:
    raw = json.dumps(record).encode()
    assessed = native.Assessor(-1.0, 0.1, True, None, False, True).assess_block("s", 1, raw, 0, len(raw), len(raw))
    candidate = assessed.candidate(0)
    assert candidate is not None
    return candidate[3]


def test_duplicates_are_judged_on_the_whole_conversation_but_not_on_the_tools() -> None:
    original = _digest(conversation())
    other_arguments = conversation()
    other_arguments["messages"][2]["tool_calls"][1]["function"]["arguments"] = {"n": 3}
    other_result = conversation()
    other_result["messages"][3]["content"] = "def backoff(): return 1"
    other_tools = conversation(tools=[*TOOLS, {"type": "function", "function": {"name": "grep"}}])
    assert _digest(other_arguments) != original
    assert _digest(other_result) != original
    assert _digest(other_tools) == original


def test_max_tokens_counts_every_text_of_the_conversation() -> None:
    session = conversation()
    assert not isinstance(assess(session, max_tokens=1000), tuple)
    session["messages"][2]["tool_calls"][0]["function"]["arguments"] = {"patch": "x" * 4000}
    assert assess(session, max_tokens=1000) == ("tooLong", "")
    described = {**TOOLS[0], "function": {**TOOLS[0]["function"], "description": "y" * 4000}}
    long_tools = conversation(tools=[described, TOOLS[1]])
    assert assess(long_tools, max_tokens=1000) == ("tooLong", "")


def test_the_text_a_tokenizer_counts_holds_every_message_call_and_the_tools() -> None:
    raw = json.dumps(conversation()).encode()
    assessed = native.Assessor(-1.0, 0.1, False, 10, True, True).assess_block("s", 1, raw, 0, len(raw), len(raw))
    [(index, text)] = assessed.texts()
    assert index == 0
    assert text.split("\n")[:8] == [
        "You are a coding agent.",
        "Fix the retry test.",
        "",
        "run_tests",
        '{"path":"tests/test_retry.py","k":[1]}',
        "read_file",
        '{"n":2}',
        "def backoff(): ...",
    ]
    assert text.endswith(json.dumps(TOOLS, separators=(",", ":")))


def test_every_planted_kind_of_the_tool_corpus_gets_its_outcome() -> None:
    lines = list(toolcorpus.generate(600, seed=3))
    seen = set()
    for line in lines:
        try:
            kind = orjson.loads(line)["metadata"]["synthetic_kind"]
        except orjson.JSONDecodeError:
            kind = "malformed"
        seen.add(kind)
        result = assess(line)
        if kind in ("good", "lowSuccess", "duplicate", "secret"):  # lowSuccess: the floor here is -1
            assert isinstance(result, dict), (kind, result)
        else:
            assert isinstance(result, tuple) and result[0] == kind, (kind, result)
        if kind == "secret":
            assert not any(secret.encode() in json.dumps(result).encode() for secret in _secrets(line))
    assert seen == set(toolcorpus.MIX)


def _secrets(line: bytes) -> list[str]:
    secrets: list[str] = orjson.loads(line)["metadata"]["synthetic_secrets"]
    return secrets
