"""The ModelVersion's lineage from the trainer: resolved hyperparameters and the base model's identity."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from finetune_trainer.train import lineage

from .test_config import resolved


def write_model(folder: Path, hidden: int = 4, value: float = 0.0, layers: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"hidden_size": hidden, "num_hidden_layers": layers}))
    save_file({"embed.weight": torch.full((8, hidden), value)}, str(folder / "model.safetensors"))
    return folder


def test_digest_identifies_config_and_tensor_layout(tmp_path: Path) -> None:
    base = lineage.base_model_digest(write_model(tmp_path / "a"))
    assert base is not None and base.startswith("sha256:") and len(base) == 71
    assert lineage.base_model_digest(write_model(tmp_path / "same")) == base
    assert lineage.base_model_digest(write_model(tmp_path / "config", layers=3)) != base
    assert lineage.base_model_digest(write_model(tmp_path / "shape", hidden=6)) != base
    # Weight values are not read (70B models): the folder's content digest covers those.
    assert lineage.base_model_digest(write_model(tmp_path / "values", value=1.0)) == base


def test_digest_of_sharded_weights_uses_their_index(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "sharded")
    (folder / "model.safetensors").unlink()
    (folder / lineage.WEIGHT_INDEX).write_text(json.dumps({"weight_map": {"embed.weight": "model-00001.safetensors"}}))
    first = lineage.base_model_digest(folder)
    (folder / lineage.WEIGHT_INDEX).write_text(json.dumps({"weight_map": {"embed.weight": "model-00002.safetensors"}}))
    assert lineage.base_model_digest(folder) not in (None, first)


def test_no_config_no_digest(tmp_path: Path) -> None:
    assert lineage.base_model_digest(tmp_path) is None


def test_resolved_hyperparameters_include_the_defaults_the_spec_did_not_set() -> None:
    config = resolved({"method": "lora", "epochs": 1})
    recorded = lineage.resolved_hyperparameters(config)
    assert recorded["method"] == "lora" and recorded["epochs"] == 1
    assert recorded["batchSize"] == config.batch_size and recorded["loraR"] == config.lora_r
    assert recorded["precision"] == "fp32" and recorded["configHash"] == config.config_hash
    assert isinstance(recorded["loraTargetModules"], list | str)
    assert not {"baseModel", "datasetSha256", "precisionNote"} & set(recorded)
    json.dumps(recorded)  # it travels in the termination message
