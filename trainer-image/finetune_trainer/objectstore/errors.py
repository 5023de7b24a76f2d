"""S3 errors as job failures a person can act on, each naming the URI it happened on.

A missing bucket or key is `SourceNotFound`, refused credentials or permissions `SourceAccessDenied`
(`OutputAccessDenied` when writing the trained model): both are the user's to fix, so they fail at once
instead of crash-looping. Connection errors, timeouts and 5xx answers are transient: the client retries them
with backoff, and when retries run out they surface as `InternalError` (System), which the training Job
retries as a whole.
"""

from __future__ import annotations

from typing import Any

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed

_NOT_FOUND = frozenset({"NoSuchBucket", "NoSuchKey", "NotFound", "404"})
_DENIED = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "ExpiredToken",
        "Forbidden",
        "InvalidAccessKeyId",
        "InvalidToken",
        "SignatureDoesNotMatch",
        "403",
    }
)


def error_code(error: BaseException) -> str | None:
    """The S3 error code of an S3Error (or its HTTP status), also when it caused `error`; else None."""
    current: BaseException | None = error
    for _ in range(4):
        if current is None:
            break
        code = getattr(current, "code", None)
        if isinstance(code, str) and code:
            return code
        response: Any = getattr(current, "response", None)
        status = getattr(response, "status", None)
        if isinstance(status, int) and status in (403, 404):
            return str(status)
        current = current.__cause__ or current.__context__
    return None


def is_not_found(error: BaseException) -> bool:
    return error_code(error) in _NOT_FOUND


def is_denied(error: BaseException) -> bool:
    return error_code(error) in _DENIED


def as_job_failure(error: BaseException, uri: str, *, writing: bool = False) -> JobFailed | None:
    """The user-facing failure for `error` on `uri`, or None when it is not the user's to fix."""
    code = error_code(error) or type(error).__name__
    if is_denied(error):
        reason = Reason.OUTPUT_ACCESS_DENIED if writing else Reason.SOURCE_ACCESS_DENIED
        verb = "write to" if writing else "read"
        return JobFailed(
            reason,
            f"cannot {verb} {uri}: {code}; check the Secret named by secretRef (or the pod's workload identity) "
            f"and that its policy allows {'s3:PutObject' if writing else 's3:ListBucket and s3:GetObject'} there",
        )
    if is_not_found(error) and not writing:
        return JobFailed(Reason.SOURCE_NOT_FOUND, f"{uri} does not exist ({code})")
    if is_not_found(error):
        return JobFailed(Reason.OUTPUT_ACCESS_DENIED, f"cannot write to {uri}: {code} (does the bucket exist?)")
    return None


def raise_for(error: BaseException, uri: str, *, writing: bool = False) -> None:
    """Re-raise `error` as the user-facing failure when it is one; otherwise leave it to the caller."""
    failure = as_job_failure(error, uri, writing=writing)
    if failure is not None:
        raise failure from error
