"""Exit codes and failure reasons shared by both trainer-image entrypoints.

The operator turns a container's exit code into a Job podFailurePolicy action
(docs/runtime-contract.md): user errors (10-13) fail the Job at once, because
retrying the same data or config cannot help; internal errors (20) count
against backoffLimit. Keeping the table here, in one place, is what stops the
curation and training entrypoints from drifting apart.

A full workspace volume gets its own code (13) rather than sharing 11 with config errors: a retry
would resume from the last checkpoint and fill the volume again at the next one, so it must fail at
once like a user error, and the operator can still name the cause from the code alone when a
termination message is missing.
"""

from __future__ import annotations

import errno
import itertools
import shutil
from collections.abc import Iterator
from enum import IntEnum, StrEnum
from pathlib import Path


class ExitCode(IntEnum):
    SUCCEEDED = 0
    USER_DATA_ERROR = 10
    USER_CONFIG_ERROR = 11
    EVALUATION_GATE_FAILED = 12
    STORAGE_FULL = 13
    INTERNAL_ERROR = 20


class FailureKind(StrEnum):
    USER = "User"
    SYSTEM = "System"


class Reason(StrEnum):
    """The `reason` values the operator understands in a termination message."""

    CURATION_FAILED = "CurationFailed"
    NO_SAMPLES_AFTER_CURATION = "NoSamplesAfterCuration"
    SOURCE_NOT_FOUND = "SourceNotFound"
    INVALID_MODEL = "InvalidModel"
    CHECKPOINT_MISMATCH = "CheckpointMismatch"
    EVALUATION_GATE_FAILED = "EvaluationGateFailed"
    OUT_OF_MEMORY = "OutOfMemory"
    STORAGE_FULL = "StorageFull"
    INTERNAL_ERROR = "InternalError"


_EXIT_CODES: dict[Reason, ExitCode] = {
    Reason.CURATION_FAILED: ExitCode.USER_DATA_ERROR,
    Reason.NO_SAMPLES_AFTER_CURATION: ExitCode.USER_DATA_ERROR,
    Reason.SOURCE_NOT_FOUND: ExitCode.USER_DATA_ERROR,
    Reason.INVALID_MODEL: ExitCode.USER_CONFIG_ERROR,
    Reason.CHECKPOINT_MISMATCH: ExitCode.USER_CONFIG_ERROR,
    Reason.EVALUATION_GATE_FAILED: ExitCode.EVALUATION_GATE_FAILED,
    # GPU memory depends on the node as well as the spec, so a retry (from the last checkpoint) may
    # succeed elsewhere: counted against backoffLimit like other internal errors.
    Reason.OUT_OF_MEMORY: ExitCode.INTERNAL_ERROR,
    Reason.STORAGE_FULL: ExitCode.STORAGE_FULL,
    Reason.INTERNAL_ERROR: ExitCode.INTERNAL_ERROR,
}


def exit_code_for(reason: Reason) -> ExitCode:
    return _EXIT_CODES[reason]


def failure_kind_for(reason: Reason) -> FailureKind:
    return FailureKind.SYSTEM if exit_code_for(reason) is ExitCode.INTERNAL_ERROR else FailureKind.USER


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


def _chain(error: BaseException) -> Iterator[BaseException]:
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
        for current in _chain(error)
    )


def failed_path(error: BaseException) -> str | None:
    """The file an OSError in the first 8 links of the chain names, if any."""
    for current in itertools.islice(_chain(error), 8):
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
