"""What the trainer concludes about the hardware it runs on, with the CUDA queries of a given GPU."""

from types import SimpleNamespace

import pytest
import torch

from finetune_trainer.train.run import detect_device


def test_a_gpu_that_only_emulates_bf16_gets_fp16(monkeypatch: pytest.MonkeyPatch) -> None:
    """A T4 (compute capability 7.5) runs bf16 tensors through emulation: torch's default check says yes."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(major=7, minor=5))
    monkeypatch.setattr(torch.cuda, "_check_bf16_tensor_supported", lambda device: True)
    assert torch.cuda.is_bf16_supported()  # what the trainer used to ask
    assert detect_device({}).bf16_supported is False
