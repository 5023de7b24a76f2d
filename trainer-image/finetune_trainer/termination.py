"""Writing the container termination message (the typed, size-bounded model is the contract's:
`finetune_operator.api.TerminationMessage`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from finetune_operator.api.termination import TerminationMessage

DEFAULT_PATH = "/dev/termination-log"
ENV_VAR = "FINETUNE_TERMINATION_LOG"


def write(message: TerminationMessage, path: str | None = None) -> None:
    """Write the termination message; a missing or unwritable path is reported, not fatal.

    Local runs have no `/dev/termination-log`; the result is still printed by the
    entrypoints, so failing here would only hide the real outcome.
    """
    target = Path(path or os.environ.get(ENV_VAR) or DEFAULT_PATH)
    try:
        target.write_text(message.render(), encoding="utf-8")
    except OSError as error:
        print(f"warning: cannot write termination message to {target}: {error}", file=sys.stderr)
