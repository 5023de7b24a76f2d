"""Exit codes and failure reasons shared by both trainer-image entrypoints.

The operator turns a container's exit code into a Job podFailurePolicy action
(docs/runtime-contract.md): user errors (10-12) fail the Job at once, because
retrying the same data or config cannot help; internal errors (20) count
against backoffLimit. Keeping the table here, in one place, is what stops the
curation and training entrypoints from drifting apart.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    SUCCEEDED = 0
    USER_DATA_ERROR = 10
    USER_CONFIG_ERROR = 11
    EVALUATION_GATE_FAILED = 12
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
