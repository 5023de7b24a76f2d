import dataclasses
from pathlib import Path

import pytest

from finetune_operator.api import FineTuningJobSpec, JobConfig, Precision
from finetune_trainer.train.config import (
    ALL_LINEAR,
    Device,
    TrainConfig,
    config_hash,
    hashed_fields,
    resolve,
    resolve_precision,
)

from .conftest import job_document, write_job

CPU = Device(cuda_devices=0, bf16_supported=False)
H100 = Device(cuda_devices=1, bf16_supported=True)
V100 = Device(cuda_devices=1, bf16_supported=False)


def spec(training: dict[str, object], **extra: object) -> FineTuningJobSpec:
    return FineTuningJobSpec.model_validate(job_document(Path("/w"), training, **extra)["spec"])


def resolved(training: dict[str, object], device: Device = CPU, **extra: object) -> TrainConfig:
    return resolve(spec(training, **extra), base_model_path=None, dataset_sha256="d" * 64, device=device)


def test_unset_fields_get_trainer_defaults() -> None:
    config = resolved({})
    assert (config.method.value, config.epochs, config.batch_size, config.gradient_accumulation_steps) == (
        "lora",
        3,
        8,
        1,
    )
    assert (config.learning_rate, config.max_seq_length, config.warmup_ratio, config.seed) == (2e-4, 1024, 0.03, 42)
    assert (config.lora_r, config.lora_alpha, config.lora_dropout) == (16, 32, 0.0)
    assert config.lora_target_modules == ALL_LINEAR
    assert config.base_model == "builtin:tiny-gpt"
    assert config.precision == "fp32"


def test_full_fine_tuning_defaults_to_a_smaller_learning_rate() -> None:
    assert resolved({"method": "full"}).learning_rate == 2e-5


def test_explicit_values_win() -> None:
    config = resolved(
        {
            "learningRate": 0.01,
            "batchSize": 2,
            "warmupRatio": 0.0,
            "seed": 0,
            "lora": {"r": 4, "targetModules": ["q_proj"]},
        }
    )
    assert (config.learning_rate, config.batch_size, config.warmup_ratio, config.seed) == (0.01, 2, 0.0, 0)
    assert (config.lora_r, config.lora_alpha, config.lora_target_modules) == (4, 8, ("q_proj",))


@pytest.mark.parametrize(
    ("requested", "device", "expected", "has_note"),
    [
        (Precision.AUTO, CPU, "fp32", False),
        (Precision.AUTO, H100, "bf16", False),
        (Precision.AUTO, V100, "fp16", False),
        (Precision.BF16, V100, "fp16", True),
        (Precision.FP16, CPU, "fp32", True),
        (Precision.BF16, CPU, "bf16", False),
        (Precision.FP32, H100, "fp32", False),
    ],
)
def test_precision(requested: Precision, device: Device, expected: str, has_note: bool) -> None:
    precision, note = resolve_precision(requested, device)
    assert precision == expected
    assert (note is not None) == has_note


def test_hash_is_stable_and_ignores_what_does_not_change_training() -> None:
    first = resolved({"epochs": 2})
    assert first.config_hash == resolved({"epochs": 2}).config_hash == config_hash(first)
    assert (
        dataclasses.replace(first, save_steps=7, keep_checkpoints=1, max_eval_loss=2.0).config_hash == first.config_hash
    )
    assert config_hash(dataclasses.replace(first, save_steps=7, max_eval_loss=1.0)) == first.config_hash


@pytest.mark.parametrize(
    "change",
    [
        {"learning_rate": 0.1},
        {"epochs": 9},
        {"dataset_sha256": "e" * 64},
        {"world_size": 2},
        {"precision": "bf16"},
        {"quantization": "4bit"},
    ],
)
def test_hash_changes_with_anything_that_changes_training(change: dict[str, object]) -> None:
    config = resolved({})
    assert config_hash(dataclasses.replace(config, **change)) != config.config_hash  # type: ignore[arg-type]


