"""`make gpu-smoke` has no GPU to run on here: its code runs on the CPU so it still works on the first GPU machine."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SMOKE = Path(__file__).resolve().parents[3] / "bench" / "trainer" / "gpu_smoke.py"


def test_without_cuda_it_refuses_unless_allowed() -> None:
    hidden = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # also on a machine with a GPU
    done = subprocess.run([sys.executable, str(SMOKE)], capture_output=True, text=True, timeout=300, env=hidden)
    assert done.returncode == 2 and "no CUDA GPU" in done.stderr


@pytest.mark.slow  # a few tiny training steps
def test_the_tiny_config_trains_and_reports_throughput_on_a_cpu() -> None:
    command = [sys.executable, str(SMOKE), "--allow-cpu", "--configs", "tiny", "--steps", "3"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert (report["config"], report["device"], report["attention"], report["stepsTimed"]) == ("tiny", "cpu", "sdpa", 1)
    assert report["tokensPerSecond"] > 0 and report["peakAllocatedGiB"] is None
