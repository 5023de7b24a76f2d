from pathlib import Path

import pytest

from finetune_trainer.curate import workers


@pytest.mark.parametrize(
    ("requested", "input_bytes", "cpus", "expected"),
    [
        (3, 10, 2, 3),  # an explicit request wins
        (0, 1 << 20, 8, 1),  # small input: one block, nothing to overlap
        (0, 1 << 30, 2, 2),  # threads share memory: even two CPUs gain (no inter-process copying)
        (0, 1 << 30, 4, 4),
        (0, 1 << 30, 64, workers.MAX_WORKERS),
    ],
)
def test_choose(requested: int, input_bytes: int, cpus: int, expected: int) -> None:
    assert workers.choose(requested, input_bytes, cpus) == expected


@pytest.mark.parametrize(("cpu_max", "limit"), [("150000 100000", 2), ("50000 100000", 1), ("max 100000", None)])
def test_cgroup_quota_limits_cpus(tmp_path: Path, cpu_max: str, limit: int | None) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    affinity = workers.available_cpus(tmp_path / "missing")
    expected = affinity if limit is None else min(affinity, limit)
    assert workers.available_cpus(tmp_path / "cpu.max") == expected
