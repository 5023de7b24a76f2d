"""What the ModelVersion records of how a model was made: the hyperparameters training really used (every
default resolved, not only what the spec set) and the identity of the base model it started from."""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from enum import Enum
from pathlib import Path

from finetune_trainer.train.config import TrainConfig

# Recorded elsewhere on the ModelVersion (base model, dataset) or not a hyperparameter.
_NOT_HYPERPARAMETERS = {
    "base_model",
    "dataset_sha256",
    "precision_note",
    # How the run was decided, not what it ran with (batch_size and gradient_accumulation_steps are).
    "spec_batch",
    "memory_chooses_checkpointing",
    "memory_chooses_batch",
}
WEIGHT_INDEX = "model.safetensors.index.json"
# A safetensors header lists every tensor's name, dtype, shape and offsets; real ones are a few MiB at most.
MAX_HEADER_BYTES = 100 * 1024 * 1024


def resolved_hyperparameters(config: TrainConfig) -> dict[str, object]:
    """The resolved training configuration, camelCase like the API."""
    resolved: dict[str, object] = {}
    for key, value in dataclasses.asdict(config).items():
        if key in _NOT_HYPERPARAMETERS:
            continue
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        resolved[_camel(key)] = value
    return resolved


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def base_model_digest(folder: Path) -> str | None:
    """`sha256:` of the base model's config.json and weight index, None when it has no config.json.

    The index is model.safetensors.index.json for sharded weights, else the header of each .safetensors file
    (tensor names, dtypes, shapes, offsets): both identify the architecture and the weight layout without
    reading gigabytes of weights, so it is cheap for 70B models. Two folders with the same digest hold the same
    config and tensor layout; it does not prove identical weight values (the folder's own content digest does).
    """
    config = folder / "config.json"
    if not config.is_file():
        return None
    digest = hashlib.sha256()
    parts = [("config.json", config.read_bytes())]
    index = folder / WEIGHT_INDEX
    if index.is_file():
        parts.append((WEIGHT_INDEX, index.read_bytes()))
    else:
        parts += [(weights.name, _safetensors_header(weights)) for weights in sorted(folder.glob("*.safetensors"))]
    for name, content in parts:
        digest.update(name.encode("utf-8") + b"\n" + content + b"\n")
    return f"sha256:{digest.hexdigest()}"


def _safetensors_header(path: Path) -> bytes:
    # Format: an unsigned little-endian 64-bit header length, then the JSON header.
    with path.open("rb") as file:
        prefix = file.read(8)
        if len(prefix) < 8:
            return prefix
        (length,) = struct.unpack("<Q", prefix)
        return file.read(min(length, MAX_HEADER_BYTES))
