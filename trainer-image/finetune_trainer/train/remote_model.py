"""spec.baseModel.s3 in the training pods: rank 0 downloads the folder into the workspace, the other ranks wait.

The download (`objectstore.jobio.stage_base_model`) verifies each file's size and ETag and records finished files,
so a restarted pod resumes where the last one stopped instead of starting over. Only rank 0 downloads (the
workspace is shared by every rank); it then writes READY, which the other ranks wait for on the file system (no
collective: the process group may not exist yet, and a barrier would time out during a long download).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from finetune_operator.api import JobConfig
from finetune_trainer.train import jsonlog

READY = ".finetune-ready"
POLL_SECONDS = 2.0


def staged(job: JobConfig, rank: int, environ: Mapping[str, str], timeout: float) -> Path:
    """The downloaded base model folder (downloading or resuming it on rank 0 first)."""
    from finetune_trainer.objectstore import jobio  # the S3 client only where a bucket is used

    bucket = job.spec.base_model.s3
    target = job.base_model_path
    assert bucket is not None and target is not None, "spec.baseModel.s3 jobs have a staging folder"
    ready = target / READY
    if rank == 0:
        jobio.stage_base_model(bucket.to_wire(), target, environ)
        ready.write_text(bucket.uri, encoding="utf-8")
        return target
    deadline = time.monotonic() + timeout
    while not ready.is_file():
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank 0 did not download {bucket.uri} into {target} within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)
    jsonlog.event("base_model_ready", uri=bucket.uri, path=str(target))
    return target
