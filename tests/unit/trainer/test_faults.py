"""GPU failures in plain words: out of memory, ranks that lost contact, ranks killed by a signal."""

import signal
from pathlib import Path

import torch

from finetune_operator.api import TerminationMessage
from finetune_operator.api.contract import Reason
from finetune_trainer.train import faults, launcher, outcome

TORCH_OOM = (
    "CUDA out of memory. Tried to allocate 3.91 GiB. GPU 0 has a total capacity of 79.11 GiB of which 1.2 GiB is "
    "free. Of the allocated memory 74.0 GiB is allocated by PyTorch. If reserved but unallocated memory is large "
    "try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation."
)


def wrapped(inner: BaseException, outer: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as error:
            raise outer from error
    except BaseException as caught:
        return caught


def test_out_of_memory_is_recognised_through_wrappers_and_from_native_allocations() -> None:
    assert faults.is_out_of_memory(torch.OutOfMemoryError(TORCH_OOM))
    assert faults.is_out_of_memory(wrapped(torch.OutOfMemoryError(TORCH_OOM), RuntimeError("backward failed")))
    assert faults.is_out_of_memory(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"))
    # The host's memory is another matter (the container's limit: OOMKilled).
    assert not faults.is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 9 GB"))
    assert not faults.is_out_of_memory(ValueError("bad value"))


def test_the_out_of_memory_message_names_the_rank_gpu_and_micro_batch_without_allocator_advice() -> None:
    gpu = faults.GpuMemory("NVIDIA H100 80GB HBM3", total_bytes=int(79.11 * 1024**3), peak_allocated_bytes=77 * 1024**3)
    message = faults.out_of_memory_message(torch.OutOfMemoryError(TORCH_OOM), rank=3, gpu=gpu, rows=8, row_tokens=4096)
    assert "rank 3 (NVIDIA H100 80GB HBM3, 79.1 GiB; training had allocated up to 77.0 GiB)" in message
    assert "allocating 3.91 GiB" in message and "8 rows x 4096 tokens" in message
    assert "training.batchSize" in message and "gradientAccumulationSteps" in message
    assert "PYTORCH_CUDA_ALLOC_CONF" not in message


def test_collective_failures_are_recognised_from_nccl_and_gloo() -> None:
    nccl = torch.distributed.DistBackendError("NCCL error in: ProcessGroupNCCL.cpp:1970, unhandled system error")
    # What gloo raises on rank 0 when rank 1 died (measured with torch 2.14): a plain RuntimeError.
    gloo = RuntimeError("[gloo/transport/tcp/pair.cc:561] Connection closed by peer [127.0.0.1]:16796.")
    assert faults.is_collective_failure(nccl) and faults.is_collective_failure(wrapped(gloo, RuntimeError("step")))
    assert not faults.is_collective_failure(RuntimeError("shape mismatch"))
    message = faults.collective_failure_message(nccl, rank=0)
    assert message.startswith("rank 0 lost contact with the other ranks (DistBackendError: NCCL error in:")
    assert "another rank failed first" in message and "NCCL_DEBUG" in message


def test_the_rank_a_signal_ended_first_is_named_and_outside_kills_leave_the_container_state() -> None:
    # Failure times are whole seconds: rank 0, stopped by the agent in the same second, is no cause.
    stopped, killed_late = (-signal.SIGTERM, 3), (-signal.SIGKILL, 2)
    aborted = launcher.signal_death({0: stopped, 1: (-signal.SIGABRT, 3), 2: (-signal.SIGSEGV, 4), 3: killed_late})
    assert aborted is not None and aborted.payload is not None
    assert (aborted.exit_code, aborted.rank, aborted.payload.reason) == (20, 1, "RanksLostContact")
    assert "rank 1 died from SIGABRT" in (aborted.payload.message or "")
    killed = launcher.signal_death({0: (-signal.SIGKILL, 1), 1: stopped})
    assert killed == outcome.Outcome(137, None, 0)  # the operator reads OOMKilled from the container
    assert launcher.signal_death({0: (11, 1), 1: stopped}) is None


def test_a_rank_that_only_lost_contact_never_hides_the_rank_that_failed(tmp_path: Path) -> None:
    claim_file = tmp_path / "outcome.json"
    environ = {outcome.OUTCOME_ENV: str(claim_file)}
    lost = TerminationMessage.failure(Reason.RANKS_LOST_CONTACT, "rank 0 lost contact")
    outcome.record(outcome.Outcome(20, lost, 0), environ)  # noticed first...
    assert outcome.read(claim_file) is None
    cause = TerminationMessage.failure(Reason.INVALID_MODEL, "no config.json")
    outcome.record(outcome.Outcome(11, cause, 1), environ)  # ...but the cause claims the primary file
    primary = outcome.read(claim_file)
    assert primary is not None and (primary.exit_code, primary.rank) == (11, 1)
    secondary = outcome.read(outcome.secondary(claim_file))
    assert secondary is not None and secondary.rank == 0
