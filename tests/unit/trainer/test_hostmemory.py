"""Freed tensors leave a training process's resident set (glibc's mmap threshold, `hostmemory`)."""

from __future__ import annotations

import subprocess
import sys

from finetune_trainer.train import hostmemory

# A fresh process each time: glibc's threshold is per process and pytest's may have moved already. A step's pattern:
# blocks of 4 MiB (a 1024 x 1024 fp32 weight) freed while something allocated after them (here 64 KiB) lives on,
# so the heap cannot shrink below it. Prints the resident growth, MiB, with all the 4 MiB blocks freed.
ROUNDS = """
import sys, torch
from finetune_trainer.train import hostmemory
if sys.argv[1] == "fixed":
    assert hostmemory.return_freed_tensors({})
def resident_mib():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 // 2**20
before = resident_mib()
kept = []
for _ in range(3):
    tensors = [torch.ones(2**20) for _ in range(64)]
    kept.append(torch.ones(2**14))
    del tensors
print(resident_mib() - before)
"""


def retained_mib(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout)


def test_freed_tensors_are_returned_to_the_kernel() -> None:
    # glibc's default: the first free raises the threshold, later rounds come from the heap and stay resident.
    assert retained_mib("default") >= 128
    assert retained_mib("fixed") < 32


def test_an_environment_that_sets_the_threshold_is_left_alone() -> None:
    assert not hostmemory.return_freed_tensors({"MALLOC_MMAP_THRESHOLD_": "65536"})
