"""Everything one curation run needs, from the job config (`finetune_operator.api.JobConfig`) and/or flags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune_operator.api import CurationSpec, DatasetSource

DEFAULT_MAX_MALFORMED_FRACTION = 0.1
DEFAULT_MAX_LINE_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class Settings:
    source_glob: str
    output_dir: Path
    curation: CurationSpec
    tokenizer: Path | None = None
    """A tokenizer.json to count tokens with; None means the byte estimate."""
    max_malformed_fraction: float = DEFAULT_MAX_MALFORMED_FRACTION
    """Fail the run (CurationFailed) when more than this share of lines is malformed."""
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    """Longer lines are counted malformed without being read into memory."""
    workers: int = 0
    """Assessment threads; 0 chooses from the usable CPUs and the input size."""
    source_description: str = ""
    """Where the sessions come from in the user's terms (the claim and path of spec.dataset.source)."""
    source_s3: dict[str, Any] | None = None
    """spec.dataset.source.s3 (wire format): its objects are downloaded to `source_staging` before curating."""
    source_staging: Path | None = None


def describe_source(source: DatasetSource) -> str:
    """spec.dataset.source as the user wrote it, for messages (the pod sees only its mount path)."""
    if source.s3 is not None:
        return source.s3.uri
    if source.config_map is not None:
        return f"key {source.config_map.key} of ConfigMap {source.config_map.name}"
    assert source.pvc is not None
    return f"path {source.pvc.path} on PersistentVolumeClaim {source.pvc.claim_name}"


def model_tokenizer(base_model: str | None) -> Path | None:
    """The base model's tokenizer.json, when the curation pod can see the model folder."""
    if not base_model:
        return None
    candidate = Path(base_model) / "tokenizer.json"
    return candidate if candidate.is_file() else None
