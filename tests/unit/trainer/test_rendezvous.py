"""Multi-node rendezvous (train.rendezvous and the launcher): pods meet within the deadline, or the one that waited
fails with RendezvousTimeout naming who was missing. Real TCPStores on localhost, and real supervisors in
separate processes for a 2-node gloo all-reduce."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import launcher, rendezvous


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def group(rank: int, port: int, nodes: int = 2, seconds: int = 20, addr: str = "localhost") -> rendezvous.Group:
    return rendezvous.Group(nodes, rank, addr, port, "g1", seconds)


def test_a_single_pod_job_has_no_group_and_a_pod_of_a_group_reads_its_place() -> None:
    assert rendezvous.group({}) is None and rendezvous.group({"FINETUNE_NODES": "1"}) is None
    env = {
        "FINETUNE_NODES": "4",
        "JOB_COMPLETION_INDEX": "3",
        "FINETUNE_MASTER_ADDR": "demo-train-0.demo-train",
        "FINETUNE_MASTER_PORT": "29500",
        "FINETUNE_GROUP_ID": "uid-1",
        "FINETUNE_RENDEZVOUS_SECONDS": "90",
    }
    g = rendezvous.group(env)
    assert g == rendezvous.Group(4, 3, "demo-train-0.demo-train", 29500, "uid-1", 90)
    assert g.peer_host(2) == "demo-train-2.demo-train"
    assert launcher.supervised(env, 1) and not launcher.supervised({**env, "LOCAL_RANK": "0"}, 1)
    assert not launcher.supervised({}, 1)


def test_rank_zero_names_the_node_ranks_that_never_joined() -> None:
    with pytest.raises(JobFailed) as failed:
        rendezvous.assemble(group(0, free_port(), nodes=3, seconds=2, addr="demo-train-0.demo-train"))
    assert failed.value.reason is Reason.RENDEZVOUS_TIMEOUT
    assert failed.value.message.startswith("1 of 3 pods met within 2 s; missing: node rank 1 (demo-train-1.demo-train)")
    assert "node rank 2 (demo-train-2.demo-train)" in failed.value.message


def test_a_node_rank_names_rank_zeros_hostname_that_does_not_resolve() -> None:
    with pytest.raises(JobFailed) as failed:
        rendezvous.assemble(group(1, 29500, seconds=1, addr="demo-train-0.demo-train.invalid"))
    assert failed.value.reason is Reason.RENDEZVOUS_TIMEOUT
    assert "could not resolve node rank 0 (demo-train-0.demo-train.invalid:29500) within 1 s" in failed.value.message


def test_a_node_rank_names_rank_zero_when_nothing_answers_there() -> None:
    with pytest.raises(JobFailed) as failed:
        rendezvous.assemble(group(1, free_port(), seconds=2))
    assert "node rank 1 did not meet node rank 0 (localhost:" in failed.value.message


WORKER = """
import torch, torch.distributed as dist
dist.init_process_group("gloo")
total = torch.tensor([dist.get_rank() + 1.0])
dist.all_reduce(total)
print(dist.get_rank(), dist.get_world_size(), total.item(), flush=True)
# Without this, the rank whose peer exits first can abort in gloo's destructor ("terminate called without an
# active exception", exit -6; then its agent and the other's wait on each other's exit barrier): 4 of 16 runs
# failed or hung here without it, 0 of 25 with it.
dist.destroy_process_group()
"""
SUPERVISOR = "import os, sys; from finetune_trainer.train import launcher; "
SUPERVISOR += "sys.exit(launcher.supervise([sys.executable, sys.argv[1]], 1, os.environ))"


def supervisor(rank: int, port: int, tmp: Path, nodes: int = 2, seconds: int = 60) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "FINETUNE_NODES": str(nodes),
        "JOB_COMPLETION_INDEX": str(rank),
        "FINETUNE_MASTER_ADDR": "localhost",
        "FINETUNE_MASTER_PORT": str(port),
        "FINETUNE_GROUP_ID": "uid-1",
        "FINETUNE_RENDEZVOUS_SECONDS": str(seconds),
        "FINETUNE_TERMINATION_LOG": str(tmp / f"termination-{rank}"),
    }
    worker = tmp / "worker.py"
    worker.write_text(WORKER)
    return subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(worker)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_supervisors_run_one_world_through_torchs_static_rendezvous(tmp_path: Path) -> None:
    port = free_port()
    pods = [supervisor(rank, port, tmp_path) for rank in (1, 0)]
    outputs = [pod.communicate(timeout=180) for pod in pods]
    assert [pod.returncode for pod in pods] == [0, 0], outputs
    # Global rank = node rank here (one process per pod); both see a world of 2 and the same sum.
    assert outputs[0][0].split() == ["1", "2", "3.0"] and outputs[1][0].split() == ["0", "2", "3.0"]


def test_a_supervisor_alone_exits_with_rendezvous_timeouts_termination_message(tmp_path: Path) -> None:
    pod = supervisor(0, free_port(), tmp_path, nodes=2, seconds=2)
    pod.communicate(timeout=120)
    assert pod.returncode == 20
    message = json.loads((tmp_path / "termination-0").read_text())
    assert (message["reason"], message["failureKind"]) == ("RendezvousTimeout", "System")
    assert "missing: node rank 1 (localhost-1)" in message["message"]
