"""training.compile: decoder layers compiled while training (train/compiled.py), on CPU with inductor for real."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from finetune_trainer.train import compiled, data, run
from finetune_trainer.train.collate import PackedRowsCollator
from finetune_trainer.train.config import Device, TrainConfig, config_hash, resolve
from finetune_trainer.train.modelio import load_model, load_tokenizer

from .conftest import write_dataset
from .test_config import CPU, H100, resolved, spec
from .test_memory import four_layer_tiny_model

TWO_H100 = Device(cuda_devices=2, bf16_supported=True, world_size=2)


@pytest.mark.parametrize(
    ("training", "device", "expected"),
    [
        ({}, H100, True),
        ({}, CPU, False),
        ({"quantization": "4bit"}, H100, False),  # bitsandbytes' matmuls break the graph
        ({"method": "full"}, TWO_H100, False),  # auto sharding: fsdp
        ({"method": "full"}, H100, True),
        ({"compile": True}, CPU, True),
        ({"compile": False}, H100, False),
    ],
)
def test_compile_defaults_to_gpus_without_quantization_or_sharding(
    training: dict[str, object], device: Device, expected: bool
) -> None:
    assert resolved(training, device).compile is expected


def test_compiling_does_not_change_the_config_hash() -> None:
    config = resolved({"compile": True}, H100)
    assert config_hash(replace(config, compile=False)) == config.config_hash == resolved({}, H100).config_hash


def test_rows_are_padded_to_the_fixed_width() -> None:
    batch = PackedRowsCollator(pad_token_id=1, width=6)([{"input_ids": [5, 6, 7], "seq_lengths": [3]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 1, 1, 1]]


def train(model_dir: Path, workspace: Path, config: TrainConfig) -> tuple[Any, list[float]]:
    dataset = data.load_dataset(workspace / "dataset")
    trainer = run.build_trainer(
        model=load_model(model_dir, config),
        tokenizer=load_tokenizer(model_dir),
        config=config,
        train=[data.to_record(sample, chat=False) for sample in dataset.train],  # type: ignore[arg-type]
        evaluation_records=[data.to_record(sample, chat=False) for sample in dataset.eval],  # type: ignore[arg-type]
        output_dir=workspace / ("compiled" if config.compile else "eager"),
        callbacks=[],
    )
    run.fit(trainer, config, None)
    return trainer, [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


@pytest.mark.slow  # inductor compiles the layer's forward and backward to C++ with the system compiler: minutes here
def test_compiled_layers_train_like_eager_ones_from_one_graph(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch._dynamo
    from torch._dynamo.utils import counters

    model_dir = four_layer_tiny_model(tiny_model_dir, tmp_path / "tiny-4")
    write_dataset(tmp_path, train=16, evaluation=2)
    config = resolve(
        # One row per micro-batch: every batch has the same shape (with more, an epoch's last batch may have fewer
        # rows, which compiles once more).
        spec({"batchSize": 1, "maxSeqLength": 64, "epochs": 1, "compile": True}),
        base_model_path=None,
        dataset_sha256="d" * 64,
        device=CPU,
    )
    _, eager_losses = train(model_dir, tmp_path, replace(config, compile=False))
    torch._dynamo.reset()
    counters.clear()
    trainer, compiled_losses = train(model_dir, tmp_path, config)

    assert len(compiled_losses) == len(eager_losses) >= 2
    torch.testing.assert_close(compiled_losses, eager_losses, rtol=1e-3, atol=1e-4)
    # Two graphs for the four layers and every step: the first layer's input needs no gradient (the embedding is
    # frozen), the others' does. No recompile per layer (their parameters are graph inputs) or per batch (one
    # width), and nothing fell back to eager.
    assert counters["stats"]["unique_graphs"] == 2 and not counters["graph_break"]
    layers = compiled.decoder_layers(trainer.model)
    assert len(layers) == 4 and all(layer._compiled_call_impl is None for layer in layers)  # eager again
