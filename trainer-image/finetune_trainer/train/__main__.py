"""`python -m finetune_trainer.train [--config PATH]`: exit codes per docs/runtime-contract.md.

0 success, 10 data error, 11 config error (invalid model, checkpoint of another config),
12 evaluation gate failed, 13 workspace volume full (reason StorageFull; the last complete
checkpoint is kept), 20 internal error (also CUDA out-of-memory, reason OutOfMemory),
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
from finetune_trainer import termination  # noqa: E402
from finetune_trainer.failures import JobFailed  # noqa: E402
from finetune_trainer.train import jsonlog, launcher  # noqa: E402
from finetune_trainer.train.run import Interrupted, run  # noqa: E402

DEFAULT_CONFIG = "/etc/finetune/job.json"
EXIT_TERMINATED = 143

log = logging.getLogger("finetune_trainer.train")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m finetune_trainer.train", description=__doc__)
    parser.add_argument("--config", default=os.environ.get("FINETUNE_CONFIG", DEFAULT_CONFIG))
    options = parser.parse_args(args)

    command = launcher.torchrun_argv(sys.executable, torch.cuda.device_count(), args, os.environ)
    if command is not None:
        os.execv(command[0], command)
    rank = launcher.rank(os.environ)
    jsonlog.configure(rank)
    try:
        payload = run(JobConfig.load(Path(options.config)), os.environ, rank)
    except JobFailed as failure:
        return fail(rank, failure.reason, failure.message)
    except Interrupted as stopped:
        log.warning("%s", stopped)
        return EXIT_TERMINATED
    except torch.cuda.OutOfMemoryError as error:
        return fail(
            rank,
            Reason.OUT_OF_MEMORY,
            f"the GPU ran out of memory ({error}); lower training.batchSize or training.maxSeqLength, "
            "or use method lora",
        )
    except Exception as error:
        log.exception("training failed")
        return fail(rank, Reason.INTERNAL_ERROR, f"{type(error).__name__}: {error}")
    if payload is not None:
        termination.write(TerminationMessage.model_validate(payload))
        jsonlog.event("succeeded", **payload)
    return ExitCode.SUCCEEDED


def fail(rank: int, reason: Reason, message: str) -> int:
    log.error("%s: %s", reason.value, message)
    if rank == 0:
        termination.write(TerminationMessage.failure(reason, message))
    return exit_code_for(reason)


if __name__ == "__main__":
    sys.exit(main())
