"""GPU-side failures in words a person can act on: the GPU ran out of memory, the ranks lost each other.

Both arrive as library exceptions whose text is written for PyTorch developers: torch's out-of-memory error is
a paragraph about the caching allocator, and an NCCL failure is a stack of C++ frames on whichever rank noticed
it, often not the rank that failed. Recognising them looks through the whole exception chain (DDP, Accelerate
and Triton wrap the original), by type where torch has one and by the texts the native code raises otherwise.
The messages are pure functions of what the caller gathered, so they are tested without a GPU.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

import torch

from finetune_trainer.failures import exception_chain

# Native allocations that fail outside torch's caching allocator (cuBLAS workspaces, NCCL buffers, raw CUDA).
_OOM_TEXTS = (
    "CUDA out of memory",
    "CUDA error: out of memory",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "cudaErrorMemoryAllocation",
)
_COLLECTIVE_TEXTS = (
    "NCCL error",
    "NCCL communicator",
    "ProcessGroupNCCL",
    "Watchdog caught collective operation timeout",
    "Connection closed by peer",  # gloo: the peer process is gone
    "Connection reset by peer",
)
_TRIED = re.compile(r"Tried to allocate ([0-9.]+ [KMGT]?i?B)")
FIRST_LINE_LIMIT = 300
GIB = 1024**3


@dataclass(frozen=True)
class GpuMemory:
    """The failing rank's GPU as torch saw it when the error was caught."""

    name: str
    total_bytes: int
    peak_allocated_bytes: int


def is_out_of_memory(error: BaseException) -> bool:
    return any(
        isinstance(current, torch.OutOfMemoryError) or any(text in str(current) for text in _OOM_TEXTS)
        for current in exception_chain(error)
    )


def is_collective_failure(error: BaseException) -> bool:
    """A collective (NCCL on GPUs, gloo on CPUs) failed or timed out: the ranks lost each other."""
    return any(
        isinstance(current, torch.distributed.DistError) or any(text in str(current) for text in _COLLECTIVE_TEXTS)
        for current in exception_chain(error)
    )


def out_of_memory_message(error: BaseException, rank: int, gpu: GpuMemory | None, rows: int, row_tokens: int) -> str:
    """Which rank, which GPU, how full, at what micro-batch, and what to change; torch's allocator advice left out."""
    tried = next((match.group(1) for c in exception_chain(error) if (match := _TRIED.search(str(c)))), None)
    where = f"rank {rank}"
    if gpu is not None:
        where += (
            f" ({gpu.name}, {gpu.total_bytes / GIB:.1f} GiB; training had allocated up to "
            f"{gpu.peak_allocated_bytes / GIB:.1f} GiB)"
        )
    attempt = f" allocating {tried}" if tried else ""
    return (
        f"the GPU ran out of memory on {where}{attempt}, at micro-batches of {rows} rows x {row_tokens} tokens: "
        "lower training.batchSize (raise gradientAccumulationSteps to keep the global batch) or "
        "training.maxSeqLength, or use method lora"
    )


def collective_failure_message(error: BaseException, rank: int) -> str:
    """The rank that noticed, the library's first line, and where the cause usually is."""
    first = next(
        (str(c).strip().splitlines()[0] for c in exception_chain(error) if str(c).strip()), type(error).__name__
    )
    if len(first) > FIRST_LINE_LIMIT:
        first = first[:FIRST_LINE_LIMIT] + "..."
    return (
        f"rank {rank} lost contact with the other ranks ({type(error).__name__}: {first}). Usually another rank "
        "failed first (search the pod's log for its error) or a GPU, NVLink or network fault broke the "
        "collective; retried from the last checkpoint. Set NCCL_DEBUG=WARN in spec.env to see NCCL's reason"
    )


def signal_death_message(rank: int, signal_number: int) -> str:
    """A rank killed by a signal wrote nothing itself: say what usually sends that signal to a training rank."""
    try:
        name = signal.Signals(signal_number).name
    except ValueError:
        name = f"signal {signal_number}"
    return (
        f"rank {rank} died from {name} without reporting an error. NCCL's watchdog aborts (SIGABRT) a rank whose "
        "collective timed out because another rank hung or a GPU, NVLink or network fault stopped it; CUDA aborts "
        "on device errors (the node's kernel log shows an Xid). Retried from the last checkpoint; the pod's log "
        "has the rank's last lines"
    )


def gpu_memory() -> GpuMemory | None:
    """This rank's GPU right now, or None on a CPU."""
    if not torch.cuda.is_available():
        return None
    device = torch.cuda.current_device()
    return GpuMemory(
        name=torch.cuda.get_device_name(device),
        total_bytes=torch.cuda.get_device_properties(device).total_memory,
        peak_allocated_bytes=torch.cuda.max_memory_allocated(device),
    )
