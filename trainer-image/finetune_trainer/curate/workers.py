"""How many worker processes to use: the CPUs this container may actually use, when the input pays for them."""

from __future__ import annotations

import math
import os
from pathlib import Path

# Starting a worker (a fresh interpreter importing numpy, orjson, RE2) costs ~0.5 s;
# below this much input one process finishes sooner.
PARALLEL_MIN_BYTES = 64 << 20
MAX_WORKERS = 8


def available_cpus(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs allowed by affinity and by the cgroup v2 quota (a pod's CPU limit), whichever is lower."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = cgroup_cpu_max.read_text().split()
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, math.ceil(int(quota) / int(period))))


def choose(requested: int, input_bytes: int, cpus: int) -> int:
    """`requested` if given (> 0); else one worker per CPU beyond the first, for large inputs only.

    The ordered consumer (reading, deduplication, writing) keeps a CPU busy on its
    own, and shipping lines to workers costs CPU too (~30 us a session, measured):
    with 2 CPUs, one process does the same work in less time (bench/curation).
    """
    if requested > 0:
        return requested
    if input_bytes < PARALLEL_MIN_BYTES or cpus < 3:
        return 1
    return min(cpus - 1, MAX_WORKERS)
