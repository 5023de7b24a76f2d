"""`python -m finetune_trainer.train [--config PATH]`: exit codes per docs/runtime-contract.md.

0 success, 10 data error, 11 config error (invalid model, checkpoint of another config),
12 evaluation gate failed, 13 workspace volume full (reason StorageFull; the last complete
checkpoint is kept), 20 internal error (also CUDA out-of-memory, reason OutOfMemory, and ranks that lost
contact, RanksLostContact),
143 stopped by SIGTERM after a checkpoint.
"""

from __future__ import annotations

import os

# Before transformers/datasets are imported: pods have no model hub, and progress bars would
# interleave with the JSON log lines.
for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_name, _value)

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from finetune_operator.api import JobConfig, TerminationMessage  # noqa: E402
from finetune_operator.api.contract import ExitCode, Reason, exit_code_for  # noqa: E402
from finetune_trainer.failures import JobFailed  # noqa: E402
from finetune_trainer.train import faults, gpus, hostmemory, jsonlog, launcher, outcome  # noqa: E402
from finetune_trainer.train.config import DEFAULT_BATCH_SIZE, DEFAULT_MAX_SEQ_LENGTH  # noqa: E402

DEFAULT_CONFIG = "/etc/finetune/job.json"

log = logging.getLogger("finetune_trainer.train")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m finetune_trainer.train", description=__doc__)
    parser.add_argument("--config", default=os.environ.get("FINETUNE_CONFIG", DEFAULT_CONFIG))
    options = parser.parse_args(args)

    visible = torch.cuda.device_count()
    if not launcher.is_worker(os.environ) and visible < gpus.expected(os.environ):
        missing = gpus_not_visible(visible)
        outcome.record(missing, os.environ)
        return missing.exit_code
    processes = launcher.process_count(os.environ, visible)
    if launcher.supervised(os.environ, processes):
        return launcher.supervise([sys.executable, "-m", launcher.MODULE, *args], processes, os.environ)
    rank = launcher.rank(os.environ)
    jsonlog.configure(rank)
    hostmemory.return_freed_tensors(os.environ)  # this process trains: see hostmemory
    result = train(Path(options.config), rank)
    outcome.record(result, os.environ)
    return result.exit_code


def train(config: Path, rank: int) -> outcome.Outcome:
    """This process's attempt, every failure turned into an exit code and a termination payload."""
    # Imported here, in the worker: the supervisor of several ranks never trains, and importing transformers, TRL
    # and PEFT took it ~8 CPU-seconds (torchrun's own imports: ~2) before it started the ranks.
    from finetune_trainer.train.run import Interrupted, run

    job: JobConfig | None = None
    try:
        job = JobConfig.load(config)
        payload = run(job, os.environ, rank)
    except JobFailed as failure:
        return failed(rank, failure.reason, failure.message)
    except Interrupted as stopped:
        log.warning("%s", stopped)
        return outcome.Outcome(ExitCode.TERMINATED, None, rank)
    except Exception as error:
        log.exception("training failed")
        return unexpected(error, rank, job)
    if payload is not None:
        jsonlog.event("succeeded", **payload)
    leave_process_group()
    return outcome.Outcome(ExitCode.SUCCEEDED, TerminationMessage.model_validate(payload) if payload else None, rank)


def leave_process_group() -> None:
    """Destroy the ranks' process group once this rank's work is done. Left to the interpreter's exit, a gloo
    group whose peer had already gone could abort the process ("terminate called without an active exception",
    signal 6; seen in test_rendezvous' two-pod world) and hold the pods' agents at their exit barrier."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def unexpected(error: Exception, rank: int, job: JobConfig | None) -> outcome.Outcome:
    """An exception nothing below turned into a reason: the GPU's memory, the ranks' contact, or a bug."""
    if faults.is_out_of_memory(error):
        training = job.spec.training if job else None
        rows = (training.batch_size if training else None) or DEFAULT_BATCH_SIZE
        row_tokens = (training.max_seq_length if training else None) or DEFAULT_MAX_SEQ_LENGTH
        message = faults.out_of_memory_message(error, rank, faults.gpu_memory(), rows, row_tokens)
        return failed(rank, Reason.OUT_OF_MEMORY, message)
    if faults.is_collective_failure(error):
        return failed(rank, Reason.RANKS_LOST_CONTACT, faults.collective_failure_message(error, rank))
    return failed(rank, Reason.INTERNAL_ERROR, f"{type(error).__name__}: {error}")


def gpus_not_visible(visible: int) -> outcome.Outcome:
    jsonlog.configure(0)
    environ = os.environ
    message = gpus.not_visible_message(
        gpus.expected(environ),
        visible,
        torch.version.cuda,
        gpus.driver_version(),
        environ.get("NVIDIA_VISIBLE_DEVICES"),
    )
    return failed(0, Reason.GPUS_NOT_VISIBLE, message)


def failed(rank: int, reason: Reason, message: str) -> outcome.Outcome:
    log.error("%s: %s", reason.value, message)
    return outcome.Outcome(exit_code_for(reason), TerminationMessage.failure(reason, message), rank)


if __name__ == "__main__":
    sys.exit(main())
