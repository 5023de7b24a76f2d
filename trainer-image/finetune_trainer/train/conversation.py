"""Chat records (curation's `chat` format, /docs/session-schema.md) read into conversations (pure).

One line is `{"messages": [...], "tools": [...]?, "metadata": {...}}`. Curation normalises every message
(string `content`; `tool_calls` only on assistant messages, with parsed JSON arguments; `tool_call_id` only
on tool messages; the conversation ends with an assistant turn), so this module only checks that cheaply
and fails with CurationFailed on a line that breaks it: such a line was not written by curation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed

ROLES = frozenset({"system", "user", "assistant", "tool"})
ALLOWED_KEYS = {
    "system": {"role", "content"},
    "user": {"role", "content"},
    "assistant": {"role", "content", "tool_calls"},
    "tool": {"role", "content", "tool_call_id"},
}


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Any
    """Parsed JSON (curation never leaves a string here)."""


@dataclass(frozen=True)
class Conversation:
    messages: tuple[Mapping[str, Any], ...]
    """In the shape chat templates read: role, content, tool_calls (id, type, function: name, arguments)."""
    tools: tuple[Mapping[str, Any], ...] = ()

    @property
    def tool_definitions(self) -> list[dict[str, Any]] | None:
        """`tools=` for apply_chat_template: None rather than [] (templates test `if tools`)."""
        return [dict(tool) for tool in self.tools] or None


def tool_calls(message: Mapping[str, Any]) -> list[ToolCall]:
    return [ToolCall(call["function"]["name"], call["function"]["arguments"]) for call in message.get("tool_calls", ())]


def parse_conversation(record: Mapping[str, Any], where: str) -> Conversation:
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise JobFailed(Reason.CURATION_FAILED, f"{where}: a chat record needs a non-empty 'messages' list")
    for index, message in enumerate(messages):
        check_message(message, f"{where}: messages[{index}]")
    if messages[-1]["role"] != "assistant":
        raise JobFailed(Reason.CURATION_FAILED, f"{where}: the conversation does not end with an assistant message")
    tools = record.get("tools", [])
    if not isinstance(tools, list) or not all(isinstance(tool, dict) for tool in tools):
        raise JobFailed(Reason.CURATION_FAILED, f"{where}: 'tools' must be a list of objects")
    return Conversation(messages=tuple(messages), tools=tuple(tools))


def check_message(message: Any, where: str) -> None:
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise JobFailed(Reason.CURATION_FAILED, f"{where}: expected an object with a role in {sorted(ROLES)}")
    extra = set(message) - ALLOWED_KEYS[message["role"]]
    if extra:
        raise JobFailed(Reason.CURATION_FAILED, f"{where}: unexpected keys {sorted(extra)} on a {message['role']}")
    if not isinstance(message.get("content"), str):
        raise JobFailed(Reason.CURATION_FAILED, f"{where}: 'content' must be a string")
    if message["role"] == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise JobFailed(Reason.CURATION_FAILED, f"{where}: a tool message needs a string 'tool_call_id'")
    for call in message.get("tool_calls", ()):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise JobFailed(Reason.CURATION_FAILED, f"{where}: a tool call needs function.name")
        if isinstance(function.get("arguments"), str):
            raise JobFailed(Reason.CURATION_FAILED, f"{where}: tool call arguments must be parsed JSON, not a string")


def conversation_text(conversation: Conversation) -> str:
    """Everything the model reads of a conversation, roughly as templates show it: a builtin tokenizer's corpus."""
    parts = [json.dumps(tool) for tool in conversation.tools]
    for message in conversation.messages:
        parts.append(f"{message['role']}\n{message['content']}")
        parts.extend(call_json(call) for call in tool_calls(message))
    return "\n".join(parts)


def call_json(call: ToolCall) -> str:
    return json.dumps({"name": call.name, "arguments": call.arguments})


def tool_call_turns(conversation: Conversation) -> list[int]:
    """Indices of the assistant messages that called tools: the turns agent evaluation scores."""
    return [
        index
        for index, message in enumerate(conversation.messages)
        if message["role"] == "assistant" and message.get("tool_calls")
    ]


def has_tool_call_turns(conversations: Sequence[Conversation]) -> bool:
    return any(tool_call_turns(conversation) for conversation in conversations)
