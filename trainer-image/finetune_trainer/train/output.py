"""The final model in workspace/model/: safetensors in Hugging Face format, tokenizer, metadata.json.

For LoRA the adapter is the primary artifact (`adapter_model.safetensors` + `adapter_config.json`
pointing at the base model). The adapter merged into the base weights is also written to
`model/merged/` when that copy is small (at most `MERGE_LIMIT_BYTES`, e.g. every builtin or
sub-1B model): it loads with plain `AutoModelForCausalLM`. For large bases the merged copy would
double the workspace's size for something servers such as vLLM do not need (they load adapters
directly), so it is skipped and `metadata.json`/the termination message say `merged: false`.

The folder is built next to its destination and renamed into place, so `model/` is either the
complete output of one attempt or absent.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

MERGE_LIMIT_BYTES = 2 * 1024**3
METADATA_FILE = "metadata.json"
MERGED_DIR = "merged"
_LIBRARIES = ("torch", "transformers", "trl", "peft")


def should_merge(parameter_count: int, bytes_per_parameter: int) -> bool:
    return parameter_count * bytes_per_parameter <= MERGE_LIMIT_BYTES


def save_model(
    model: Any,
    tokenizer: Any,
    target: Path,
    *,
    adapter: bool,
    merge: bool,
    metadata: dict[str, object],
    dtype: Any = None,
) -> dict[str, object]:
    """Write the model (and for LoRA optionally the merged copy) and its metadata.json; returns the `model` block.

    `dtype`: what full models are saved in (the training precision: fp32 master weights would
    double the size of what servers load in bf16 anyway); the model is cast in place, as
    nothing uses it afterwards. Adapters keep their own dtype.

    metadata.json is written into the staging folder too, before the rename: written afterwards, a
    full volume could leave a `model/` without it.
    """
    block: dict[str, object] = {
        "path": target.name,
        "format": "safetensors",
        "adapter": adapter,
        "merged": adapter and merge,
    }
    staging = Path(tempfile.mkdtemp(prefix=".model-", dir=target.parent))
    try:
        if dtype is not None and not adapter:
            model.to(dtype)
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        if adapter and merge:
            # Merging folds the adapter into the base weights in place: it must come last.
            merged = model.merge_and_unload()
            merged.save_pretrained(staging / MERGED_DIR, safe_serialization=True)
            tokenizer.save_pretrained(staging / MERGED_DIR)
        write_metadata(staging, {**metadata, "model": block})
        if target.exists():
            # A previous attempt's output: this attempt trained on from its checkpoint and supersedes it.
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return block


def write_metadata(target: Path, document: dict[str, object]) -> None:
    stamped = {
        **document,
        "createdAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "libraries": {name: metadata.version(name) for name in _LIBRARIES},
    }
    (target / METADATA_FILE).write_text(json.dumps(stamped, indent=2, sort_keys=True), encoding="utf-8")
