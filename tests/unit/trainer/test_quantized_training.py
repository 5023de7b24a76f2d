"""QLoRA (4-bit NF4, double quantization) and 8-bit LoRA on CPU: bitsandbytes' CPU kernels, the real entrypoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from .conftest import FAST_TRAINING, write_dataset, write_job
from .test_training_runs import Run, finish, start

PROMPT = "### Instruction:\nRun these steps in reverse order: lint build\n\n### Response:\n"


def quantized_run(tmp_path_factory: pytest.TempPathFactory, quantization: str) -> Run:
    workspace = tmp_path_factory.mktemp(f"quantized-{quantization}")
    # Two held-out samples, not test_training_runs' eight (the same 48 training rows: one seed): the final
    # evaluation answers each one greedily, token by token through bitsandbytes' CPU kernels, which took 56-68 s of
    # a ~95 s run for eight on the loaded 2-core VM. What these tests check (training, the saved adapter) does not
    # depend on how many are scored.
    write_dataset(workspace, train=48, evaluation=2)
    write_job(workspace, {**FAST_TRAINING, "quantization": quantization})
    return finish(workspace, start(workspace))


@pytest.fixture(scope="module", params=["4bit", "8bit"])
def quantized(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Run]:
    return request.param, quantized_run(tmp_path_factory, request.param)


@pytest.mark.slow  # a ~40 s training subprocess per quantization
def test_quantized_lora_trains_and_saves_only_the_adapter(quantized: tuple[str, Run]) -> None:
    quantization, run = quantized
    assert run.returncode == 0, run.events[-3:]
    assert run.termination["model"] == {"path": "model", "format": "safetensors", "adapter": True, "merged": False}
    assert not (run.workspace / "model" / "merged").exists()
    losses = list(run.losses().values())
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.8 * first, losses
    config = next(event for event in run.events if event.get("event") == "config")
    assert config["quantization"] == quantization
    plan = next(event for event in run.events if event.get("event") == "memory_plan")
    assert plan["estimatedGib"] > 0 and "deviceGib" not in plan  # CPU: estimated, never refused


@pytest.mark.slow
def test_the_adapter_loads_back_on_the_quantized_base_and_generates(quantized: tuple[str, Run]) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization, run = quantized
    folder = run.workspace / "model"
    adapter_config = json.loads((folder / "adapter_config.json").read_text())
    bitsandbytes: Any = (
        BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True)
        if quantization == "4bit"
        else BitsAndBytesConfig(load_in_8bit=True)
    )
    base = AutoModelForCausalLM.from_pretrained(
        Path(adapter_config["base_model_name_or_path"]),
        local_files_only=True,
        quantization_config=bitsandbytes,
        device_map={"": "cpu"},
    )
    assert getattr(base, f"is_loaded_in_{quantization}")
    model = PeftModel.from_pretrained(base, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    prompt = tokenizer(PROMPT, return_tensors="pt")
    generated = model.generate(**prompt, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert generated.shape[1] > prompt["input_ids"].shape[1]
