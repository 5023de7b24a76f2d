"""A full workspace volume: turn the write that failed into a StorageFull failure (exit 13).

Every artifact on the workspace is built beside its destination and renamed into place
(checkpoints in `checkpoints/.staging/`, `model/` and the builtin model in hidden temp folders), so
a write that fails midway never damages what was complete before: the previous checkpoint stays
loadable. What the failure does leave is the partial copy, which holds the very space the next
attempt needs; `guard` removes it, then reports how full the volume was, which checkpoint is intact
and what to change.

Detection: ENOSPC/EDQUOT anywhere in the exception chain (`failures.is_storage_full`). PyTorch's
`torch.save` is the exception: its C++ writer loses the errno and raises e.g. `RuntimeError:
unexpected pos 576 vs 534`. So a write error (OSError, or a RuntimeError other than a CUDA OOM)
also counts as a full volume when the volume cannot hold another checkpoint at that moment: less
free space than the last complete checkpoint takes, or than min(64 MiB, 5%) of the volume before
the first one. Either way the next attempt would fail the same way, so StorageFull is the right
verdict even if the write failed for another reason. Other write errors (EIO, EROFS, ...) stay
InternalError (failureKind System): a retry on another node may succeed, and their message already
names the file.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import (
    JobFailed,
    failed_path,
    human_bytes,
    is_storage_full,
    storage_full_fix,
    volume_usage,
)
from finetune_trainer.train import checkpoints

# "Almost no space left": below the smaller of 64 MiB and 5% of the volume.
NEARLY_FULL_BYTES = 64 * 1024**2
NEARLY_FULL_FRACTION = 0.05


def cannot_hold_a_checkpoint(workspace: Path) -> bool:
    usage = volume_usage(workspace)
    if usage is None:
        return False
    free, total = usage
    latest = checkpoints.latest(workspace / "checkpoints")
    return free < max(min(NEARLY_FULL_BYTES, total * NEARLY_FULL_FRACTION), _size(latest.path) if latest else 0)


@contextmanager
def guard(workspace: Path, activity: str, *, keep: int, clean: bool) -> Iterator[None]:
    """Raise JobFailed(StorageFull) for a full volume while `activity`; `clean` removes the partial checkpoint.

    `clean` is for rank 0 only: it owns the staging folder.
    """
    try:
        yield
    except JobFailed:
        raise
    except Exception as error:
        full = is_storage_full(error) or (_write_error(error) and cannot_hold_a_checkpoint(workspace))
        staging = workspace / "checkpoints" / checkpoints.STAGING
        partial = _partial_checkpoints(staging)
        at_failure = volume_usage(workspace)
        if clean:
            freed = _size(staging)
            # Unsealed and useless (the next attempt clears it too), but it holds the space.
            shutil.rmtree(staging, ignore_errors=True)
        else:
            freed = 0
        if not full:
            raise
        message = full_message(workspace, activity, error, partial, at_failure, freed, keep)
        raise JobFailed(Reason.STORAGE_FULL, message) from error


def full_message(
    workspace: Path,
    activity: str,
    error: BaseException,
    partial: list[str],
    at_failure: tuple[int, int] | None,
    freed: int,
    keep: int,
) -> str:
    where = failed_path(error)
    if where is not None:
        where = _relative(Path(where), workspace)
    elif partial:
        where = f"checkpoints/{checkpoints.STAGING}/{partial[-1]}"
    cause = "No space left on device" if is_storage_full(error) else f"{type(error).__name__}: {error}"[:200]
    if partial:
        activity = f"writing {partial[-1]}"
    parts = [f"the workspace volume is full ({cause}) while {activity}" + (f" ({where})" if where else "")]
    if at_failure is not None:
        parts[0] += f": {human_bytes(at_failure[0])} free of {human_bytes(at_failure[1])}"
    if partial and freed:
        parts.append(f"the partial {partial[-1]} was removed ({human_bytes(freed)} freed)")
    latest = checkpoints.latest(workspace / "checkpoints")
    if latest is not None:
        size = _size(latest.path)
        parts.append(
            f"the last complete checkpoint, {latest.path.name}, is intact ({human_bytes(size)}) and a job on this "
            "workspace resumes from it"
        )
        # `keep` are kept, and the next one is sealed before the oldest is pruned.
        need = f" (about {human_bytes(size)} per checkpoint, up to {keep + 1} at once, plus model/)"
    else:
        parts.append("no checkpoint was complete yet")
        need = ""
    parts.append(storage_full_fix(need))
    return "; ".join(parts)


def _write_error(error: BaseException) -> bool:
    """What a failed write can look like: an OSError, or torch's writer's RuntimeError (not a CUDA OOM)."""
    return isinstance(error, OSError) or (
        isinstance(error, RuntimeError) and not isinstance(error, torch.cuda.OutOfMemoryError)
    )


def _partial_checkpoints(staging: Path) -> list[str]:
    try:
        return sorted((p.name for p in staging.iterdir() if p.name.startswith("checkpoint-")), key=_step)
    except OSError:
        return []


def _step(name: str) -> int:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def _size(folder: Path) -> int:
    total = 0
    try:
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    except OSError:
        pass
    return total


def _relative(path: Path, workspace: Path) -> str:
    try:
        return str(path.relative_to(workspace))
    except ValueError:
        return str(path)
