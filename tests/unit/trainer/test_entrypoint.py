"""How `python -m finetune_trainer.train` turns outcomes into exit codes and termination messages."""

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import __main__ as entrypoint
from finetune_trainer.train import run as run_module
from finetune_trainer.train.run import Interrupted

from .conftest import write_job


def run_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, outcome: Any) -> tuple[int, dict[str, Any] | None]:
    def fake_run(*args: object) -> dict[str, object]:
        if isinstance(outcome, BaseException):
            raise outcome
        return dict(outcome)

    monkeypatch.setattr(run_module, "run", fake_run)
    monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(tmp_path / "termination-log"))
    code = entrypoint.main(["--config", str(write_job(tmp_path, {}))])
    message = tmp_path / "termination-log"
    return code, json.loads(message.read_text()) if message.exists() else None


def test_cuda_out_of_memory_is_an_internal_error_with_advice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, message = run_with(
        monkeypatch, tmp_path, torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
    )
    assert code == 20
    assert message is not None and message["reason"] == "OutOfMemory" and message["failureKind"] == "System"
    assert message["message"].startswith("the GPU ran out of memory on rank 0 allocating 2 GiB, at micro-batches of")
    assert "batchSize" in message["message"]


def test_a_collective_failure_says_the_ranks_lost_contact(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    error = torch.distributed.DistBackendError("NCCL error in: ProcessGroupNCCL.cpp:1970, remote process exited")
    code, message = run_with(monkeypatch, tmp_path, error)
    assert code == 20
    assert message is not None and (message["reason"], message["failureKind"]) == ("RanksLostContact", "System")
    assert message["message"].startswith("rank 0 lost contact with the other ranks (DistBackendError: NCCL error")


def test_unexpected_errors_exit_20(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, message = run_with(monkeypatch, tmp_path, RuntimeError("boom"))
    assert (code, message and message["message"]) == (20, "RuntimeError: boom")


def test_job_failures_exit_with_their_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, message = run_with(monkeypatch, tmp_path, JobFailed(Reason.INVALID_MODEL, "no config.json"))
    assert code == 11
    assert message == {
        "outcome": "Failed",
        "reason": "InvalidModel",
        "failureKind": "User",
        "message": "no config.json",
    }


def test_sigterm_stop_exits_143_without_a_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert run_with(monkeypatch, tmp_path, Interrupted("stopped at step 3")) == (143, None)


def test_success_writes_the_payload(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    payload = {"outcome": "Succeeded", "metrics": {"evalLoss": 1.0}}
    assert run_with(monkeypatch, tmp_path, payload) == (0, payload)


def test_fewer_visible_gpus_than_requested_fail_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On this CPU machine torch sees no GPU: a pod given one must not fall back to training on the CPU."""
    monkeypatch.setenv("FINETUNE_EXPECTED_GPUS", "1")
    monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(tmp_path / "termination-log"))
    code = entrypoint.main(["--config", str(write_job(tmp_path, {}))])
    message = json.loads((tmp_path / "termination-log").read_text())
    assert (code, message["reason"], message["failureKind"]) == (20, "GPUsNotVisible", "System")
    assert "torch sees 0 GPU(s)" in message["message"] and "driver" in message["message"]
    assert f"CUDA {torch.version.cuda}" in message["message"]


def test_the_driver_version_is_read_from_the_kernel_module(tmp_path: Path) -> None:
    from finetune_trainer.train import gpus

    version = tmp_path / "version"
    version.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n")
    assert gpus.driver_version(version) == "550.54.15"
    assert gpus.driver_version(tmp_path / "absent").startswith("unknown")
    assert "needs NVIDIA driver >= 580" in gpus.not_visible_message(1, 0, "13.0", "550.54.15", None)
