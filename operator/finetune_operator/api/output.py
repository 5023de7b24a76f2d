"""`spec.output`: how the trained model is registered, and the model store it may be copied to first."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from finetune_operator.api.base import DNS1123_LABEL_PATTERN, SEMVER_PATTERN, ApiModel, cel
from finetune_operator.api.objectstore import S3ModelStore

_ONE_STORE = "output needs at most one model store: pvc or s3"


class Bump(StrEnum):
    PATCH = "patch"
    MINOR = "minor"
    MAJOR = "major"


class OutputSpec(ApiModel):
    """How the trained model is registered."""

    model_config = {
        "json_schema_extra": {"x-kubernetes-validations": [cel("!has(self.pvc) || !has(self.s3)", _ONE_STORE)]}
    }

    model_name: str = Field(pattern=DNS1123_LABEL_PATTERN, max_length=63)
    """Registry name of the model (DNS-1123 label); every job for it adds a ModelVersion."""
    version: str | None = Field(default=None, pattern=SEMVER_PATTERN, max_length=128)
    """Exact semantic version (semver 2.0.0, e.g. 1.2.0 or 1.3.0-rc.1); blank picks the next version by bump."""
    bump: Bump = Bump.PATCH
    """Which part of the highest existing version to increase when version is blank."""
    pvc: str | None = Field(default=None, pattern=DNS1123_LABEL_PATTERN, max_length=253)
    """Model store: a PersistentVolumeClaim (ReadWriteMany for jobs on several nodes) the final model and adapter
    are copied to, under `<modelName>/<version>/`, before the ModelVersion is registered; the ModelVersion then
    points at that copy, which outlives the job and its workspace. Unset: the ModelVersion points at the workspace."""
    promote_to: str | None = Field(default=None, pattern=DNS1123_LABEL_PATTERN, max_length=63)
    """An alias of the model's RegisteredModel (e.g. champion) to move to the new version once it is registered,
    which happens only when every evaluation gate passed. Only forward: an alias naming a higher version stays
    where it is (of two jobs racing, the higher version wins); the job's Events say what happened."""
    s3: S3ModelStore | None = None
    """Model store in an S3-compatible bucket instead of a claim: the same copy, uploaded to
    `<uri>/<modelName>/<version>/`; the ModelVersion's artifact URI is that folder."""

    @model_validator(mode="after")
    def _one_store(self) -> OutputSpec:
        if self.pvc is not None and self.s3 is not None:
            raise ValueError(_ONE_STORE)
        return self

    @property
    def store(self) -> str | None:
        """The model store the copy goes to (a claim name or an s3:// URI); None without one."""
        return self.pvc or (self.s3.uri if self.s3 is not None else None)
