"""The GPU-path fixes that also apply on CPU, measured against a baseline checkout of the trainer in the same run.

    python bench/trainer/ranks.py --baseline-src /path/to/old/checkout [--samples 600] [--repeats 3]

Both sides run the real entrypoint on the same job (tiny-gpt LoRA, one epoch over synthetic instruction data
with log-normal lengths, rows of 256 tokens, batch 4, accumulation 2) with 2 gloo ranks, as an 8-GPU pod runs
8: the baseline under `torchrun` (what it exec'd), this trainer under its own supervisor
(`FINETUNE_PROCESSES=2`). The baseline side imports its trainer from `--baseline-src` (prepended to
PYTHONPATH), e.g. a `git worktree` of main before the fixes; `--fixed-src` likewise pins this trainer's side
to a checkout (so editing the working tree during a long run changes nothing). What differs on CPU: LoRA
dropout 0.05 -> 0, one tokenization on rank 0 instead of one per rank, no gather + read-back of the token
count per micro-batch, logs every 1% of steps instead of every step (the input cast and the varlen kernel only
act under GPU autocast). Per run: wall time, CPU time of every process (the machine is shared: CPU time is the
steadier measure), seconds from start to the first logged step, and from the first logged step to the last
(the same steps on both sides; each trainer's own tokens/s metric is computed differently, so not compared). A
third side reruns this trainer on the same workspace: a retry, whose ranks load the tokenized dataset. Runs
alternate between sides; the median of each is printed with the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

# Run as a script, only bench/trainer/ is on sys.path: add the repository (the bench package).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.trainer.run import synthetic_samples

TRAINING = {"epochs": 1, "batchSize": 4, "gradientAccumulationSteps": 2, "maxSeqLength": 256, "learningRate": 1e-3}


def write_workspace(folder: Path, samples: int) -> None:
    import hashlib

    rows = [
        {"instruction": s.instruction, "input": "", "output": s.output, "metadata": {"session_id": f"s{i}"}}
        for i, s in enumerate(synthetic_samples(samples, seed=1))
    ]
    dataset = folder / "dataset"
    dataset.mkdir(parents=True)
    outputs = {}
    for name, part in (("train.jsonl", rows[:-16]), ("eval.jsonl", rows[-16:])):
        content = "".join(json.dumps(row) + "\n" for row in part).encode()
        (dataset / name).write_bytes(content)
        outputs[name] = {"records": len(part), "sha256": hashlib.sha256(content).hexdigest()}
    manifest = {"outcome": "Succeeded", "samples": len(rows), "outputs": outputs}
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    job = {
        "apiVersion": "finetune.dev/v1alpha1",
        "job": {"name": "bench", "namespace": "bench", "uid": "0"},
        "spec": {
            "baseModel": {"name": "tiny-gpt", "builtin": "tiny-gpt"},
            "dataset": {"source": {"configMap": {"name": "bench", "key": "sessions.jsonl"}}},
            "training": TRAINING,
            "output": {"modelName": "bench"},
        },
        "paths": {"workspace": str(folder), "sourceGlob": "/unused/*.jsonl", "baseModel": None},
    }
    (folder / "job.json").write_text(json.dumps(job))


def command(side: str, job: Path) -> list[str]:
    if side == "baseline":
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
        return [*launch, "-m", "finetune_trainer.train", "--config", str(job)]
    return [sys.executable, "-m", "finetune_trainer.train", "--config", str(job)]


def measure(side: str, workspace: Path, sources: dict[str, Path | None]) -> dict[str, float]:
    env = {**os.environ, "FINETUNE_TERMINATION_LOG": str(workspace / "termination-log"), "OMP_NUM_THREADS": "1"}
    env["FINETUNE_SAVE_STEPS"] = "100000"
    source = sources[side]
    if source is not None:
        roots = [source / "trainer-image", source / "operator"]
        env["PYTHONPATH"] = os.pathsep.join([*map(str, roots), env.get("PYTHONPATH", "")])
    if side != "baseline":
        env["FINETUNE_PROCESSES"] = "2"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started, wall_start = datetime.now().astimezone(), time.monotonic()
    done = subprocess.run(command(side, workspace / "job.json"), env=env, capture_output=True, text=True)
    wall = time.monotonic() - wall_start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{side} exited {done.returncode}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    steps = [datetime.fromisoformat(e["time"]) for e in events if e.get("event") == "train_log"]
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "first_step_s": (steps[0] - started).total_seconds(),
        # The same steps on every side: from the first logged step to the last.
        "training_s": (steps[-1] - steps[0]).total_seconds(),
    }


def run_side(side: str, samples: int, sources: dict[str, Path | None]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{side}-") as scratch:
        workspace = Path(scratch)
        write_workspace(workspace, samples)
        if side != "retry":
            return measure(side, workspace, sources)
        measure("fixed", workspace, sources)
        for stale in ("model", "checkpoints", "tensorboard", "logs"):
            shutil.rmtree(workspace / stale, ignore_errors=True)
        return measure("fixed", workspace, sources)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-src", type=Path, required=True)
    parser.add_argument("--fixed-src", type=Path, help="a checkout to run as this trainer (default: the installed one)")
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"baseline": [], "fixed": [], "retry": []}
    sources = {"baseline": options.baseline_src, "fixed": options.fixed_src, "retry": options.fixed_src}
    for repeat in range(options.repeats):
        for side in results:
            results[side].append(run_side(side, options.samples, sources))
            print(f"repeat {repeat + 1} {side}: {json.dumps(results[side][-1])}", flush=True)
    medians: dict[str, Any] = {
        side: {key: statistics.median(run[key] for run in runs) for key in runs[0]} for side, runs in results.items()
    }
    print(json.dumps(medians, indent=2))
    base = medians["baseline"]
    for side in ("fixed", "retry"):
        ratios = {key: round(base[key] / medians[side][key], 2) for key in base}
        print(f"{side} vs baseline (x faster / less): {json.dumps(ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
