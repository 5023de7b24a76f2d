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


REJECTIONS: tuple[Outcome, ...] = tuple(Outcome)


@dataclass(frozen=True, slots=True)
class Rejection:
    outcome: Outcome
    detail: str
