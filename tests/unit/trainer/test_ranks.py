"""Several ranks under the supervisor (gloo on CPU): the pod's exit code, termination message and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from finetune_trainer.train import checkpoints

from .test_training_runs import environment, finish, prepare, wait_for_checkpoint

WORKER = Path(__file__).with_name("rank_fault_worker.py")


@pytest.mark.slow  # two training processes
def test_a_user_error_on_rank_one_is_the_pods_exit_code_and_reason(tmp_path: Path) -> None:
    good = prepare(tmp_path)
    document = json.loads(good.read_text())
    document["spec"]["baseModel"] = {"name": "llama", "path": "/models/llama"}
    document["paths"]["baseModel"] = str(tmp_path / "no-such-model")
    bad = tmp_path / "bad-job.json"
    bad.write_text(json.dumps(document))
    pod = (
        "import sys; from finetune_trainer.train import launcher; "
        f"sys.exit(launcher.supervise([sys.executable, {str(WORKER)!r}, {str(good)!r}, {str(bad)!r}], 2, {{}}))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", pod],
        env=environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = finish(tmp_path, process)
    assert run.returncode == 11, run.events[-3:]
    assert run.termination["reason"] == "InvalidModel" and run.termination["failureKind"] == "User"
    assert "no-such-model" in run.termination["message"]


@pytest.mark.slow  # two training processes
def test_sigterm_stops_every_rank_within_a_micro_batch_and_exits_143(tmp_path: Path) -> None:
    prepare(tmp_path, batchSize=1, gradientAccumulationSteps=4, epochs=2)
    process = subprocess.Popen(
        [sys.executable, "-m", "finetune_trainer.train", "--config", str(tmp_path / "job.json")],
        env={**environment(tmp_path), "FINETUNE_PROCESSES": "2", "FINETUNE_GRACE_SECONDS": "120"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first = wait_for_checkpoint(tmp_path, process)
    os.kill(process.pid, signal.SIGTERM)  # the kubelet signals the container's main process only
    run = finish(tmp_path, process)
    assert run.returncode == 143, run.events[-5:]
    assert run.termination == {}
    stopped = next(event for event in run.events if event.get("event") == "sigterm")
    latest = checkpoints.latest(tmp_path / "checkpoints")
    assert latest is not None and latest.step == stopped["step"] >= first.step
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= {path.name for path in latest.path.iterdir()}


def worker_pid(supervisor: int, rank: int) -> int:
    """The training process of `rank`: a child of the supervisor with RANK=<rank> in its environment."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            environ = (status.parent / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # exited meanwhile
        if int(fields["PPid"]) == supervisor and f"RANK={rank}".encode() in environ:
            return int(status.parent.name)
    raise AssertionError(f"no rank {rank} under process {supervisor}")


@pytest.mark.slow  # two training processes
def test_a_rank_aborted_mid_training_is_named_not_the_rank_that_lost_contact(tmp_path: Path) -> None:
    """NCCL's watchdog ends a rank with SIGABRT; the other rank then fails in its next collective."""
    prepare(tmp_path, batchSize=1, gradientAccumulationSteps=4, epochs=2)
    process = subprocess.Popen(
        [sys.executable, "-m", "finetune_trainer.train", "--config", str(tmp_path / "job.json")],
        env={**environment(tmp_path), "FINETUNE_PROCESSES": "2", "FINETUNE_GRACE_SECONDS": "120"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for_checkpoint(tmp_path, process)
    os.kill(worker_pid(process.pid, 1), signal.SIGABRT)
    run = finish(tmp_path, process)
    assert run.returncode == 20, run.events[-5:]
    assert (run.termination["reason"], run.termination["failureKind"]) == ("RanksLostContact", "System")
    assert run.termination["message"].startswith("rank 1 died from SIGABRT")
