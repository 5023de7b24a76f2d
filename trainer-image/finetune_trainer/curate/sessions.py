"""One JSONL line -> a validated session, or a named rejection (docs/session-schema.md).

Two input shapes are accepted: flat `instruction`/`input`/`output`, and chat
`messages`, from which the same three fields are derived:
  instruction = the system messages, then the first user message
  input       = every turn between that user message and the final assistant
                reply (tool results, intermediate steps), each tagged `[role]`
  output      = the final non-empty assistant message
Turns after the final assistant reply carry nothing to learn and are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from finetune_trainer.curate.outcomes import Outcome, Rejection

ROLES = frozenset({"system", "user", "assistant", "tool"})


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    success_rate: float
    instruction: str
    input: str
    output: str


class _Malformed(Exception):
    pass


def parse_session(raw: bytes) -> Session | Rejection:
    if not raw.strip():
        return Rejection(Outcome.EMPTY, "blank line")
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return Rejection(Outcome.MALFORMED, f"invalid JSON: {error}")
    try:
        session = _validate(record)
    except _Malformed as error:
        return Rejection(Outcome.MALFORMED, str(error))
    if not session.instruction.strip():
        return Rejection(Outcome.EMPTY, "no instruction")
    if not session.output.strip():
        return Rejection(Outcome.EMPTY, "no output")
    return session


def _validate(record: Any) -> Session:
    if not isinstance(record, dict):
        raise _Malformed(f"a line must be a JSON object, not {type(record).__name__}")
    session_id = record.get("id")
    if isinstance(session_id, bool) or not isinstance(session_id, str | int) or session_id == "":
        raise _Malformed("'id' must be a non-empty string or an integer")
    rate = record.get("success_rate")
    if rate is None:
        rate = record.get("successRate")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
        raise _Malformed("'success_rate' (or 'successRate') must be a number in [0, 1]")
    if not isinstance(record.get("metadata", {}), dict | None):
        raise _Malformed("'metadata' must be an object")
    if "messages" in record:
        instruction, context, output = _from_messages(record["messages"])
    else:
        instruction = _text_field(record, "instruction", required=True)
        context = _text_field(record, "input", required=False)
        output = _text_field(record, "output", required=True)
    return Session(str(session_id), float(rate), instruction, context, output)


def _text_field(record: dict[str, Any], name: str, required: bool) -> str:
    value = record.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise _Malformed(f"'{name}' must be a string" if name in record else f"missing '{name}'")
    return value


def _from_messages(messages: Any) -> tuple[str, str, str]:
    if not isinstance(messages, list) or not messages:
        raise _Malformed("'messages' must be a non-empty list")
    turns = [_turn(index, message) for index, message in enumerate(messages)]
    first_user = next((i for i, (role, _) in enumerate(turns) if role == "user"), None)
    if first_user is None:
        raise _Malformed("'messages' has no user message")
    final = next(
        (i for i in range(len(turns) - 1, first_user, -1) if turns[i][0] == "assistant" and turns[i][1].strip()),
        None,
    )
    system = [content for role, content in turns if role == "system" and content.strip()]
    instruction = "\n\n".join([*system, turns[first_user][1]])
    if final is None:
        return instruction, "", ""
    context = "\n\n".join(
        f"[{role}] {content}" for role, content in turns[first_user + 1 : final] if role != "system" and content.strip()
    )
    return instruction, context, turns[final][1]


def _turn(index: int, message: Any) -> tuple[str, str]:
    if not isinstance(message, dict):
        raise _Malformed(f"messages[{index}] must be an object")
    role = message.get("role")
    if role not in ROLES:
        raise _Malformed(f"messages[{index}].role must be one of {sorted(ROLES)}")
    return role, _content(index, message.get("content"))


def _content(index: int, content: Any) -> str:
    if content is None:
        return ""  # an assistant turn that only calls tools
    if isinstance(content, str):
        return content
    # OpenAI-style content parts: keep the text parts, skip images and other media.
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        return "\n".join(part["text"] for part in content if isinstance(part.get("text"), str))
    raise _Malformed(f"messages[{index}].content must be a string, null or a list of parts")
