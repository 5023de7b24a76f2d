"""The container termination message: the final result the operator reads.

Kubernetes keeps at most 4 KiB of `terminationMessagePath` and cuts anything
beyond it mid-byte, which would hand the operator invalid JSON. So the message
is shrunk here, before writing, in a way that always stays valid JSON: first
the free-text `message` is shortened, then nested objects are dropped, and as a
last resort a fixed minimal payload is written.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TypeAlias

from finetune_trainer.exitcodes import Reason, failure_kind_for

MAX_BYTES = 4096
DEFAULT_PATH = "/dev/termination-log"
ENV_VAR = "FINETUNE_TERMINATION_LOG"
_ELLIPSIS = "…"

Payload: TypeAlias = Mapping[str, object]


def failure(reason: Reason, message: str) -> dict[str, object]:
    return {
        "outcome": "Failed",
        "reason": str(reason),
        "failureKind": str(failure_kind_for(reason)),
        "message": message,
    }


def render(payload: Payload, limit: int = MAX_BYTES) -> str:
    """Serialise `payload` as compact JSON of at most `limit` UTF-8 bytes."""
    text = _dumps(payload)
    if _fits(text, limit):
        return text
    shortened = _shorten_message(payload, limit)
    if shortened is not None:
        return shortened
    scalars = {key: value for key, value in payload.items() if not isinstance(value, Mapping | list)}
    scalars["truncated"] = True
    shortened = _shorten_message(scalars, limit)
    if shortened is not None:
        return shortened
    return _dumps(failure(Reason.INTERNAL_ERROR, "termination message exceeded its size limit"))


def write(payload: Payload, path: str | None = None) -> None:
    """Write the termination message; a missing or unwritable path is reported, not fatal.

    Local runs have no `/dev/termination-log`; the result is still printed by the
    entrypoints, so failing here would only hide the real outcome.
    """
    target = Path(path or os.environ.get(ENV_VAR) or DEFAULT_PATH)
    try:
        target.write_text(render(payload), encoding="utf-8")
    except OSError as error:
        print(f"warning: cannot write termination message to {target}: {error}", file=sys.stderr)


def _shorten_message(payload: Payload, limit: int) -> str | None:
    """Binary-search the longest prefix of `message` that fits; None if even '' does not."""
    message = payload.get("message")
    if not isinstance(message, str):
        text = _dumps(payload)
        return text if _fits(text, limit) else None
    # Slicing a str never splits a code point, so the result stays valid UTF-8.
    low, high, best = 0, len(message), None
    while low <= high:
        middle = (low + high) // 2
        text = _dumps({**payload, "message": message[:middle] + _ELLIPSIS})
        if _fits(text, limit):
            best, low = text, middle + 1
        else:
            high = middle - 1
    return best


def _dumps(payload: Payload) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _fits(text: str, limit: int) -> bool:
    return len(text.encode("utf-8")) <= limit
