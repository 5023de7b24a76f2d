"""Activation recompute and compiled layers on CPU: CPU seconds per training step, as ratios in the same run.

    python bench/trainer/layers.py [--hidden 256] [--layers 4] [--rows 4] [--width 256] [--steps 6]

What the trainer's two issue-22 levers cost or save on the hardware we have (a CPU), through the calls the
trainer makes: transformers' `activation_checkpointing_enable(every_n_layers=...)` (as `training.gradient
Checkpointing` resolved by the memory plan sets it through the Trainer) and `train/compiled.py`'s
`nn.Module.compile` of each decoder layer (inductor, C++ on CPU). Model: tiny-gpt's Llama shapes at `--hidden` /
`--layers` with a 512-token vocabulary, LoRA r=16 on every linear layer, fp32, `--rows` packed rows of `--width`
tokens per step. Per setting: 2 warm-up steps (wall seconds reported: the compile, for the compiled one), then
`--steps` steps timed with the process's CPU time. Ratios are against eager without recompute. A CPU says
nothing about a GPU's ratios (no fused kernels to gain on memory bandwidth the same way, no tensor cores):
docs/trainer.md carries the GPU estimate.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

# Run as a script, only bench/trainer/ is on sys.path: add the repository (the bench package).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from finetune_trainer.train import compiled

SETTINGS = ("eager, no recompute", "eager, every other layer", "eager, every layer", "compiled, no recompute")


def build(hidden: int, layers: int, every: int | None) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=512,
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        num_key_value_heads=max(1, hidden // 64),
    )
    torch.manual_seed(0)
    base = LlamaForCausalLM(config)
    if every is not None:
        base.activation_checkpointing_enable(every_n_layers=every)
    model = get_peft_model(base, LoraConfig(r=16, target_modules="all-linear", lora_dropout=0.0))
    model.train()
    return model


def step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ids: torch.Tensor) -> None:
    positions = torch.arange(ids.shape[1]).repeat(ids.shape[0], 1)
    loss = model(input_ids=ids, position_ids=positions, labels=ids, use_cache=False).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def measure(setting: str, arguments: argparse.Namespace) -> tuple[float, float]:
    """(CPU seconds per step, wall seconds of the 2 warm-up steps: inductor compiles C++ in worker processes,
    whose CPU this process's clock does not see)."""
    every = {"every other layer": 2, "every layer": 1}.get(setting.split(", ")[1])
    model = build(arguments.hidden, arguments.layers, every)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, 512, (arguments.rows, arguments.width), generator=torch.Generator().manual_seed(1))
    with compiled.during_training(model, setting.startswith("compiled")):
        started = time.monotonic()
        for _ in range(2):
            step(model, optimizer, ids)
        warm_up = time.monotonic() - started
        warm = time.process_time()
        for _ in range(arguments.steps):
            step(model, optimizer, ids)
        return (time.process_time() - warm) / arguments.steps, warm_up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--steps", type=int, default=6)
    arguments = parser.parse_args()
    results = {setting: measure(setting, arguments) for setting in SETTINGS}
    baseline = results[SETTINGS[0]][0]
    print(f"{'setting':28} {'CPU s/step':>10} {'ratio':>6} {'warm-up wall s':>14}")
    for setting, (per_step, warm_up) in results.items():
        print(f"{setting:28} {per_step:10.3f} {per_step / baseline:6.2f} {warm_up:14.1f}")


if __name__ == "__main__":
    main()
