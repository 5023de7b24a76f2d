"""Curation benchmark: the curator vs a naive pandas baseline, same corpus, same run.

    python bench/curation/run.py [--sizes 200000 1000000] [--seed 0] [--repeat 1] [--corpus sessions|tools]

For each size: sessions/s and peak RSS of `python -m finetune_trainer.curate`
(with its worker processes) and of bench/curation/baseline.py, each a fresh
process timed from start to exit (imports included); peak RSS is the sum over
the process tree of each process's own peak as the kernel keeps it (VmHWM, read
every 50 ms, so a short peak between two reads still counts; a single process's
ru_maxrss at its exit); as the processes need not peak at once, it is an upper
bound; CPU seconds come from the kernel's
accounting of finished children. Each command's input is read once before it runs, so
both read from the page cache. The CPU ratio (baseline CPU s / curator CPU s)
is what to read on a shared, busy machine, where wall time depends on
neighbours. Also checks the curator's decisions against the planted
ground truth (the corpus labels every session), redaction's included: kept clean
sessions it changed, kept secret-bearing ones in which a planted secret survived
(truth.py). Corpora are cached (cache.py).
Targets: throughput >= 3x baseline, peak RSS < 300 MB at every size.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil  # type: ignore[import-untyped]

REPOSITORY = Path(__file__).resolve().parents[2]
# Run as a script, only bench/curation/ is on sys.path: add the repository (the bench package) and hack/ (the
# session corpus generator, shared with hack/make-sample-sessions.py).
sys.path[:0] = [str(REPOSITORY), str(REPOSITORY / "hack")]

from bench.curation import cache  # noqa: E402
from bench.curation.truth import ground_truth, redaction_summary  # noqa: E402

CURATOR_FLAGS = ["--max-tokens", "2048"]


@dataclass(frozen=True)
class Measurement:
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float


def _high_water_marks(process: psutil.Process, marks: dict[int, int]) -> None:
    """Records each live member's VmHWM, the kernel's own peak RSS of that process (bytes), into `marks`."""
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(OSError, psutil.Error):
            for line in Path(f"/proc/{member.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    marks[member.pid] = max(marks.get(member.pid, 0), int(line.split()[1]) * 1024)


def best_of(repeat: int, command: list[str]) -> Measurement:
    """The least wall time and the least CPU time of `repeat` runs (neighbours only ever add time), the peak RSS."""
    runs = [measure(command) for _ in range(repeat)]
    return Measurement(
        min(run.seconds for run in runs), min(run.cpu_seconds for run in runs), max(run.peak_rss_mb for run in runs)
    )


def measure(command: list[str], first_on_path: Path | None = None) -> Measurement:
    """Wall time, CPU time and peak RSS of `command` and every process it starts (summed).

    `first_on_path` goes before the repository on PYTHONPATH: another build of the extension (compare.py).
    """
    parts = [str(REPOSITORY / part) for part in ("trainer-image", "operator", ".")]
    path = os.pathsep.join([str(first_on_path), *parts] if first_on_path else parts)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": path}, stdout=subprocess.DEVNULL)
    started = time.perf_counter()
    watched = psutil.Process(process.pid)
    marks: dict[int, int] = {}
    while True:
        _high_water_marks(watched, marks)
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command} exited {process.returncode}")
    if len(marks) == 1:
        # A single process (pandas): its peak, exact at exit (wait4's ru_maxrss also covers its waited-for
        # children, so with workers it would count the largest of them twice).
        marks[process.pid] = max(marks[process.pid], usage.ru_maxrss * 1024)
    # Counts the command and the processes it waited for (the curator's workers).
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Measurement(elapsed, cpu, sum(marks.values()) / 1e6)


def warm(path: Path) -> None:
    """Read `path` once, so the measured run reads it from the page cache rather than the disk.

    Otherwise whichever command runs first after a large corpus was read pays the disk reads
    (as kernel CPU time, on a VM), and the ratio depends on the order of the runs.
    """
    with path.open("rb", buffering=0) as handle:
        while handle.read(8 << 20):
            pass


def figures(measurement: Measurement, sessions: int) -> dict[str, float]:
    return {
        "seconds": round(measurement.seconds, 1),
        "sessionsPerSecond": round(sessions / measurement.seconds),
        "cpuSeconds": round(measurement.cpu_seconds, 1),
        "sessionsPerCpuSecond": round(sessions / measurement.cpu_seconds),
        "peakRssMB": round(measurement.peak_rss_mb),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each command; the best is reported")
    parser.add_argument(
        "--corpus", choices=sorted(cache.KINDS), default="sessions", help="tools: tool-calling chat sessions"
    )
    args = parser.parse_args()
    results = []
    # pandas' peak per session: ~17.7 kB measured at 200k sessions; refined by each baseline run.
    baseline_bytes_per_session = 20_000.0
    cache.corpus(max(args.sizes), args.seed, args.corpus)  # generated once; smaller sizes are its head
    for size in sorted(args.sizes):
        source = cache.corpus(size, args.seed, args.corpus)
        with tempfile.TemporaryDirectory(prefix="curation-bench-") as scratch:
            dataset = Path(scratch) / "dataset"
            warm(source)
            curator = best_of(
                args.repeat,
                [
                    sys.executable,
                    "-m",
                    "finetune_trainer.curate",
                    "--input",
                    str(source),
                    "--output-dir",
                    str(dataset),
                    *CURATOR_FLAGS,
                ],
            )
            manifest = orjson.loads((dataset / "manifest.json").read_bytes())
            truth = ground_truth(source, dataset) if size == min(args.sizes) else None
            needed = baseline_bytes_per_session * size * 1.2
            baseline: Measurement | None = None
            if needed < psutil.virtual_memory().available * 0.85:
                warm(cache.parseable(source))
                baseline = best_of(
                    args.repeat,
                    [
                        sys.executable,
                        str(REPOSITORY / "bench" / "curation" / "baseline.py"),
                        str(cache.parseable(source)),
                        str(Path(scratch) / "baseline.jsonl"),
                    ],
                )
                baseline_bytes_per_session = baseline.peak_rss_mb * 1e6 / size
        result: dict[str, Any] = {
            "sessions": size,
            "inputMB": round(source.stat().st_size / 1e6),
            "curator": figures(curator, size),
            "counts": manifest["counts"],
            "groundTruth": truth,
            "redaction": redaction_summary(truth) if truth else None,
        }
        if baseline is None:
            # pandas holds the corpus several times over: never push a shared machine into OOM.
            result["baseline"] = f"skipped: would need ~{needed / 1e9:.0f} GB of memory"
        else:
            result["baseline"] = figures(baseline, size)
            result["throughputRatio"] = round(baseline.seconds / curator.seconds, 2)
            result["cpuEfficiencyRatio"] = round(baseline.cpu_seconds / curator.cpu_seconds, 2)
            result["rssRatio"] = round(baseline.peak_rss_mb / curator.peak_rss_mb, 2)
        print(orjson.dumps(result).decode(), flush=True)
        results.append(result)
    header = (
        "sessions",
        "curator/s",
        "curator MB",
        "pandas/s",
        "pandas MB",
        "speedup",
        "CPU ratio",
        "clean chg",
        "leaked",
    )
    print(" ".join(f"{title:>11}" for title in header))
    for result in results:
        baseline = result["baseline"]
        row = (
            result["sessions"],
            result["curator"]["sessionsPerSecond"],
            result["curator"]["peakRssMB"],
            baseline["sessionsPerSecond"] if isinstance(baseline, dict) else "-",
            baseline["peakRssMB"] if isinstance(baseline, dict) else "-",
            f"{result['throughputRatio']}x" if "throughputRatio" in result else "-",
            f"{result['cpuEfficiencyRatio']}x" if "cpuEfficiencyRatio" in result else "-",
            f"{redaction['cleanChangedPercent']}%" if (redaction := result["redaction"]) else "-",
            f"{redaction['secretLeaked']}/{redaction['secretKept']}" if redaction else "-",
        )
        print(" ".join(f"{value:>11}" for value in row))


if __name__ == "__main__":
    main()
