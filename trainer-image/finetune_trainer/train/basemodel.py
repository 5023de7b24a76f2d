"""Where the training pods get the base model: built (builtin), downloaded from a bucket (s3) or as mounted (path).

spec.baseModel.s3: rank 0 downloads the folder into the workspace and the other ranks wait. The download
(`objectstore.jobio.stage_base_model`) verifies each file's size and ETag and records finished files, so a
restarted pod resumes where the last one stopped instead of starting over. Only rank 0 downloads (the workspace
is shared by every rank); it then writes READY, which the other ranks wait for on the file system (no
collective: the process group may not exist yet, and a barrier would time out during a long download).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from finetune_operator.api import JobConfig
from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import data, jsonlog, tinygpt

READY = ".finetune-ready"
POLL_SECONDS = 2.0
BUILTIN_DIR = "builtin-model"
# How long the other ranks wait for rank 0 to download a base model from a bucket (a 70B model is ~140 GB).
DOWNLOAD_TIMEOUT_SECONDS = 6 * 3600.0


def folder(
    job: JobConfig, workspace: Path, dataset: data.Dataset, seed: int, rank: int, environ: Mapping[str, str]
) -> Path:
    """The base model's folder: the builtin one built (its tokenizer from the training samples), the bucket's
    downloaded, or the configured path."""
    builtin = job.spec.base_model.builtin
    if builtin is not None:
        corpus = (data.sample_text(sample) for sample in dataset.train)
        return tinygpt.ensure_tiny_gpt(workspace / BUILTIN_DIR / builtin.value, corpus, seed)
    if job.spec.base_model.s3 is not None:
        return staged(job, rank, environ, DOWNLOAD_TIMEOUT_SECONDS)
    if job.base_model_path is None or not job.base_model_path.is_dir():
        raise JobFailed(Reason.INVALID_MODEL, f"baseModel path {job.base_model_path} is not a folder")
    return job.base_model_path


def staged(job: JobConfig, rank: int, environ: Mapping[str, str], timeout: float) -> Path:
    """The downloaded base model folder (downloading or resuming it on rank 0 first)."""
    from finetune_trainer.objectstore import jobio  # the S3 client only where a bucket is used
    from finetune_trainer.stageprogress import job_reporter

    bucket = job.spec.base_model.s3
    target = job.base_model_path
    assert bucket is not None and target is not None, "spec.baseModel.s3 jobs have a staging folder"
    ready = target / READY
    if rank == 0:
        reporter = job_reporter(job.job.name, job.job.namespace, environ)
        jobio.stage_base_model(bucket.to_wire(), target, environ, reporter)
        ready.write_text(bucket.uri, encoding="utf-8")
        return target
    deadline = time.monotonic() + timeout
    while not ready.is_file():
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank 0 did not download {bucket.uri} into {target} within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)
    jsonlog.event("base_model_ready", uri=bucket.uri, path=str(target))
    return target
