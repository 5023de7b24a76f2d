"""The bounded metric history (finetune_trainer.history): never over the limit, shape kept."""

from __future__ import annotations

import math
import random

import pytest

from finetune_trainer.history import LIMIT, History, downsample


def noisy_decay(n: int, seed: int = 1) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(float(step), 5.0 * math.exp(-step / (n / 4)) + rng.uniform(-0.2, 0.2)) for step in range(1, n + 1)]


def test_short_series_are_kept_whole() -> None:
    points = noisy_decay(100)
    assert downsample(points, 256) == points


@pytest.mark.parametrize("n", [257, 1000, 12_345])
def test_downsample_keeps_first_last_and_the_minimum_within_the_limit(n: int) -> None:
    points = noisy_decay(n)
    kept = downsample(points, 256)
    assert len(kept) <= 256
    assert kept[0] == points[0] and kept[-1] == points[-1]
    assert min(points, key=lambda p: p[1]) in kept
    assert max(points, key=lambda p: p[1]) in kept
    assert [x for x, _ in kept] == sorted(x for x, _ in kept)
    assert set(kept) <= set(points)  # only recorded points, none invented


def test_downsample_keeps_a_spike_and_a_dip_in_the_middle() -> None:
    points = [(float(s), 2.0) for s in range(1, 5001)]
    points[2500] = (2501.0, 9.0)
    points[3700] = (3701.0, 0.1)
    kept = downsample(points, 64)
    assert (2501.0, 9.0) in kept and (3701.0, 0.1) in kept


def test_downsample_needs_room_for_a_shape() -> None:
    with pytest.raises(ValueError):
        downsample(noisy_decay(10), 3)


def test_history_stays_bounded_over_a_long_run_with_even_resolution() -> None:
    history = History()
    for step, loss in noisy_decay(100_000):
        history.add_many(step, {"trainLoss": loss, "learningRate": 1e-3, "gradNorm": float("nan")})
    train = history.series["trainLoss"]
    assert LIMIT // 2 <= len(train) <= LIMIT
    assert train[0][0] == 1.0 and train[-1][0] == 100_000.0
    assert "gradNorm" not in history.series  # non-finite values are not recorded
    # Even along the run: the first and the last fifth of the steps hold similar numbers of points.
    early = sum(1 for x, _ in train if x <= 20_000)
    late = sum(1 for x, _ in train if x > 80_000)
    assert 0.5 < early / late < 2.0, (early, late)


def test_a_repeated_step_replaces_its_point_and_documents_round_trip() -> None:
    history = History(limit=8)
    history.add("evalLoss", 10, 3.0)
    history.add("evalLoss", 10, 2.5)
    history.checkpoint({"step": 10, "path": "checkpoints/checkpoint-10"})
    history.checkpoint({"step": 10, "path": "checkpoints/checkpoint-10", "evalLoss": 2.5})
    history.hyperparameters = {"learningRate": 0.001}
    document = history.document("2026-12-03T09:00:00Z")
    assert document["series"] == {"evalLoss": [[10, 2.5]]}
    assert document["checkpoints"] == [{"step": 10, "path": "checkpoints/checkpoint-10", "evalLoss": 2.5}]
    restored = History.from_document(document, limit=8)
    assert restored.series == {"evalLoss": [(10.0, 2.5)]} and restored.checkpoints == history.checkpoints
