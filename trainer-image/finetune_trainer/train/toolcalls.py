"""Tool calls read back from generated text, and scored against the calls the session made (pure).

What is parsed, in order:
1. `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks: the builtin ChatML template's format, and
   that of Hermes-style templates (Qwen2.5, Qwen3, Hermes, many others). An unclosed last block (generation
   stopped by the token budget) is read up to the end of the text.
2. Otherwise, every JSON object in the text that has a string "name" and an "arguments" or "parameters" object:
   Llama 3.1/3.2-style calls (`{"name": ..., "parameters": {...}}`) and templates that write calls as bare JSON.
Templates that write calls in another syntax (e.g. Mistral's `[TOOL_CALLS]` list, function-call tags with
custom delimiters) are scored as making no call: their accuracy reads 0, never a made-up figure.

Scoring is per assistant turn, order-insensitive (parallel calls may come in any order): a reference call is
matched by name to a predicted call not matched yet. `name_accuracy` is the share of reference calls whose
function the model called; `arguments_match` the share it called with equal arguments (parsed JSON equality:
key order and whitespace do not matter, types do, except that 1 == 1.0 as in JSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from finetune_trainer.train.conversation import ToolCall

TOOL_CALL_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)


@dataclass(frozen=True)
class ToolCallScores:
    name_accuracy: float
    arguments_match: float
    calls: int
    """Reference calls scored (over `turns` assistant turns)."""
    turns: int

    def metrics(self) -> dict[str, float | int]:
        return {
            "toolCallAccuracy": round(self.name_accuracy, 4),
            "toolCallArgumentsMatch": round(self.arguments_match, 4),
            "toolCallsScored": self.calls,
        }


def parse_tool_calls(text: str) -> list[ToolCall]:
    blocks = TOOL_CALL_BLOCK.findall(text)
    if blocks:
        return [calls[0] for calls in map(json_calls, blocks) if calls]
    return json_calls(text)


def json_calls(text: str) -> list[ToolCall]:
    """Every JSON object in `text` shaped like a call (`{"name": str, "arguments"|"parameters": ...}`)."""
    decoder = json.JSONDecoder()
    calls, position = [], text.find("{")
    while position != -1:
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            position = text.find("{", position + 1)
            continue
        call = as_call(value)
        if call is not None:
            calls.append(call)
        position = text.find("{", end if call is not None else position + 1)
    return calls


def as_call(value: Any) -> ToolCall | None:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    arguments = value.get("arguments", value.get("parameters"))
    if isinstance(arguments, str):  # some models write the OpenAI wire form: arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None
    if not isinstance(arguments, dict):
        return None
    return ToolCall(value["name"], arguments)


def match_turn(predicted: Sequence[ToolCall], reference: Sequence[ToolCall]) -> tuple[int, int]:
    """(reference calls whose function was called, of those called with equal arguments) in one turn."""
    unused = list(predicted)
    names = arguments = 0
    # Exact matches first, so that a wrong-argument call of the same function does not take a right one's place.
    pending = []
    for call in reference:
        if call in unused:
            unused.remove(call)
            names, arguments = names + 1, arguments + 1
        else:
            pending.append(call)
    for call in pending:
        same_name = next((candidate for candidate in unused if candidate.name == call.name), None)
        if same_name is not None:
            unused.remove(same_name)
            names += 1
    return names, arguments


def score_tool_calls(turns: Sequence[tuple[Sequence[ToolCall], Sequence[ToolCall]]]) -> ToolCallScores:
    """Scores over (predicted, reference) calls of each assistant turn that made tool calls."""
    calls = sum(len(reference) for _, reference in turns)
    if calls == 0:
        return ToolCallScores(name_accuracy=0.0, arguments_match=0.0, calls=0, turns=len(turns))
    matched = [match_turn(predicted, reference) for predicted, reference in turns]
    return ToolCallScores(
        name_accuracy=sum(names for names, _ in matched) / calls,
        arguments_match=sum(arguments for _, arguments in matched) / calls,
        calls=calls,
        turns=len(turns),
    )
