"""The dashboard's jobs page at 1,000 jobs: render time with the row memo vs without it, same run, same cache.

    python bench/dashboard/jobs_page.py [--jobs 1000] [--views 200] [--changes 90] [--profile]

Builds a dashboard cache of 1,000 jobs through the dashboard's own `Cache.replace`/`Cache.apply` and slimming:
jobs in every phase with progress, ETA and metrics, a model on the completed ones, and per running or finished
job a `<job>-metrics` ConfigMap whose history is what the trainer writes
(finetune_trainer.history.History.document: trainLoss, learningRate, gradNorm, tokensPerSecond at 256 points,
evalLoss and perplexity, checkpoints, hyperparameters; at its 256-point bound, more than bench/scale's
120-step simulated runs draw). Between two views `--changes` objects change as the trainers write them: status
progress patches and history patches in bench/scale's measured proportion (9,806 : 1,809, i.e. 17.8 writes/s x
5 s of polling ~ 90). Each view renders the whole unfiltered page as the server's Server-Timing measures it
(body and page shell), once without the memo (the baseline: every row rebuilt) and once with it, alternating,
so both see the same cache and the same machine load.

Prints p50/p95 of each in ms, wall (what Server-Timing reports) and this thread's CPU time (less dependent on
the machine's load), and the ratios baseline / memoised. `--profile` prints a cProfile of one baseline view
(where the time goes).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from finetune_dashboard.cache import RESOURCES, Cache
from finetune_dashboard.pages import jobs as jobs_page
from finetune_dashboard.pages.layout import page
from finetune_operator.api import reporting
from finetune_trainer.history import EVAL_SERIES, STEP_SERIES, History

Obj = dict[str, Any]
JOBS, METRICS = (next(r for r in RESOURCES if r.name == name) for name in ("jobs", "metrics"))
NAMESPACES = [f"team-{i}" for i in range(10)]
PHASES = ["Pending", "Curating", "Training", "Running", "Evaluating", "Completed", "Failed"]
HISTORY_SHARE = 1809 / (9806 + 1809)  # bench/scale N=1000: history patches among progress+history writes
START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


class Fleet:
    """The raw objects as the API server sends them, each change a new resourceVersion."""

    def __init__(self, jobs: int, seed: int) -> None:
        self.random = random.Random(seed)
        self.version = 1000
        self.names = [(NAMESPACES[i % len(NAMESPACES)], f"job-{i:04d}") for i in range(jobs)]
        self.steps = {key: self.random.randint(300, 5000) for key in self.names}

    def rv(self) -> str:
        self.version += 1
        return str(self.version)

    def job(self, index: int) -> Obj:
        namespace, name = self.names[index]
        phase = PHASES[index % len(PHASES)]
        step = self.steps[(namespace, name)]
        status: Obj = {"phase": phase}
        if phase != "Pending":
            percent = min(100, step // 50)
            status["progress"] = {
                "stage": phase if phase in ("Curating", "Evaluating") else "Training",
                "step": step,
                "totalSteps": 5000,
                "percent": percent,
                "estimatedSecondsRemaining": (5000 - step) // 10,
                "updatedAt": (START + timedelta(seconds=step)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            if phase == "Curating":
                status["progress"]["recordsRead"] = step * 40
            status["metrics"] = {"trainLoss": round(3.0 - step / 2500, 4), "learningRate": 0.0002}
        if phase == "Completed":
            model = f"model-{index % 20}"
            status["model"] = {"name": model, "version": "0.1.0", "modelVersion": f"{model}-v0.1.0"}
        return {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"uid-{name}",
                "resourceVersion": self.rv(),
                "creationTimestamp": (START + timedelta(seconds=index * 3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "labels": {"team": namespace},
            },
            "spec": {
                "baseModel": {"name": "tiny-gpt"},
                "training": {"epochs": 3, "learningRate": 0.0002},
                "output": {"modelName": f"model-{index % 20}"},
            },
            "status": status,
        }

    def metrics(self, index: int) -> Obj:
        namespace, name = self.names[index]
        steps = self.steps[(namespace, name)]
        history = History()
        history.hyperparameters = {"learningRate": 0.0002, "epochs": 3, "batchSize": 8, "warmupRatio": 0.03}
        # The last 256 steps as raw points: the series sits at its bound, the most a row ever draws.
        recent = range(max(1, steps - 255), steps + 1)
        for s in STEP_SERIES:
            history.series[s] = [(float(step), 3.0 * 0.999**step + self.random.uniform(-0.05, 0.05)) for step in recent]
        for s in EVAL_SERIES:
            history.series[s] = [(float(step), 2.0) for step in range(100, steps, max(1, steps // 12))]
        for step in range(500, steps, 500):
            history.checkpoint({"step": step, "path": f"checkpoints/step-{step}"})
        document = history.document((START + timedelta(seconds=steps)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        return {
            "metadata": {
                "name": reporting.metrics_config_map(name),
                "namespace": namespace,
                "uid": f"uid-{name}-metrics",
                "resourceVersion": self.rv(),
                "labels": {"app.kubernetes.io/component": "metrics"},
            },
            "data": {reporting.HISTORY_KEY: json.dumps(document, separators=(",", ":"))},
        }

    def has_metrics(self, index: int) -> bool:
        return PHASES[index % len(PHASES)] not in ("Pending", "Curating")

    def change(self, cache: Cache, count: int) -> None:
        """`count` writes as the trainers make them: mostly progress patches, some history patches."""
        running = [i for i in range(len(self.names)) if self.has_metrics(i)]
        for _ in range(count):
            index = self.random.choice(running)
            self.steps[self.names[index]] += self.random.randint(5, 40)
            if self.random.random() < HISTORY_SHARE:
                cache.apply(METRICS, "MODIFIED", self.metrics(index))
            else:
                cache.apply(JOBS, "MODIFIED", self.job(index))


def view(cache: Cache, memo: jobs_page.Rows | None, now: datetime) -> tuple[float, float, str]:
    """One jobs page as server.jobs_view renders it: (wall ms, CPU ms, html)."""
    started, cpu = time.perf_counter(), time.thread_time()
    body = jobs_page.render(cache["jobs"], cache["metrics"], jobs_page.Filters(), now, memo)
    text = page("Jobs", body, active="/", version=cache.version)
    return (time.perf_counter() - started) * 1000, (time.thread_time() - cpu) * 1000, text


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--views", type=int, default=200)
    parser.add_argument("--changes", type=int, default=90, help="objects changed between two views")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    fleet, cache = Fleet(args.jobs, args.seed), Cache(namespaces=None)
    cache.replace(JOBS, None, [fleet.job(i) for i in range(args.jobs)])
    cache.replace(METRICS, None, [fleet.metrics(i) for i in range(args.jobs) if fleet.has_metrics(i)])
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(view, cache, None, datetime.now(UTC))
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)
    memo = jobs_page.Rows()
    view(cache, memo, datetime.now(UTC))  # the first view fills the memo; the page is served from then on
    baseline: list[tuple[float, float]] = []
    memoised: list[tuple[float, float]] = []
    for _ in range(args.views):
        fleet.change(cache, args.changes)
        now = datetime.now(UTC)
        *plain_ms, plain = view(cache, None, now)
        *memo_ms, fast = view(cache, memo, now)
        if fast != plain:
            raise SystemExit("the memoised page differs from the page rendered afresh")
        baseline.append((plain_ms[0], plain_ms[1]))
        memoised.append((memo_ms[0], memo_ms[1]))
    rows = len(cache["jobs"])
    print(f"jobs page, {rows} rows, {args.changes} objects changed between views, {args.views} views each:")
    for column, unit in ((0, "wall"), (1, "CPU")):
        base, memo_times = [t[column] for t in baseline], [t[column] for t in memoised]
        for label, times in (("every row rebuilt (baseline)", base), ("row memo", memo_times)):
            print(f"  {unit:4} {label:30} p50 {percentile(times, 0.5):7.1f} ms   p95 {percentile(times, 0.95):7.1f} ms")
        ratio = statistics.median(base) / statistics.median(memo_times)
        ratio95 = percentile(base, 0.95) / percentile(memo_times, 0.95)
        print(f"  {unit:4} ratio baseline / memo: p50 {ratio:.1f}x, p95 {ratio95:.1f}x")
    print("  pages identical (memo vs rebuilt) in every view")


if __name__ == "__main__":
    main()
