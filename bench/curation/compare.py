"""Two builds of the curation extension, same corpus, same run: throughput, and what redaction changed and missed.

    python bench/curation/compare.py --baseline-wheel WHEEL [--candidate-wheel WHEEL] [--sizes 200000] [--seed 0]
        [--repeat 3]

The candidate is the extension installed in the running interpreter's environment, or `--candidate-wheel`;
the baseline is WHEEL (e.g. main's build, cached by hack/venv.sh under ~/.cache/finetune-operator/wheels).
A wheel is unpacked and put first on the curator's PYTHONPATH. For each size the two run alternately (ABBA order, so
neither always follows the other), `--repeat` times each; the best wall and CPU time of each build is
reported (neighbours on a shared machine only ever add time), with the candidate's throughput as a
share of the baseline's. Each build's output is checked against the corpus's planted ground truth:
kept clean sessions that redaction changed (false positives) and secret-bearing sessions in which a
planted secret survived (misses).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import orjson

REPOSITORY = Path(__file__).resolve().parents[2]
# Run as a script, only bench/curation/ is on sys.path (as in run.py).
sys.path[:0] = [str(REPOSITORY), str(REPOSITORY / "hack")]

from bench.curation import cache  # noqa: E402
from bench.curation.run import CURATOR_FLAGS, Measurement, figures, measure, warm  # noqa: E402
from bench.curation.truth import ground_truth, redaction_summary  # noqa: E402


def _curate(source: Path, output: Path) -> list[str]:
    return [sys.executable, "-m", "finetune_trainer.curate", "--input", str(source), "--output-dir", str(output)]


def _origin(first_on_path: Path | None) -> str:
    """Where the curator's interpreter imports the extension from, with this PYTHONPATH."""
    probe = "import finetune_curate_native as n; print(n.__file__)"
    env = {"PYTHONPATH": str(first_on_path)} if first_on_path else {}
    return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout


def _best(runs: list[Measurement]) -> Measurement:
    return Measurement(
        min(run.seconds for run in runs), min(run.cpu_seconds for run in runs), max(run.peak_rss_mb for run in runs)
    )


def _unpacked(wheel: Path, scratch: Path, name: str) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(scratch / name)
    return scratch / name


def compare(source: Path, size: int, builds: dict[str, Path | None], repeat: int, scratch: Path) -> dict[str, Any]:
    runs: dict[str, list[Measurement]] = {name: [] for name in builds}
    warm(source)
    for index in range(repeat):
        order = list(builds) if index % 2 == 0 else list(reversed(builds))
        for name in order:
            command = [*_curate(source, scratch / name), *CURATOR_FLAGS]
            runs[name].append(measure(command, builds[name]))
    best = {name: _best(measured) for name, measured in runs.items()}
    result: dict[str, Any] = {"sessions": size, "inputMB": round(source.stat().st_size / 1e6)}
    for name, path in builds.items():
        truth = ground_truth(source, scratch / name)
        result[name] = {
            "extension": _origin(path).strip(),
            **figures(best[name], size),
            "redaction": redaction_summary(truth),
            "groundTruth": truth,
        }
    result["throughputVsBaseline"] = round(best["baseline"].seconds / best["candidate"].seconds, 3)
    result["cpuThroughputVsBaseline"] = round(best["baseline"].cpu_seconds / best["candidate"].cpu_seconds, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline-wheel", type=Path, required=True)
    parser.add_argument("--candidate-wheel", type=Path, help="default: the extension installed here")
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each build; the best is reported")
    args = parser.parse_args()
    cache.corpus(max(args.sizes), args.seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="curation-compare-") as scratch:
        builds = {
            "candidate": _unpacked(args.candidate_wheel, Path(scratch), "candidate-extension")
            if args.candidate_wheel
            else None,
            "baseline": _unpacked(args.baseline_wheel, Path(scratch), "baseline-extension"),
        }
        for size in sorted(args.sizes):
            result = compare(cache.corpus(size, args.seed), size, builds, args.repeat, Path(scratch))
            print(orjson.dumps(result).decode(), flush=True)
            rows.append(result)
    header = ("sessions", "cand. s/s", "base s/s", "wall ratio", "CPU ratio", "clean chg", "leaked c/b")
    print(" ".join(f"{title:>11}" for title in header))
    for row in rows:
        candidate, base = row["candidate"], row["baseline"]
        values = (
            row["sessions"],
            candidate["sessionsPerSecond"],
            base["sessionsPerSecond"],
            row["throughputVsBaseline"],
            row["cpuThroughputVsBaseline"],
            f"{candidate['redaction']['cleanChangedPercent']}%",
            f"{candidate['redaction']['secretLeaked']}/{base['redaction']['secretLeaked']}",
        )
        print(" ".join(f"{value:>11}" for value in values))


if __name__ == "__main__":
    main()
