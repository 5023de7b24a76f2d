"""A few optimizer steps on a CUDA GPU, for the first machine that has one: tokens/s and peak memory.

    make gpu-smoke                                     # tiny-gpt, then a 1B-class Llama
    python bench/trainer/gpu_smoke.py --configs 1b --steps 20
    python bench/trainer/gpu_smoke.py --allow-cpu --configs tiny --steps 3   # the same code on a CPU

Each config trains through the trainer's own pieces, as a training pod does: the device and precision
detection, the attention kernel choice (varlen flash on Ampere+ in bf16/fp16, else SDPA), loading straight onto
the GPU, LoRA with PEFT's input cast off under autocast, TRL packing and our collators, fused AdamW and
activation checkpointing on CUDA. Nothing is downloaded: the 1B-class model has Llama-3.2-1B's shapes
(16 layers, hidden 2048, FFN 8192, 32/8 heads, vocabulary 128256) with random weights, and a small tokenizer
trained on the synthetic data (its ids use only the first rows of the embedding; the compute is the same).
Printed per config, one JSON line: device, precision, attention kernel, tokens/s over the steps after the
first two (warm-up: kernel selection, allocator growth), and peak GPU memory allocated and reserved.
Compare the 1B figure with docs/trainer.md's estimate scaled by parameters (an 8B estimate x ~6.5).
Exit 2 without CUDA unless --allow-cpu.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")  # as the trainer image sets it
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Run as a script, only bench/trainer/ is on sys.path: add the repository (the bench package).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch
from transformers import LlamaConfig, LlamaForCausalLM, TrainerCallback
from transformers.utils import logging as hf_logging

from bench.trainer.run import synthetic_samples
from finetune_operator.api import FineTuningJobSpec
from finetune_trainer.train import data, run, tinygpt
from finetune_trainer.train.collate import TokenCount
from finetune_trainer.train.config import TrainConfig, resolve
from finetune_trainer.train.modelio import load_tokenizer

WARMUP_STEPS = 2


@dataclass(frozen=True)
class SmokeConfig:
    batch_size: int
    max_seq_length: int
    samples: int


CONFIGS = {
    "tiny": SmokeConfig(batch_size=8, max_seq_length=512, samples=600),
    "1b": SmokeConfig(batch_size=2, max_seq_length=2048, samples=2400),
}


def build_1b_class(folder: Path, corpus: list[str], seed: int) -> Path:
    """Llama-3.2-1B's shapes, random weights (initialised on the GPU when there is one), saved in bf16."""
    tokenizer = tinygpt.train_tokenizer(corpus)
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=128256,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        max_position_embeddings=8192,
        rope_theta=500000.0,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    del model
    return folder


def smoke_config(model_dir: Path, shape: SmokeConfig) -> TrainConfig:
    spec = FineTuningJobSpec.model_validate(
        {
            "baseModel": {"name": "smoke", "path": str(model_dir)},
            "dataset": {"source": {"configMap": {"name": "smoke", "key": "sessions.jsonl"}}},
            "training": {"epochs": 1, "batchSize": shape.batch_size, "maxSeqLength": shape.max_seq_length},
            "output": {"modelName": "smoke"},
        }
    )
    device = run.detect_device(os.environ)
    return resolve(spec, base_model_path=model_dir, dataset_sha256="0" * 64, device=device, save_steps=10**9)


class StepClock(TrainerCallback):  # type: ignore[misc]
    """Wall time and real tokens at each optimizer step's end (synchronised: a smoke test may wait for the GPU)."""

    def __init__(self, count: TokenCount) -> None:
        self.count = count
        self.marks: list[tuple[float, int]] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.marks.append((time.perf_counter(), self.count.tokens))


def smoke(name: str, steps: int, scratch: Path) -> dict[str, Any]:
    shape = CONFIGS[name]
    samples = synthetic_samples(shape.samples, seed=0)
    corpus = [data.sample_text(sample) for sample in samples]
    folder = scratch / name
    if name == "tiny":
        model_dir = tinygpt.ensure_tiny_gpt(folder, corpus, seed=0)
    else:
        folder.mkdir()
        model_dir = build_1b_class(folder, corpus, seed=0)
    config = smoke_config(model_dir, shape)
    model, kernel = run.load_base_model(model_dir, config, os.environ, rank=0)
    count = TokenCount()
    clock = StepClock(count)
    records = [data.to_record(sample, chat=False) for sample in samples]
    trainer = run.build_trainer(
        model=model,
        tokenizer=load_tokenizer(model_dir),
        config=config,
        train=records,
        evaluation_records=records[:8],
        output_dir=scratch / f"{name}-out",
        callbacks=[clock],
        attention_kernel=kernel,
        token_count=count,
    )
    trainer.args.max_steps = steps
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    run.fit(trainer, config, None)
    return report(name, config, kernel, clock.marks)


def report(name: str, config: TrainConfig, kernel: str, marks: list[tuple[float, int]]) -> dict[str, Any]:
    if len(marks) <= WARMUP_STEPS:
        raise SystemExit(f"{name}: {len(marks)} steps ran; give --steps above {WARMUP_STEPS}")
    (start, tokens_before), (end, tokens_after) = marks[WARMUP_STEPS - 1], marks[-1]
    cuda = torch.cuda.is_available()
    gib = 1024**3
    return {
        "config": name,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "precision": config.precision,
        "attention": kernel,
        "rowsPerStep": config.batch_size,
        "maxSeqLength": config.max_seq_length,
        "stepsTimed": len(marks) - WARMUP_STEPS,
        "tokensPerSecond": round((tokens_after - tokens_before) / (end - start), 1),
        "peakAllocatedGiB": round(torch.cuda.max_memory_allocated() / gib, 2) if cuda else None,
        "peakReservedGiB": round(torch.cuda.max_memory_reserved() / gib, 2) if cuda else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--allow-cpu", action="store_true", help="run without CUDA (to test this script)")
    options = parser.parse_args()
    if not torch.cuda.is_available() and not options.allow_cpu:
        print(
            "gpu-smoke: torch sees no CUDA GPU (see docs/install.md for the driver this image needs)", file=sys.stderr
        )
        return 2
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    for name in options.configs.split(","):
        with tempfile.TemporaryDirectory(prefix=f"gpu-smoke-{name}-") as scratch:
            print(json.dumps(smoke(name, options.steps, Path(scratch))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
