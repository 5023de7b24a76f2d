"""The memory plan at run time (train/memory.py): refused before any weight loads, reported in status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune_operator.api.contract import Reason
from finetune_operator.api.memoryplan import GIB
from finetune_trainer import report
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import memory
from finetune_trainer.train.config import Device, resolve

from .test_config import spec

H100 = Device(cuda_devices=1, bf16_supported=True)


def config_for(training: dict[str, object]) -> object:
    return resolve(spec(training), base_model_path=None, dataset_sha256="d" * 64, device=H100)


def recording_reporter() -> tuple[report.Reporter, list[dict[str, object]]]:
    sent: list[dict[str, object]] = []
    return report.Reporter(send=sent.append), sent


def test_a_job_too_big_for_the_gpu_is_refused_with_the_cheapest_change(tiny_model_dir: Path) -> None:
    config = config_for({"batchSize": 64, "maxSeqLength": 4096})
    reporter, sent = recording_reporter()
    with pytest.raises(JobFailed) as failure:
        memory.check(tiny_model_dir, config, device_memory=2 * GIB, reporter=reporter)  # type: ignore[arg-type]
    assert failure.value.reason is Reason.INSUFFICIENT_GPU_MEMORY
    message = str(failure.value)
    assert "GiB per GPU" in message and "2.0 GiB available: use training.batchSize: " in message
    # The estimate reached the status before the refusal.
    assert sent[0]["status"]["memoryPlan"]["deviceGib"] == 2.0  # type: ignore[index]


def test_a_job_that_fits_reports_its_estimate(tiny_model_dir: Path) -> None:
    reporter, sent = recording_reporter()
    memory.check(tiny_model_dir, config_for({}), device_memory=80 * GIB, reporter=reporter)  # type: ignore[arg-type]
    plan = sent[0]["status"]["memoryPlan"]  # type: ignore[index]
    assert 1.0 < plan["estimatedGib"] < 2.0 and plan["deviceGib"] == 80.0 and plan["gradientCheckpointing"] is True


def test_on_cpu_nothing_is_refused(tiny_model_dir: Path) -> None:
    memory.check(tiny_model_dir, config_for({"batchSize": 4096}), device_memory=None, reporter=None)  # type: ignore[arg-type]


def test_an_unreadable_config_is_skipped_not_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "unknown"}))
    memory.check(tmp_path, config_for({"batchSize": 4096}), device_memory=GIB, reporter=None)  # type: ignore[arg-type]