def test_gradient_checkpointing_defaults_to_on_with_gpus_and_is_not_hashed() -> None:
    assert (resolved({}, H100).gradient_checkpointing, resolved({}).gradient_checkpointing) == (True, False)
    assert resolved({"gradientCheckpointing": False}, H100).gradient_checkpointing is False
    assert resolved({"gradientCheckpointing": True}).gradient_checkpointing is True
    assert resolved({"gradientCheckpointing": True}).config_hash == resolved({}).config_hash


def test_quantization_is_resolved() -> None:
    assert resolved({}).quantization == "none"
    assert resolved({"quantization": "8bit"}).quantization == "8bit"


def test_an_unquantized_config_hashes_as_before_quantization_existed() -> None:
    """Checkpoints written by a trainer without training.quantization still resume (the same hashed fields)."""
    assert "quantization" not in hashed_fields(resolved({}))
    assert hashed_fields(resolved({"quantization": "4bit"}))["quantization"] == "4bit"


EIGHT_H100 = Device(cuda_devices=8, bf16_supported=True, world_size=8)
TWO_CPU_RANKS = Device(cuda_devices=0, bf16_supported=False, world_size=2)


@pytest.mark.parametrize(
    ("training", "device", "expected"),
    [
        ({"method": "full"}, EIGHT_H100, "fsdp"),  # auto: full fine-tuning on several GPUs
        ({"method": "lora"}, EIGHT_H100, "none"),  # auto: LoRA replicates the frozen base only
        ({"method": "full"}, TWO_CPU_RANKS, "none"),  # auto: CPU ranks stay as they were
        ({"method": "full"}, H100, "none"),  # one rank: nothing to shard across
        ({"method": "full", "sharding": "fsdp"}, H100, "none"),
        ({"method": "full", "sharding": "none"}, EIGHT_H100, "none"),
        ({"method": "lora", "sharding": "fsdp"}, TWO_CPU_RANKS, "fsdp"),
    ],
)
def test_sharding_is_resolved(training: dict[str, object], device: Device, expected: str) -> None:
    assert resolved(training, device).sharding == expected


def test_sharding_is_hashed_only_when_sharded() -> None:
    """Sharded checkpoints are another format; unsharded runs still resume from checkpoints of older trainers."""
    assert "sharding" not in hashed_fields(resolved({"method": "full"}, TWO_CPU_RANKS))
    assert hashed_fields(resolved({"method": "full"}, EIGHT_H100))["sharding"] == "fsdp"


def test_world_size_is_part_of_the_config() -> None:
    assert resolved({}, Device(cuda_devices=4, bf16_supported=True, world_size=4)).world_size == 4
    assert resolved({}).world_size == 1


def test_job_config_loads_the_mounted_job_json(tmp_path: Path) -> None:
    job = JobConfig.load(write_job(tmp_path, {"epochs": 1}, evaluation={"maxEvalLoss": 3.5}))
    assert (job.job.name, job.job.namespace, job.workspace, job.base_model_path) == ("demo", "ml", tmp_path, None)
    assert job.spec.evaluation.max_eval_loss == 3.5


def test_the_memory_plan_chooses_what_the_spec_leaves_open_on_gpus() -> None:
    chooses = resolved({}, H100)
    assert (chooses.memory_chooses_checkpointing, chooses.memory_chooses_batch) == (True, True)
    assert (resolved({}).memory_chooses_checkpointing, resolved({}).memory_chooses_batch) == (False, False)
    set_in_spec = resolved({"gradientCheckpointing": True, "batchSize": 8}, H100)
    assert (set_in_spec.memory_chooses_checkpointing, set_in_spec.memory_chooses_batch) == (False, False)


def test_no_micro_batch_is_chosen_when_ranks_span_nodes() -> None:
    """2 nodes of 8 GPUs: 16 ranks, 8 GPUs here. Another node's GPUs may be another model, whose memory would choose
    other accumulation steps: DDP ranks running different micro-batch counts per step wait for each other forever."""
    two_nodes = resolved({}, Device(cuda_devices=8, bf16_supported=True, world_size=16))
    assert (two_nodes.memory_chooses_checkpointing, two_nodes.memory_chooses_batch) == (True, False)
    one_pod = resolved({}, Device(cuda_devices=8, bf16_supported=True, world_size=8))
    assert one_pod.memory_chooses_batch is True
