"""The container termination message: the final result a trainer-image container hands the operator.

Kubernetes keeps at most 4 KiB of `terminationMessagePath` and cuts anything beyond it mid-byte, which would
hand the operator invalid JSON. So `TerminationMessage.render` shrinks the message before it is written, always
to valid JSON: first the free-text `message` is shortened, then nested objects are dropped, and as a last resort
a fixed minimal failure is written. `TerminationMessage.parse` is the operator's tolerant reader: a container
that is not ours (or an older trainer) still yields a message, never an exception.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, ValidationError

from finetune_operator.api.base import DIGEST_PATTERN, StatusModel
from finetune_operator.api.contract import FailureKind, Reason, failure_kind_for
from finetune_operator.api.modelversion import ComparedTo
from finetune_operator.api.status import CheckpointRef, DatasetStatus, Metrics, Progress
from finetune_operator.api.tracking import TrackingStatus

MAX_BYTES = 4096
PLAIN_TEXT_LIMIT = 1024
_EXPENDABLE = ("tracking", "hyperparameters")
_REPAIRS = 4
_ELLIPSIS = "…"


class ProducedModel(StatusModel):
    """The model folder training wrote (relative to the workspace), or the copy publishing wrote (`store` set:
    relative to the model store's root; `uri` set: in a bucket)."""

    path: str | None = None
    format: str | None = None
    adapter: bool | None = None
    merged: bool | None = None
    store: str | None = None
    """The model store (output.pvc) holding `path`; unset for the workspace's own folder."""
    uri: str | None = None
    """The copy's folder in a bucket (output.s3: s3://bucket/prefix/<modelName>/<version>/)."""
    version: str | None = None
    """The version the copy was published as (`<modelName>/<version>/`)."""
    digest: str | None = None
    """`sha256:<hex>` of the copied folder (api.modelversion.ArtifactLocation.digest says how it is computed)."""


class TerminationMessage(StatusModel):
    """What a curation or training container reports as it ends (docs/runtime-contract.md)."""

    outcome: Literal["Succeeded", "Failed"] | None = None
    reason: str | None = None
    """A `Reason` value; kept as text so that a reason from a newer trainer image still reads."""
    failure_kind: FailureKind | None = None
    message: str | None = None
    dataset: DatasetStatus | None = None
    metrics: Metrics | None = None
    progress: Progress | None = None
    checkpoint: CheckpointRef | None = None
    model: ProducedModel | None = None
    hyperparameters: dict[str, Any] | None = None
    """The training configuration the trainer resolved (every default applied), for the ModelVersion."""
    compared_to: ComparedTo | None = None
    """The version evaluation.compareTo gated the model against (its losses are in `metrics`)."""
    base_model_digest: str | None = Field(default=None, pattern=DIGEST_PATTERN)
    """`sha256:` of the base model's config.json and weight index (finetune_trainer.train.lineage)."""
    tracking: TrackingStatus | None = None
    truncated: bool | None = None

    @classmethod
    def failure(cls, reason: Reason, message: str) -> TerminationMessage:
        return cls(outcome="Failed", reason=reason.value, failure_kind=failure_kind_for(reason), message=message)

    @property
    def failed(self) -> bool:
        return self.outcome == "Failed" and bool(self.reason)

    @classmethod
    def parse(cls, text: str | None) -> TerminationMessage:
        """The message as the operator reads it; anything that is not our JSON becomes plain text."""
        if not text:
            return cls()
        try:
            document = json.loads(text)
        except ValueError:
            return cls(message=text.strip()[:PLAIN_TEXT_LIMIT])
        if not isinstance(document, dict):
            return cls(message=str(document)[:PLAIN_TEXT_LIMIT])
        # Keep what is readable: drop only the values that fail validation (a metric written as text, say).
        for _ in range(_REPAIRS):
            try:
                return cls.model_validate(document)
            except ValidationError as error:
                document = _without(document, [detail["loc"] for detail in error.errors()])
        return cls(message=str(document.get("message", ""))[:PLAIN_TEXT_LIMIT] or None)

    def render(self, limit: int = MAX_BYTES) -> str:
        """Compact JSON of at most `limit` UTF-8 bytes."""
        payload = self.model_dump(by_alias=True, exclude_none=True, mode="json")
        text = _dumps(payload)
        if _fits(text, limit):
            return text
        shortened = _shorten_message(payload, limit)
        if shortened is not None:
            return shortened
        # Least needed first: where the tracking run is (a long tracking URI, an error note), then lineage (the
        # ModelVersion falls back to the spec's hyperparameters); the model and metrics are what register the model.
        for key in _EXPENDABLE:
            if shortened is None and key in payload:
                payload.pop(key)
                shortened = _shorten_message({**payload, "truncated": True}, limit)
        if shortened is not None:
            return shortened
        scalars = {key: value for key, value in payload.items() if not isinstance(value, dict | list)}
        scalars["truncated"] = True
        shortened = _shorten_message(scalars, limit)
        if shortened is not None:
            return shortened
        minimal = TerminationMessage.failure(Reason.INTERNAL_ERROR, "termination message exceeded its size limit")
        return _dumps(minimal.model_dump(by_alias=True, exclude_none=True, mode="json"))


def _without(document: dict[str, Any], paths: list[tuple[int | str, ...]]) -> dict[str, Any]:
    """A copy of `document` without the values at `paths` (pydantic error locations)."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    for path in paths:
        parent: Any = copy
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and path:
            parent.pop(path[-1], None)
        elif path == ():
            return {}
    return copy


def _shorten_message(payload: dict[str, Any], limit: int) -> str | None:
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


def _dumps(payload: dict[str, Any]) -> str:
    # NaN/Infinity stay as Python's json writes them: the operator reads them back and drops them (status.finite).
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _fits(text: str, limit: int) -> bool:
    return len(text.encode("utf-8")) <= limit
