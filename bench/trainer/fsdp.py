"""FSDP vs DDP with 2 gloo ranks on CPU: peak memory per rank and tokens/s of full fine-tuning, in the same run.

    python bench/trainer/fsdp.py [--hidden 1024] [--layers 8] [--samples 64] [--repeats 1]

Both sides run the real entrypoint under its own supervisor (`FINETUNE_PROCESSES=2`, `OMP_NUM_THREADS=1` per
rank) on the same workspace contents: `method: full`, fp32, tiny-gpt's Llama (`tinygpt.model_config`, 512-token
vocabulary) built here untied at `--hidden`/`--layers` (the defaults: ~135M parameters, 2.2 GB of fp32 weights +
gradients + AdamW state per replica), so that the model states, not the ~0.7 GB of imported libraries, dominate a
rank's memory. The sides differ only in `training.sharding`: `none` (DDP: every rank holds all of it) and `fsdp`.

Per rank, a sampler thread reads VmHWM (the kernel's peak resident set) of each training process every 0.2 s:
`train` is the peak when the final evaluation starts (training only), `run` the peak at exit (rank 0 also builds
the final model then: under FSDP it gathers the full state dict into a fresh copy, see train/sharding.py).
Throughput is the trainer's own `tokensPerSecond` (trained tokens over training time, the same code on both
sides). Sides alternate per repeat; the ratios are FSDP / DDP of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

# Run as a script, only bench/trainer/ is on sys.path: add the repository (the bench package).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.trainer.ranks import write_workspace
from finetune_trainer.train import data

TRAINING = {"method": "full", "epochs": 1, "batchSize": 1, "maxSeqLength": 128, "learningRate": 1e-4, "seed": 3}
SAMPLE_SECONDS = 0.2


def build_base_model(folder: Path, hidden: int, layers: int, corpus: list[str]) -> int:
    """tiny-gpt's Llama at `hidden` x `layers`, untied, random weights (the memory and the FLOPs are what count
    here), and its tokenizer; its size."""
    import torch
    from transformers import LlamaForCausalLM

    from finetune_trainer.train import tinygpt

    tokenizer = tinygpt.train_tokenizer(corpus)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = tinygpt.model_config(
        tokenizer, hidden_size=hidden, layers=layers, heads=hidden // 64, tied_embeddings=False
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    return sum(parameter.numel() for parameter in model.parameters())


def rank_processes(supervisor: int) -> dict[int, int]:
    """{rank: pid} of the training processes under the supervisor (RANK in their environment)."""
    ranks = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            environ = (status.parent / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields["PPid"]) != supervisor:
            continue
        for entry in environ:
            if entry.startswith(b"RANK="):
                ranks[int(entry[5:])] = int(status.parent.name)
    return ranks


def peak_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakSampler(threading.Thread):
    def __init__(self, supervisor: int) -> None:
        super().__init__(daemon=True)
        self.supervisor = supervisor
        self.peaks: dict[int, int] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(SAMPLE_SECONDS):
            for rank, pid in rank_processes(self.supervisor).items():
                peak = peak_kib(pid)
                if peak is not None:
                    self.peaks[rank] = max(peak, self.peaks.get(rank, 0))


def measure(workspace: Path, sharding: str) -> dict[str, Any]:
    job = json.loads((workspace / "job.json").read_text())
    job["spec"]["training"]["sharding"] = sharding
    (workspace / "job.json").write_text(json.dumps(job))
    env = {
        **os.environ,
        "FINETUNE_TERMINATION_LOG": str(workspace / "termination-log"),
        "FINETUNE_PROCESSES": "2",
        "FINETUNE_SAVE_STEPS": "100000",  # one checkpoint, at the end of the epoch, on both sides
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "finetune_trainer.train", "--config", str(workspace / "job.json")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = PeakSampler(process.pid)
    sampler.start()
    training_peaks: dict[int, int] = {}
    events = []
    assert process.stdout is not None
    for line in process.stdout:
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        events.append(event)
        if event.get("event") == "eval_log" and not training_peaks:
            training_peaks = dict(sampler.peaks)
    process.wait()
    sampler.done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{sharding} exited {process.returncode}: {events[-3:]}")
    metrics = next(event for event in events if event.get("event") == "succeeded")["metrics"]
    return {
        "train_peak_mib": {rank: round(kib / 1024) for rank, kib in sorted(training_peaks.items())},
        "run_peak_mib": {rank: round(kib / 1024) for rank, kib in sorted(sampler.peaks.items())},
        "tokens_per_second": metrics["tokensPerSecond"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    options = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {"none": [], "fsdp": []}
    with tempfile.TemporaryDirectory(prefix="bench-fsdp-") as scratch:
        root = Path(scratch)
        write_workspace(root / "template", options.samples)
        corpus = [data.sample_text(sample) for sample in data.load_dataset(root / "template" / "dataset").train]
        parameters = build_base_model(root / "base", options.hidden, options.layers, corpus)
        print(f"base model: {parameters / 1e6:.1f}M parameters", flush=True)
        for repeat in range(options.repeats):
            for sharding in results:
                workspace = root / f"{sharding}-{repeat}"
                write_workspace(workspace, options.samples)
                job = json.loads((workspace / "job.json").read_text())
                job["spec"]["baseModel"] = {"name": "bench", "path": "bench", "pvc": "bench"}
                job["paths"]["baseModel"] = str(root / "base")
                job["spec"]["training"] = dict(TRAINING)
                (workspace / "job.json").write_text(json.dumps(job))
                results[sharding].append(measure(workspace, sharding))
                print(f"repeat {repeat + 1} {sharding}: {json.dumps(results[sharding][-1])}", flush=True)
    summary = {}
    for sharding, runs in results.items():
        summary[sharding] = {
            "train_peak_mib": statistics.median(max(run["train_peak_mib"].values()) for run in runs),
            "run_peak_mib": statistics.median(max(run["run_peak_mib"].values()) for run in runs),
            "tokens_per_second": statistics.median(run["tokens_per_second"] for run in runs),
        }
    print(json.dumps(summary, indent=2))
    ratios = {key: round(summary["fsdp"][key] / summary["none"][key], 2) for key in summary["none"]}
    print(f"fsdp / ddp: {json.dumps(ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
