"""Multi-GPU: the entrypoint re-executes itself under torchrun, one process per visible GPU.

The container command stays `python -m finetune_trainer.train` whatever the GPU count; torchrun
sets RANK/LOCAL_RANK/WORLD_SIZE, which is also how a worker knows not to relaunch again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

MODULE = "finetune_trainer.train"


def is_worker(environ: Mapping[str, str]) -> bool:
    return "LOCAL_RANK" in environ


def rank(environ: Mapping[str, str]) -> int:
    return int(environ.get("RANK", "0"))


def torchrun_argv(python: str, gpus: int, args: Sequence[str], environ: Mapping[str, str]) -> list[str] | None:
    """The command to exec instead of this process, or None to train in this process."""
    if gpus <= 1 or is_worker(environ):
        return None
    return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}", "-m", MODULE, *args]
