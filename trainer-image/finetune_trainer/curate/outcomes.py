"""What can happen to one input line: it is kept, or rejected for exactly one named reason."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    # Values are the camelCase keys of status.dataset.rejected and of the manifest's counts.
    MALFORMED = "malformed"
    EMPTY = "empty"
    LOW_SUCCESS = "lowSuccess"
    TOO_LONG = "tooLong"
    DUPLICATE = "duplicate"
    # Chat format only (trainer-image/native/src/conversation.rs).
    ORPHAN_TOOL_RESULT = "orphanToolResult"
    UNANSWERED_TOOL_CALL = "unansweredToolCall"
    INVALID_TOOL_ARGUMENTS = "invalidToolArguments"
    UNKNOWN_TOOL = "unknownTool"
    NOT_ENDING_WITH_ASSISTANT = "notEndingWithAssistant"


REJECTIONS: tuple[Outcome, ...] = tuple(Outcome)
CONVERSATION_REJECTIONS: tuple[Outcome, ...] = REJECTIONS[REJECTIONS.index(Outcome.ORPHAN_TOOL_RESULT) :]
"""Defects of a conversation's tool calls and turns; the manifest lists the first lines of each."""


@dataclass(frozen=True, slots=True)
class Rejection:
    outcome: Outcome
    detail: str
