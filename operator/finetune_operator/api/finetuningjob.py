"""The FineTuningJob resource: its names and the top-level object (spec in `spec`, status in `status`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from finetune_operator.api.base import ApiModel
from finetune_operator.api.spec import FineTuningJobSpec
from finetune_operator.api.status import FineTuningJobStatus

KIND = "FineTuningJob"
PLURAL = "finetuningjobs"
SINGULAR = "finetuningjob"
SHORT_NAMES = ["ftj"]
CATEGORIES = ["ml"]


class FineTuningJob(ApiModel):
    """A fine-tuning run: curation of agent sessions, training, evaluation, registration."""

    api_version: str = Field(default="finetune.dev/v1alpha1")
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: FineTuningJobSpec
    status: FineTuningJobStatus | None = None
