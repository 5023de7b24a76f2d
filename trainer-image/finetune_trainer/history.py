"""Bounded metric history of one run (pure): at most `limit` points per series, whatever the run's length.

When a series outgrows its limit it is compacted to half the limit by `downsample`, which keeps the curve's
shape: the first and the last point always, and per equal-width range of steps the lowest and the highest
point (so every minimum and spike survives, and the global minimum in particular). After a compaction, new
points are bucketed at the same width as they arrive (a bucket keeps its lowest, its highest and, while it
is the newest, its latest point), so the resolution stays even along the run instead of the recent part
being dense and the early part ever sparser.

The document is what the trainer writes to the job's `<job>-metrics` ConfigMap under `history.json`
(docs/runtime-contract.md) and what the dashboard draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

Point = tuple[float, float]
LIMIT = 256
MAX_CHECKPOINTS = 32
STEP_SERIES = ("trainLoss", "learningRate", "gradNorm", "tokensPerSecond")
EVAL_SERIES = ("evalLoss", "perplexity")


def downsample(points: Sequence[Point], limit: int) -> list[Point]:
    """At most `limit` points of `points` (sorted by x), keeping the first, the last and each bucket's extremes."""
    if limit < 4:
        raise ValueError("a shape needs at least 4 points: first, last, one low and one high")
    if len(points) <= limit:
        return list(points)
    origin, width = grid(points, limit)
    buckets = (limit - 2) // 2
    chosen: list[list[Point]] = [[] for _ in range(buckets)]
    for point in points[1:-1]:
        chosen[min(buckets - 1, int((point[0] - origin) / width))].append(point)
    kept = [points[0]]
    for bucket in chosen:
        kept.extend(extremes(bucket))
    kept.append(points[-1])
    return kept


def grid(points: Sequence[Point], limit: int) -> tuple[float, float]:
    """Origin and width of the step ranges `downsample` uses for `points` (at least 3 of them)."""
    origin, end = points[1][0], points[-2][0]
    return origin, (end - origin) / ((limit - 2) // 2) or 1.0


def extremes(bucket: Sequence[Point]) -> list[Point]:
    """The lowest and the highest point of a bucket, in step order (one point if they coincide)."""
    if not bucket:
        return []
    low, high = min(bucket, key=lambda p: p[1]), max(bucket, key=lambda p: p[1])
    return sorted({low, high}, key=lambda p: p[0])


@dataclass
class History:
    limit: int = LIMIT
    series: dict[str, list[Point]] = field(default_factory=dict)
    grids: dict[str, tuple[float, float]] = field(default_factory=dict)  # (origin, width) once compacted
    checkpoints: list[dict[str, object]] = field(default_factory=list)
    hyperparameters: dict[str, object] = field(default_factory=dict)

    def add(self, name: str, step: float, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            return
        points = self.series.setdefault(name, [])
        if points and points[-1][0] == step:
            points[-1] = (step, value)  # a resumed run repeats the step it saved at
        else:
            points.append((step, value))
        if name in self.grids:
            self._bucket_newest(points, *self.grids[name])
        if len(points) > self.limit:
            self.grids[name] = grid(points, self.limit // 2)
            self.series[name] = downsample(points, self.limit // 2)

    @staticmethod
    def _bucket_newest(points: list[Point], origin: float, width: float) -> None:
        """Keeps the newest bucket at (lowest, highest, latest) and the one before it at (lowest, highest)."""

        def bucket(p: Point) -> int:
            return math.floor((p[0] - origin) / width)

        newest = bucket(points[-1])
        start = len(points) - 1
        while start > 1 and bucket(points[start - 1]) == newest:
            start -= 1
        current = points[start:]
        if len(current) > 3:
            points[start:] = sorted(set([*extremes(current[:-1]), current[-1]]), key=lambda p: p[0])
        if len(current) == 1 and start > 1:  # a new bucket began: settle the previous one
            before = start - 1
            while before > 1 and bucket(points[before - 1]) == bucket(points[start - 1]):
                before -= 1
            points[before:start] = extremes(points[before:start])

    def add_many(self, step: float, values: Mapping[str, float | None]) -> None:
        for name, value in values.items():
            self.add(name, step, value)

    def checkpoint(self, entry: dict[str, object]) -> None:
        self.checkpoints = [c for c in self.checkpoints if c.get("step") != entry.get("step")][-(MAX_CHECKPOINTS - 1) :]
        self.checkpoints.append(entry)

    def document(self, updated_at: str) -> dict[str, object]:
        return {
            "series": {name: [[_plain(x), round(y, 6)] for x, y in points] for name, points in self.series.items()},
            "checkpoints": list(self.checkpoints),
            "hyperparameters": dict(self.hyperparameters),
            "updatedAt": updated_at,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, object], limit: int = LIMIT) -> History:
        """The history a previous attempt wrote, so a resumed run extends its curve instead of restarting it."""
        restored = cls(limit=limit)
        series = document.get("series")
        if isinstance(series, dict):
            for name, points in series.items():
                if isinstance(points, list):
                    restored.series[str(name)] = [
                        (float(p[0]), float(p[1])) for p in points if isinstance(p, list) and len(p) == 2
                    ][-limit:]
        checkpoints = document.get("checkpoints")
        if isinstance(checkpoints, list):
            restored.checkpoints = [c for c in checkpoints if isinstance(c, dict)][-MAX_CHECKPOINTS:]
        return restored


def _plain(x: float) -> float | int:
    return int(x) if x == int(x) else x
