"""The job configuration the operator mounts into every trainer-image container (`/etc/finetune/job.json`).

The operator writes it once per job (an immutable ConfigMap) and both entrypoints read it with this model, so
the two sides cannot parse it differently. It holds the spec with every default applied and the in-pod paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from finetune_operator.api.base import API_VERSION, ApiModel
from finetune_operator.api.spec import FineTuningJobSpec

CONFIG_KEY = "job.json"
CONFIG_DIR = "/etc/finetune"
CONFIG_PATH = f"{CONFIG_DIR}/{CONFIG_KEY}"


class JobIdentity(ApiModel):
    name: str
    namespace: str
    uid: str = ""


class JobPaths(ApiModel):
    """Where things are inside the pods."""

    workspace: str
    """The job's workspace PVC."""
    source_glob: str
    """The session files curation reads (a glob under the mounted source, or under sourceStaging)."""
    source_staging: str | None = None
    """For dataset.source.s3: the workspace folder curation downloads the matching objects into first."""
    base_model: str | None = None
    """The base model folder; null for a builtin model."""


CHAMPION_ENV = "FINETUNE_CHAMPION"
CHAMPION_DIR = "/mnt/champion"


class Champion(ApiModel):
    """The version evaluation.compareTo resolved to when training started: the training pod's `FINETUNE_CHAMPION`
    (JSON). Its artifact's claim is mounted read-only at `/mnt/champion`."""

    model: str
    alias: str
    version: str
    model_version: str
    """Name of the ModelVersion object."""
    claim: str
    """The PersistentVolumeClaim holding its artifact."""
    path: str
    """The model folder inside the training pod."""
    adapter: bool = False
    """A LoRA adapter on the same base model as this job (checked by the operator)."""
    max_regression: float = 0.0


class JobConfig(ApiModel):
    """`/etc/finetune/job.json`."""

    api_version: str = Field(default=API_VERSION)
    job: JobIdentity
    spec: FineTuningJobSpec
    paths: JobPaths

    def to_wire(self) -> dict[str, Any]:
        wire = super().to_wire()
        wire["paths"] = self.paths.model_dump(by_alias=True, mode="json")  # baseModel: null says "builtin"
        return wire

    @classmethod
    def load(cls, path: Path) -> JobConfig:
        return cls.model_validate_json(path.read_bytes())

    @property
    def workspace(self) -> Path:
        return Path(self.paths.workspace)

    @property
    def base_model_path(self) -> Path | None:
        return Path(self.paths.base_model) if self.paths.base_model else None
