"""A training process's outcome: its exit code and termination payload, recorded for the pod.

One process (CPU, one GPU) is the pod's container process: it writes the termination message
itself. Several ranks (one per GPU) run under `launcher.supervise`, which sets `OUTCOME_ENV` to a
file in its scratch folder: every rank that fails, and rank 0 when it succeeds, claims that file,
and the first claim wins. The first failure is the cause (a user error on rank 3 kills the
collectives of the others, whose later errors are consequences), and the supervisor turns the
claim into the pod's exit code and termination message. A rank that only lost contact with the others
(`RanksLostContact`) or was stopped (exit 143: the supervisor stops every rank once one failed) claims a
second file instead (`secondary`): that outcome is a consequence whenever another rank failed, even one that
lost the race to claim or died from a signal without claiming anything.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from finetune_operator.api import TerminationMessage
from finetune_operator.api.contract import ExitCode, Reason
from finetune_trainer import termination

OUTCOME_ENV = "FINETUNE_RANK_OUTCOME"


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    payload: TerminationMessage | None
    """The termination message, or None (stopped on SIGTERM: the next attempt resumes)."""
    rank: int


def record(outcome: Outcome, environ: Mapping[str, str]) -> None:
    """Where this process's outcome goes: the supervisor's claim file, or the termination log."""
    claim_file = environ.get(OUTCOME_ENV)
    if claim_file is None:
        if outcome.payload is not None and outcome.rank == 0:
            termination.write(outcome.payload)
        return
    if outcome.exit_code != 0 or outcome.payload is not None:
        lost_contact = outcome.payload is not None and outcome.payload.reason == Reason.RANKS_LOST_CONTACT
        consequence = lost_contact or outcome.exit_code == ExitCode.TERMINATED
        claim(secondary(Path(claim_file)) if consequence else Path(claim_file), outcome)


def secondary(claim_file: Path) -> Path:
    """Where ranks that only lost contact with the others claim: read when no rank claimed the cause."""
    return claim_file.with_name(f"secondary-{claim_file.name}")


def claim(path: Path, outcome: Outcome) -> bool:
    """Atomically create `path` holding `outcome` unless another rank did first; True if this one won."""
    payload = outcome.payload.render() if outcome.payload is not None else None
    document = {"exitCode": outcome.exit_code, "payload": payload, "rank": outcome.rank}
    # Written whole beside the target, then hard-linked into place: link() fails if the target
    # exists, so a claim is never half-written and never overwritten.
    handle, staged = tempfile.mkstemp(dir=path.parent, prefix=f".rank{outcome.rank}-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(document, file)
        os.link(staged, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(staged)


def read(path: Path) -> Outcome | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    payload = document["payload"]
    return Outcome(
        exit_code=int(document["exitCode"]),
        payload=TerminationMessage.model_validate_json(payload) if payload is not None else None,
        rank=int(document["rank"]),
    )
