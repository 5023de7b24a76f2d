"""How a trainer-image entrypoint fails: `JobFailed` carries a contract reason to the entrypoint's `main`.

The reasons, their exit codes and failure kinds are the operator-trainer contract
(`finetune_operator.api.contract`, docs/runtime-contract.md). This module holds what only the trainer needs:
the exception, and recognising a full workspace volume (its own reason, StorageFull, exit 13).
"""

from __future__ import annotations

import errno
import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

from finetune_operator.api.contract import Reason


class JobFailed(Exception):
    """A failure the entrypoint reports through its termination message and exit code.

    Raised deep inside a step; the entrypoint's `main` catches it once, writes the
    termination message and exits with `exit_code_for(reason)`.
    """

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# Libraries that wrap the OSError keep only its text: safetensors (Rust) says "No space left on
# device (os error 28)"; Python's own messages carry the strerror.
_FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "os error 28)", "os error 122)")


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    """`error`, then what caused it or happened while handling it, and so on; each exception once."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_storage_full(error: BaseException) -> bool:
    """ENOSPC or EDQUOT anywhere in the exception's cause/context chain, as an errno or in its text."""
    return any(
        (isinstance(current, OSError) and current.errno in FULL_ERRNOS)
        or any(text in str(current) for text in _FULL_TEXTS)
        for current in exception_chain(error)
    )


def failed_path(error: BaseException) -> str | None:
    """The file an OSError in the first 8 links of the chain names, if any."""
    for current in itertools.islice(exception_chain(error), 8):
        if isinstance(current, OSError) and current.filename:
            return str(current.filename)
    return None


def storage_full_fix(sizing: str = "") -> str:
    """How every StorageFull message ends: what the user changes (`sizing` says how much room is needed)."""
    return f"fix: raise spec.storage.size in a new job{sizing}, or free space on the workspace PVC"


def volume_usage(path: Path) -> tuple[int, int] | None:
    """(free, total) bytes of the filesystem holding `path`; None when it cannot be asked."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return usage.free, usage.total


def human_bytes(count: int) -> str:
    """1536 -> '1.5 KiB': sizes in failure messages, for people."""
    value, unit = float(count), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
