"""Everything one curation run needs, from the job config (/etc/finetune/job.json) and/or flags."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune_operator.api import CurationSpec

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


@dataclass(frozen=True, slots=True)
class JobConfig:
    source_glob: str
    workspace: Path
    curation: CurationSpec
    tokenizer: Path | None
    job: dict[str, Any]


def read_job_config(path: Path) -> JobConfig:
    """Parse the operator-written job config; a bad one is the operator's bug (an internal error)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    paths = document["paths"]
    curation = CurationSpec.model_validate(document["spec"]["dataset"].get("curation") or {})
    return JobConfig(
        source_glob=paths["sourceGlob"],
        workspace=Path(paths["workspace"]),
        curation=curation,
        tokenizer=_model_tokenizer(paths.get("baseModel")),
        job=document.get("job") or {},
    )


def _model_tokenizer(base_model: str | None) -> Path | None:
    if not base_model:
        return None
    candidate = Path(base_model) / "tokenizer.json"
    return candidate if candidate.is_file() else None
