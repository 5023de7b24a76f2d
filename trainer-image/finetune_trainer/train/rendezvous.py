"""The pods of a multi-node job meet before training, within a deadline, or fail naming who was missing.

torch's static rendezvous would wait for the group with its own timeout and then fail with a store error that
names nobody; NCCL would hang longer. So the supervisor first assembles the group itself, on the TCPStore that
node rank 0 serves on the master port (multi-tenant: torch's rendezvous reuses this very server afterwards):

- node rank k > 0 waits for rank 0's hostname to resolve (its pod has an IP, the headless Service published it),
  connects, writes `joined/k`, and waits for rank 0's `assembled`;
- node rank 0 waits until every `joined/k` exists, then writes `assembled`.

Each side gives up at the same deadline (`RENDEZVOUS_SECONDS_ENV`, from the operator's settings) with
`RendezvousTimeout`: rank 0 names the node ranks (and their hostnames) that never joined; rank k names rank 0's
hostname and whether it did not resolve, could not be reached, or never confirmed the group.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from finetune_operator.api.contract import Reason
from finetune_operator.api.nodegroup import (
    GROUP_ID_ENV,
    MASTER_ADDR_ENV,
    MASTER_PORT,
    MASTER_PORT_ENV,
    NODE_RANK_ENV,
    NODES_ENV,
    RENDEZVOUS_SECONDS_ENV,
)
from finetune_trainer.failures import JobFailed

DEFAULT_SECONDS = 600
_POLL_SECONDS = 1.0
# The stores of `assemble`, open for the life of the process: rank 0's serves torch's rendezvous after it.
_OPEN_STORES: list[Any] = []


@dataclass(frozen=True)
class Group:
    nodes: int
    node_rank: int
    master_addr: str
    master_port: int
    group_id: str
    seconds: int

    def peer_host(self, rank: int) -> str:
        """Node rank `rank`'s hostname: `<Job>-<rank>.<Service>`, as rank 0's is `<Job>-0.<Service>`."""
        pod, _, subdomain = self.master_addr.partition(".")
        base = pod.rsplit("-", 1)[0]
        return f"{base}-{rank}.{subdomain}" if subdomain else f"{base}-{rank}"


def group(environ: Mapping[str, str]) -> Group | None:
    """This pod's place in a multi-node group, or None for a single-pod job."""
    nodes = int(environ.get(NODES_ENV) or 1)
    if nodes <= 1:
        return None
    return Group(
        nodes=nodes,
        node_rank=int(environ.get(NODE_RANK_ENV) or 0),
        master_addr=environ[MASTER_ADDR_ENV],
        master_port=int(environ.get(MASTER_PORT_ENV) or MASTER_PORT),
        group_id=environ.get(GROUP_ID_ENV) or "group",
        seconds=int(environ.get(RENDEZVOUS_SECONDS_ENV) or DEFAULT_SECONDS),
    )


def _key(g: Group, what: str) -> str:
    return f"finetune/{g.group_id}/{what}"


def assemble(g: Group, clock: Callable[[], float] = time.monotonic) -> None:
    """Meet the other pods or raise JobFailed(RendezvousTimeout)."""
    deadline = clock() + g.seconds
    _OPEN_STORES.append(_host(g, deadline, clock) if g.node_rank == 0 else _join(g, deadline, clock))


def _store(g: Group, host: str, is_master: bool, seconds: float) -> Any:
    from torch.distributed import TCPStore

    timeout = timedelta(seconds=max(1.0, seconds))
    return TCPStore(host, g.master_port, None, is_master, timeout, wait_for_workers=False, multi_tenant=True)


def _host(g: Group, deadline: float, clock: Callable[[], float]) -> Any:
    store = _store(g, "localhost", True, deadline - clock())
    waiting = list(range(1, g.nodes))
    while True:
        waiting = [rank for rank in waiting if not store.check([_key(g, f"joined/{rank}")])]
        if not waiting:
            store.set(_key(g, "assembled"), "1")
            return store
        if clock() >= deadline:
            raise JobFailed(Reason.RENDEZVOUS_TIMEOUT, missing_message(g, waiting))
        time.sleep(_POLL_SECONDS)


def missing_message(g: Group, missing: list[int]) -> str:
    joined = g.nodes - len(missing)
    names = ", ".join(f"node rank {rank} ({g.peer_host(rank)})" for rank in missing)
    return (
        f"{joined} of {g.nodes} pods met within {g.seconds} s; missing: {names}. Their pods were not scheduled or "
        f"started, or cannot reach {g.master_addr}:{g.master_port} (kubectl describe pod shows why)"
    )


def _join(g: Group, deadline: float, clock: Callable[[], float]) -> Any:
    where = f"node rank 0 ({g.master_addr}:{g.master_port})"
    while True:
        try:
            socket.getaddrinfo(g.master_addr, g.master_port, type=socket.SOCK_STREAM)
            break
        except socket.gaierror as error:
            if clock() >= deadline:
                raise JobFailed(
                    Reason.RENDEZVOUS_TIMEOUT,
                    f"node rank {g.node_rank} could not resolve {where} within {g.seconds} s ({error}): its pod was "
                    "not scheduled or started, or the headless Service has no record for it",
                ) from error
            time.sleep(_POLL_SECONDS)
    try:
        store = _store(g, g.master_addr, False, deadline - clock())
        store.set(_key(g, f"joined/{g.node_rank}"), socket.gethostname())
        store.wait([_key(g, "assembled")], timedelta(seconds=max(1.0, deadline - clock())))
    except Exception as error:  # torch raises DistNetworkError / DistStoreError (RuntimeError) on timeouts
        raise JobFailed(
            Reason.RENDEZVOUS_TIMEOUT,
            f"node rank {g.node_rank} did not meet {where} within {g.seconds} s: {type(error).__name__}: {error}. "
            "Rank 0 names the missing ranks in its own message, unless it was not running",
        ) from error
    return store
