"""Training throughput of the finetune trainer vs a plain Hugging Face `Trainer`, in the same run.

    python bench/trainer/run.py [--samples 400] [--max-seq-length 512] [--repeats 2]

Both sides train the same tiny-gpt (LoRA, same hyperparameters, fp32 on CPU) for one epoch over
the same synthetic instruction data whose lengths follow a log-normal spread (median ~100
tokens, a long tail up to the maximum), like curated agent sessions. The contenders:

- `finetune`: this trainer's `build_trainer` — TRL best-fit-decreasing packing into rows of
  max-seq-length tokens, kept apart per row with per-sample position ids (SDPA block masks).
- `hf-dynamic` (the baseline the headline ratio is quoted against): `transformers.Trainer` + PEFT in
  its common setup, each batch padded only to its longest sample (`DataCollatorForSeq2Seq`,
  `padding=True`) and batches grouped by length (`train_sampling_strategy="group_by_length"`), no packing.
- `hf-padded`: the same, every sample padded to max-seq-length (`padding="max_length"`).
- `trl-flattened`: the same packing with TRL's default padding-free collator, which joins a
  whole batch into one row (built for flash-attention varlen kernels), to show why we replaced it.

Throughput counts real (non-padding) tokens per second of `train()`, so padding is pure cost.
It is reported per second of this process's CPU time (primary) and of wall time: the machines
this runs on are shared, and under load wall-clock step times swing by 3x while CPU time stays
put, so by default torch uses one thread (`--threads`) and CPU time measures the work done.
Each contender first trains once untimed (warm-up: allocator, kernels, first-call imports), then runs
alternate between contenders and the median is kept.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from transformers.utils import logging as hf_logging

from finetune_operator.api import FineTuningJobSpec
from finetune_trainer.train import data, run, tinygpt
from finetune_trainer.train.config import Device, TrainConfig, resolve
from finetune_trainer.train.modelio import load_model, load_tokenizer, lora_config

VOCABULARY = [f"w{index}" for index in range(300)]


def synthetic_samples(count: int, seed: int) -> list[data.Sample]:
    """Instruction/output pairs with log-normally spread lengths (in words; ~1.5 tokens each)."""
    rng = random.Random(seed)
    samples = []
    for _ in range(count):
        words = max(8, min(600, int(rng.lognormvariate(math.log(60), 0.8))))
        prompt_words = max(4, words // 3)
        instruction = " ".join(rng.choice(VOCABULARY) for _ in range(prompt_words))
        output = " ".join(rng.choice(VOCABULARY) for _ in range(words - prompt_words))
        samples.append(data.Sample(instruction=instruction, input="", output=output))
    return samples


def bench_config(max_seq_length: int) -> TrainConfig:
    spec = FineTuningJobSpec.model_validate(
        {
            "baseModel": {"name": "tiny-gpt", "builtin": "tiny-gpt"},
            "dataset": {"source": {"configMap": {"name": "bench", "key": "sessions.jsonl"}}},
            "training": {"epochs": 1, "batchSize": 8, "maxSeqLength": max_seq_length, "learningRate": 1e-3},
            "output": {"modelName": "bench"},
        }
    )
    device = Device(cuda_devices=0, bf16_supported=False)
    return resolve(spec, base_model_path=None, dataset_sha256="0" * 64, device=device, save_steps=10**9)


def finetune_trainer(model_dir: Path, samples: list[data.Sample], config: TrainConfig, out: Path) -> Any:
    tokenizer = load_tokenizer(model_dir)
    trainer = run.build_trainer(
        model=load_model(model_dir, config),
        tokenizer=tokenizer,
        config=config,
        train=[data.to_record(sample, chat=False) for sample in samples],
        evaluation_records=[data.to_record(sample, chat=False) for sample in samples[:8]],
        output_dir=out,
        callbacks=[],
    )
    # The trainer counts tokens in its own progress callback (not installed here) and turns the Trainer's count
    # off; the benchmark counts every contender the same way, with the Trainer's per-batch count.
    trainer.args.include_num_input_tokens_seen = "non_padding"
    return trainer


def trl_flattened_trainer(model_dir: Path, samples: list[data.Sample], config: TrainConfig, out: Path) -> Any:
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    trainer = finetune_trainer(model_dir, samples, config, out)
    trainer.data_collator = DataCollatorForLanguageModeling(
        pad_token_id=trainer.processing_class.pad_token_id, padding_free=True
    )
    return trainer


def hf_trainer(model_dir: Path, samples: list[data.Sample], config: TrainConfig, out: Path, dynamic: bool) -> Any:
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import DataCollatorForSeq2Seq, PrinterCallback, Trainer, TrainingArguments

    tokenizer = load_tokenizer(model_dir)
    model = get_peft_model(load_model(model_dir, config), lora_config(config))

    def tokenize(sample: data.Sample) -> dict[str, list[int]]:
        prompt = tokenizer(data.alpaca_prompt(sample))["input_ids"]
        completion = tokenizer(sample.output + tokenizer.eos_token)["input_ids"]
        ids = (prompt + completion)[: config.max_seq_length]
        labels = ([-100] * len(prompt) + completion)[: config.max_seq_length]
        return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}

    arguments = TrainingArguments(
        output_dir=str(out),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=config.warmup_ratio,
        max_grad_norm=1.0,
        seed=config.seed,
        use_cpu=True,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        logging_steps=10**9,
        include_num_input_tokens_seen="non_padding",
        # Batches of similar lengths, so dynamic padding pads little (the HF recipe for variable lengths;
        # `group_by_length=True` before transformers 5).
        train_sampling_strategy="group_by_length" if dynamic else "random",
    )
    padding: dict[str, Any] = (
        {"padding": True} if dynamic else {"padding": "max_length", "max_length": config.max_seq_length}
    )
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=Dataset.from_list([tokenize(sample) for sample in samples]),
        data_collator=DataCollatorForSeq2Seq(tokenizer, **padding),
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


CONTENDERS: dict[str, Callable[[Path, list[data.Sample], TrainConfig, Path], Any]] = {
    "finetune": finetune_trainer,
    "hf-dynamic": lambda model_dir, samples, config, out: hf_trainer(model_dir, samples, config, out, dynamic=True),
    "hf-padded": lambda model_dir, samples, config, out: hf_trainer(model_dir, samples, config, out, dynamic=False),
    "trl-flattened": trl_flattened_trainer,
}
BASELINE = "hf-dynamic"


def measure(name: str, model_dir: Path, samples: list[data.Sample], config: TrainConfig) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        trainer = CONTENDERS[name](model_dir, samples, config, Path(out))
        started, cpu_started = time.perf_counter(), time.process_time()
        trainer.train()
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        tokens = trainer.state.num_input_tokens_seen
        return {
            "steps": trainer.state.max_steps,
            "tokens": tokens,
            "cpuSeconds": round(cpu_seconds, 3),
            "wallSeconds": round(seconds, 3),
            "tokensPerCpuSecond": round(tokens / cpu_seconds, 1),
            "tokensPerWallSecond": round(tokens / seconds, 1),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=240)
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--threads", type=int, default=1)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.manual_seed(0)

    samples = synthetic_samples(options.samples, seed=0)
    config = bench_config(options.max_seq_length)
    names = options.contenders.split(",")
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = tinygpt.ensure_tiny_gpt(
            Path(scratch) / "tiny-gpt", (data.sample_text(sample) for sample in samples), seed=0
        )
        for name in names:
            warm_up = measure(name, model_dir, samples, config)
            print(json.dumps({"warmUp": True, "contender": name, **warm_up}), file=sys.stderr)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for repeat in range(options.repeats):
            for name in names if repeat % 2 == 0 else reversed(names):
                result = measure(name, model_dir, samples, config)
                results[name].append(result)
                print(json.dumps({"repeat": repeat, "contender": name, **result}), file=sys.stderr)
    summary: dict[str, Any] = {
        "samples": options.samples,
        "maxSeqLength": options.max_seq_length,
        "threads": options.threads,
        "baseline": BASELINE,
    }
    for metric in ("tokensPerCpuSecond", "tokensPerWallSecond"):
        median = {name: statistics.median(r[metric] for r in runs) for name, runs in results.items()}
        summary[metric] = {name: round(value, 1) for name, value in median.items()}
        # The headline ratio first (against the common HF setup), the other contenders as extra rows.
        for other in (BASELINE, *(name for name in CONTENDERS if name not in ("finetune", BASELINE))):
            if "finetune" in median and other in median:
                summary[f"{metric}Ratio"] = summary.get(f"{metric}Ratio", {})
                summary[f"{metric}Ratio"][f"finetune/{other}"] = round(median["finetune"] / median[other], 2)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
