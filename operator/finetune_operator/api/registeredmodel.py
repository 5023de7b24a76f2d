"""The RegisteredModel API: one model name in the registry, its versions, and movable aliases.

A ModelVersion is immutable; what changes over a model's life (which version is `champion`, which versions are
retired) is set here. The operator creates a RegisteredModel with the first version of a name and keeps its
status (every version, the latest and highest, the aliases resolved); deleting a FineTuningJob never touches it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from finetune_operator.api.base import DNS1123_LABEL_PATTERN, SEMVER_PATTERN, ApiModel, StatusModel, cel
from finetune_operator.api.status import Condition

KIND = "RegisteredModel"
PLURAL = "registeredmodels"
SINGULAR = "registeredmodel"
SHORT_NAMES = ["rm"]
CATEGORIES = ["ml"]
MAX_ALIASES = 32
MAX_LISTED_VERSIONS = 256

Semver = Annotated[str, Field(pattern=SEMVER_PATTERN, max_length=128)]


class RegisteredModelSpec(ApiModel):
    """The model's movable pointers and the lifecycle state of its versions. Its name is the model's name."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    f"!has(self.aliases) || self.aliases.all(a, a.matches('{DNS1123_LABEL_PATTERN}') && size(a) <= 63)",
                    "alias names are DNS-1123 labels: lower case letters, digits and '-', at most 63 characters",
                    ".aliases",
                ),
            ]
        }
    }

    description: str | None = Field(default=None, max_length=1024)
    aliases: dict[str, Semver] | None = Field(default=None, max_length=MAX_ALIASES)
    """Alias -> version, e.g. {champion: 1.4.0, canary: 1.5.0-rc.1}. Each must name an existing ModelVersion of
    this model (status condition AliasesResolved says which does not). Serving stacks resolve an alias through
    status.aliases."""
    archived: list[Semver] | None = Field(default=None, max_length=MAX_LISTED_VERSIONS)
    """Versions retired from use (state Archived); every other version is Active. An alias may not point at one."""


class VersionEntry(StatusModel):
    version: str
    model_version: str
    """Name of the ModelVersion object."""
    state: str
    """Active or Archived."""
    aliases: list[str] | None = None
    created_at: str | None = None
    eval_loss: float | None = None


class ResolvedAlias(StatusModel):
    version: str
    model_version: str
    uri: str | None = None
    """The version's artifact URI, for a serving stack that follows the alias."""


class RegisteredModelStatus(StatusModel):
    observed_generation: int | None = None
    version_count: int | None = None
    latest_version: str | None = None
    """The most recently registered version."""
    highest_version: str | None = None
    """The highest version by semver precedence."""
    versions: list[VersionEntry] | None = Field(default=None, max_length=MAX_LISTED_VERSIONS)
    """The versions, newest first (at most 256 are listed)."""
    aliases: dict[str, ResolvedAlias] | None = None
    """The aliases that resolve to a registered, active version."""
    conditions: list[Condition] | None = Field(
        default=None,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
