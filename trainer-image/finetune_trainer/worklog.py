"""The pods' JSON log lines also go to the workspace volume, so they outlive the pod (evictions, retries, TTL).

One file per attempt and rank: `<workspace>/logs/<step>-<pod>-rank<rank>.jsonl` (the pod name is the container's
HOSTNAME, as Kubernetes sets it). Bounded: a file rotates at half of MAX_BYTES into one `.1` backup, so an
attempt keeps at most MAX_BYTES per rank, its newest lines. Best effort: a full or read-only volume never stops
the step (the lines still reach the pod's own log).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import socket
from collections.abc import Mapping
from pathlib import Path

MAX_BYTES = 8 * 2**20
FOLDER = "logs"
# Curation prints its JSON lines; it also hands each to this logger, which writes only to the workspace file.
LINES = logging.getLogger("finetune_trainer.worklog.lines")
LINES.propagate = False
LINES.setLevel(logging.INFO)


def path_for(workspace: Path, step: str, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    pod = env.get("HOSTNAME") or socket.gethostname()
    rank = env.get("RANK", "0")
    return workspace / FOLDER / f"{step}-{pod}-rank{rank}.jsonl"


def handler(path: Path, formatter: logging.Formatter | None = None) -> logging.Handler | None:
    """A size-bounded file handler at `path`, or None when the volume refuses it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        bounded = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES // 2, backupCount=1, encoding="utf-8")
    except OSError as error:
        logging.getLogger(__name__).warning("logs not kept on the workspace (%s): %s", path, error)
        return None
    bounded.setFormatter(formatter or logging.Formatter("%(message)s"))
    return bounded


def attach(logger: logging.Logger, path: Path, formatter: logging.Formatter | None = None) -> Path | None:
    added = handler(path, formatter)
    if added is None:
        return None
    logger.addHandler(added)
    return path
