"""Several training processes (one per visible GPU) under one supervisor: the pod's own process.

The supervisor runs torch's elastic launch API in-process (what torchrun runs, minus its exit
path): exec'ing torchrun made every worker failure exit 1, so a user error on 8 GPUs was retried
`backoffLimit` times, a rank-k failure left no termination message, and on SIGTERM torchrun
killed the workers after its own 30 s instead of the pod's grace period. Here:

- the first failing rank's exit code and termination message become the pod's (`outcome`); a rank that
  died from a signal could not write one, so the supervisor names it (`signal_death`);
- SIGTERM (sent by the kubelet to this process only) is passed to every worker, which then
  checkpoints and exits 143; they get `GRACE_ENV` seconds (the pod's grace period, from the
  operator) before torch kills them, and the pod exits 143;
- workers see RANK/LOCAL_RANK/WORLD_SIZE, which is also how a worker knows not to launch again.

`PROCESSES_ENV` overrides the process count (default: one per visible GPU); on a CPU node it
runs that many gloo ranks, which is how the tests exercise this path.

In a multi-node job (`rendezvous.group`) the supervisors of the pods first meet within a deadline
(`rendezvous.assemble`), then run torch's static rendezvous at node rank 0's hostname: what
`torchrun --nnodes N --node-rank $JOB_COMPLETION_INDEX --master-addr --master-port` runs.
"""

from __future__ import annotations

import os
import signal
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from finetune_operator.api import TerminationMessage
from finetune_operator.api.contract import ExitCode, Reason, exit_code_for
from finetune_trainer import termination
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import faults, outcome, rendezvous

MODULE = "finetune_trainer.train"
PROCESSES_ENV = "FINETUNE_PROCESSES"
GRACE_ENV = "FINETUNE_GRACE_SECONDS"
DEFAULT_GRACE_SECONDS = 30  # Kubernetes' default terminationGracePeriodSeconds


def is_worker(environ: Mapping[str, str]) -> bool:
    return "LOCAL_RANK" in environ


def rank(environ: Mapping[str, str]) -> int:
    return int(environ.get("RANK", "0"))


def process_count(environ: Mapping[str, str], visible_gpus: int) -> int:
    """How many training processes this pod runs: 1 inside a worker, else one per GPU unless overridden."""
    if is_worker(environ):
        return 1
    override = environ.get(PROCESSES_ENV)
    return int(override) if override else max(1, visible_gpus)


def supervised(environ: Mapping[str, str], processes: int) -> bool:
    """Whether this process supervises ranks: several of them here, or any number in a multi-node group."""
    return not is_worker(environ) and (processes > 1 or rendezvous.group(environ) is not None)


def shutdown_timeout(environ: Mapping[str, str]) -> int:
    """Seconds the workers get after SIGTERM: the pod's grace period (the kubelet kills them after it anyway)."""
    return int(environ.get(GRACE_ENV) or DEFAULT_GRACE_SECONDS)


def supervise(worker_argv: Sequence[str], processes: int, environ: Mapping[str, str]) -> int:
    """Run `worker_argv` as `processes` ranks; return the pod's exit code (termination message written)."""
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    group = rendezvous.group(environ)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=processes,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=1,
        shutdown_timeout=shutdown_timeout(environ),
    )
    if group is not None:
        try:
            rendezvous.assemble(group)
        except JobFailed as missing:
            termination.write(TerminationMessage.failure(missing.reason, missing.message))
            return exit_code_for(missing.reason)
        config = group_config(config, group)
    with tempfile.TemporaryDirectory(prefix="finetune-ranks-") as scratch:
        claim_file = Path(scratch) / "outcome.json"
        # The agent starts workers with a copy of this process's environment.
        os.environ[outcome.OUTCOME_ENV] = str(claim_file)
        fallback = 0
        signalled = None
        terminated = False
        try:
            elastic_launch(config, worker_argv[0])(*worker_argv[1:])
        except SignalException:
            fallback, terminated = ExitCode.TERMINATED, True
        except ChildFailedError as failed:
            fallback = failure_exit_code(failed.get_first_failure()[1].exitcode)
            signalled = signal_death({rank: (f.exitcode, f.timestamp) for rank, f in failed.failures.items()})
        finally:
            del os.environ[outcome.OUTCOME_ENV]
        # A rank's own report of its failure, else a rank killed by a signal (it could not report), else a rank
        # that only saw the others go (a consequence of one of the former when they exist; of the pod's own
        # SIGTERM when it got one: then the pod exits 143, a disruption, not a failure).
        claimed = outcome.read(claim_file) or signalled
        if claimed is None and not terminated:
            claimed = outcome.read(outcome.secondary(claim_file))
    if claimed is None:
        return fallback
    if claimed.payload is not None:
        termination.write(claimed.payload)
    return claimed.exit_code


def group_config(config: Any, group: rendezvous.Group) -> Any:
    """torch's static rendezvous at node rank 0's hostname, the group attempt's id as run id."""
    config.min_nodes = config.max_nodes = group.nodes
    config.run_id = group.group_id
    config.rdzv_backend = "static"
    config.rdzv_endpoint = f"{group.master_addr}:{group.master_port}"
    config.rdzv_configs = {"rank": group.node_rank, "timeout": group.seconds}
    return config


def failure_exit_code(worker_exit: int) -> int:
    """A worker that died without recording why: its code, or 128+N for a signal (137: killed, e.g. OOM)."""
    return 128 - worker_exit if worker_exit < 0 else worker_exit


def signal_death(failures: Mapping[int, tuple[int, float]]) -> outcome.Outcome | None:
    """The rank that a signal ended first, from {rank: (exit code, time in whole seconds)}; None if none did.

    SIGTERM is the agent stopping the other ranks after a failure (ranks catch the pod's SIGTERM and exit 143
    themselves): never a cause. SIGKILL comes from outside (the kernel's OOM killer, the kubelet) or from the
    agent when a rank outlives the grace period, so any other signal is the likelier cause; for a SIGKILL the
    pod exits 137 without a message and the operator reads the container's state (OOMKilled) itself. Other
    signals (NCCL's watchdog aborts, CUDA faults) get a termination message naming the rank.
    """
    deaths = sorted(
        (-code == signal.SIGKILL, when, rank, -code)
        for rank, (code, when) in failures.items()
        if code < 0 and -code != signal.SIGTERM
    )
    if not deaths:
        return None
    *_, rank, number = deaths[0]
    if number == signal.SIGKILL:
        return outcome.Outcome(128 + number, None, rank)
    message = TerminationMessage.failure(Reason.RANKS_LOST_CONTACT, faults.signal_death_message(rank, number))
    return outcome.Outcome(exit_code_for(Reason.RANKS_LOST_CONTACT), message, rank)
