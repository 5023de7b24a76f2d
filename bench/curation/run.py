"""Curation benchmark: the curator vs a naive pandas baseline, same corpus, same run.

    python bench/curation/run.py [--sizes 200000 1000000] [--seed 0]

For each size: sessions/s and peak RSS of `python -m finetune_trainer.curate`
and of bench/curation/baseline.py, each a fresh process timed from start to
exit (imports included), peak RSS from the kernel's accounting for that child
(wait4's ru_maxrss). Also checks the curator's decisions against the planted
ground truth (the corpus labels every session). Corpora are cached (cache.py).
Targets: throughput >= 3x baseline, peak RSS < 300 MB at every size.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.curation import cache

REPOSITORY = Path(__file__).resolve().parents[2]
CURATOR_FLAGS = ["--max-tokens", "2048"]


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_rss_mb: float


def measure(command: list[str]) -> Measurement:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(REPOSITORY / "trainer-image"), str(REPOSITORY / "operator"), str(REPOSITORY)]
        ),
    }
    started = time.perf_counter()
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0,):
        raise SystemExit(f"{command} exited {process.returncode}: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
    return Measurement(elapsed, usage.ru_maxrss / 1024)


def ground_truth(source: Path, dataset: Path) -> dict[str, dict[str, int]]:
    """For each planted kind: how many sessions, how many the curator kept."""
    kinds: dict[int, str] = {}
    with source.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                kinds[number] = orjson.loads(line)["metadata"]["synthetic_kind"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                kinds[number] = "unparseable"
    kept: collections.Counter[str] = collections.Counter()
    for split in ("train", "eval"):
        with (dataset / f"{split}.jsonl").open("rb") as handle:
            for line in handle:
                kept[kinds[orjson.loads(line)["metadata"]["line"]]] += 1
    total = collections.Counter(kinds.values())
    return {kind: {"sessions": total[kind], "kept": kept[kind]} for kind in sorted(total)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = []
    for size in args.sizes:
        source = cache.corpus(size, args.seed)
        parseable = cache.parseable(source)
        with tempfile.TemporaryDirectory(prefix="curation-bench-") as scratch:
            dataset = Path(scratch) / "dataset"
            curator = measure(
                [
                    sys.executable,
                    "-m",
                    "finetune_trainer.curate",
                    "--input",
                    str(source),
                    "--output-dir",
                    str(dataset),
                    *CURATOR_FLAGS,
                ]
            )
            manifest = orjson.loads((dataset / "manifest.json").read_bytes())
            truth = ground_truth(source, dataset) if size == min(args.sizes) else None
            baseline = measure(
                [
                    sys.executable,
                    str(REPOSITORY / "bench" / "curation" / "baseline.py"),
                    str(parseable),
                    str(Path(scratch) / "baseline.jsonl"),
                ]
            )
        result = {
            "sessions": size,
            "inputMB": round(source.stat().st_size / 1e6),
            "curator": {
                "seconds": round(curator.seconds, 1),
                "sessionsPerSecond": round(size / curator.seconds),
                "peakRssMB": round(curator.peak_rss_mb),
            },
            "baseline": {
                "seconds": round(baseline.seconds, 1),
                "sessionsPerSecond": round(size / baseline.seconds),
                "peakRssMB": round(baseline.peak_rss_mb),
            },
            "throughputRatio": round(baseline.seconds / curator.seconds, 2),
            "rssRatio": round(baseline.peak_rss_mb / curator.peak_rss_mb, 2),
            "counts": manifest["counts"],
            "groundTruth": truth,
        }
        print(orjson.dumps(result).decode(), flush=True)
        results.append(result)
    print(
        f"{'sessions':>10} {'curator/s':>10} {'pandas/s':>10} {'speedup':>8} {'cur RSS MB':>11} {'pandas RSS MB':>14}"
    )
    for result in results:
        print(
            f"{result['sessions']:>10} {result['curator']['sessionsPerSecond']:>10} "
            f"{result['baseline']['sessionsPerSecond']:>10} {result['throughputRatio']:>7}x "
            f"{result['curator']['peakRssMB']:>11} {result['baseline']['peakRssMB']:>14}"
        )


if __name__ == "__main__":
    main()
