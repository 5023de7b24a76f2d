"""The memory plan at run time (train/memory.py): refused before any weight loads, reported in status."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from finetune_operator.api.contract import Reason
from finetune_operator.api.memorychoice import SAFETY_MARGIN
from finetune_operator.api.memoryplan import GIB, estimate
from finetune_trainer import report
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import data, memory, run
from finetune_trainer.train.config import Device, TrainConfig, config_hash, hashed_fields, resolve
from finetune_trainer.train.modelio import load_model, load_tokenizer

from .conftest import write_dataset
from .test_config import spec

H100 = Device(cuda_devices=1, bf16_supported=True)


def config_for(training: dict[str, object]) -> TrainConfig:
    return resolve(spec(training), base_model_path=None, dataset_sha256="d" * 64, device=H100)


def recording_reporter() -> tuple[report.Reporter, list[dict[str, object]]]:
    sent: list[dict[str, object]] = []
    return report.Reporter(send=sent.append), sent


def test_a_job_too_big_for_the_gpu_is_refused_with_the_cheapest_change(tiny_model_dir: Path) -> None:
    config = config_for({"batchSize": 64, "maxSeqLength": 4096})
    reporter, sent = recording_reporter()
    with pytest.raises(JobFailed) as failure:
        memory.check(tiny_model_dir, config, device_memory=2 * GIB, reporter=reporter)
    assert failure.value.reason is Reason.INSUFFICIENT_GPU_MEMORY
    message = str(failure.value)
    assert "GiB per GPU" in message and "2.0 GiB available: use training.batchSize: " in message
    # The estimate reached the status before the refusal.
    assert sent[0]["status"]["memoryPlan"]["deviceGib"] == 2.0  # type: ignore[index]


def test_a_job_that_fits_reports_its_estimate_with_the_first_training_report(tiny_model_dir: Path) -> None:
    reporter, sent = recording_reporter()
    memory.check(tiny_model_dir, config_for({}), device_memory=80 * GIB, reporter=reporter)
    assert sent == []  # no write of its own
    reporter.report({"status": {"progress": {"step": 1}}}, "Training", 0.0)
    assert sent[0]["status"]["progress"] == {"step": 1}  # type: ignore[index]
    plan = sent[0]["status"]["memoryPlan"]  # type: ignore[index]
    assert 1.0 < plan["estimatedGib"] < 2.0 and plan["deviceGib"] == 80.0
    # Unset on a GPU, and the tiny model's activations fit: no recompute, the default micro-batch.
    assert (plan["gradientCheckpointing"], plan["batchSize"], plan["gradientAccumulationSteps"]) == (False, 8, 1)
    assert plan["choice"].startswith("activation checkpointing off, micro-batch 8 x 1 accumulation steps: ~")


def test_what_the_spec_sets_is_kept(tiny_model_dir: Path) -> None:
    config = config_for({"gradientCheckpointing": True, "batchSize": 8})
    assert memory.check(tiny_model_dir, config, device_memory=80 * GIB, reporter=None) == config


def device_between(
    tiny_model_dir: Path, config: TrainConfig, fits: dict[str, object], too_big: dict[str, object]
) -> int:
    """Device bytes on which `config` changed by `fits` fits with the margin and changed by `too_big` does not."""
    shape = memory.read_shape(tiny_model_dir)
    assert shape is not None
    plan = memory.training_plan(config)
    device = int(estimate(shape, replace(plan, **fits)).total / (1 - SAFETY_MARGIN)) + 1  # type: ignore[arg-type]
    assert estimate(shape, replace(plan, **too_big)).total > device * (1 - SAFETY_MARGIN)  # type: ignore[arg-type]
    return device


def test_a_lowered_micro_batch_keeps_the_rows_per_step_and_the_config_hash(tiny_model_dir: Path) -> None:
    config = config_for({"gradientCheckpointing": False, "maxSeqLength": 4096})
    device = device_between(tiny_model_dir, config, fits={"micro_batch": 2}, too_big={"micro_batch": 3})
    chosen = memory.check(tiny_model_dir, config, device_memory=device, reporter=None)
    assert (chosen.batch_size, chosen.gradient_accumulation_steps) == (2, 4)
    # A resume on a GPU with more memory (8 x 1) or less finds the same hash in the checkpoint.
    assert hashed_fields(chosen) == hashed_fields(config) and config_hash(chosen) == config.config_hash


def four_layer_tiny_model(tiny_model_dir: Path, folder: Path) -> Path:
    """The tiny model with 4 layers: with 2, checkpointing every other layer saves nothing (the layer being
    recomputed costs what the unsaved one would have), so the plan never chooses it."""
    from transformers import AutoConfig, LlamaForCausalLM

    shutil.copytree(tiny_model_dir, folder)
    model_config = AutoConfig.from_pretrained(tiny_model_dir)
    model_config.num_hidden_layers = 4
    torch.manual_seed(0)
    LlamaForCausalLM(model_config).save_pretrained(folder)
    return folder


def test_the_trainer_checkpoints_the_layers_the_memory_plan_chose(tiny_model_dir: Path, tmp_path: Path) -> None:
    """On a GPU pretended by its memory, between what every-other-layer and no checkpointing need: the Trainer
    recomputes layers 0 and 2 of the four in the backward pass (their MLP runs twice per micro-batch)."""
    tiny_model_dir = four_layer_tiny_model(tiny_model_dir, tmp_path / "tiny-4")
    config = config_for({"batchSize": 8, "maxSeqLength": 64, "epochs": 1})
    device = device_between(
        tiny_model_dir,
        config,
        fits={"gradient_checkpointing": True, "checkpoint_every": 2},
        too_big={"gradient_checkpointing": False},
    )
    chosen = memory.check(tiny_model_dir, config, device_memory=device, reporter=None)
    assert (chosen.gradient_checkpointing, chosen.checkpoint_every) == (True, 2)
    chosen = replace(chosen, precision="fp32")  # the CPU's precision: what is tested is the checkpointing
    write_dataset(tmp_path, train=8, evaluation=2)
    dataset = data.load_dataset(tmp_path / "dataset")
    model = load_model(tiny_model_dir, chosen)
    trainer = run.build_trainer(
        model=model,
        tokenizer=load_tokenizer(tiny_model_dir),
        config=chosen,
        train=[data.to_record(sample, chat=False) for sample in dataset.train],
        evaluation_records=[data.to_record(sample, chat=False) for sample in dataset.eval],
        output_dir=tmp_path / "out",
        callbacks=[],
    )
    forwards = [0, 0, 0, 0]
    for index, layer in enumerate(trainer.model.get_base_model().model.layers):
        # Inside the layer (transformers checkpoints the layer's forward, so its own hooks run once either way), and
        # before the MLP: torch stops a recompute once it has the last tensor the backward needs, within the MLP.
        layer.mlp.register_forward_pre_hook(lambda *_, index=index: forwards.__setitem__(index, forwards[index] + 1))
    run.fit(trainer, chosen, None)
    micro_batches = trainer.state.global_step * chosen.gradient_accumulation_steps
    assert micro_batches > 0 and forwards == [2 * micro_batches, micro_batches] * 2


def test_on_cpu_nothing_is_refused(tiny_model_dir: Path) -> None:
    memory.check(tiny_model_dir, config_for({"batchSize": 4096}), device_memory=None, reporter=None)


def test_an_unreadable_config_is_skipped_not_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "unknown"}))
    memory.check(tmp_path, config_for({"batchSize": 4096}), device_memory=GIB, reporter=None)
