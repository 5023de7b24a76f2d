"""`python -m finetune_trainer.publish --source model --version 1.2.0`: copy the trained model to the model store.

Runs in the job's copy Job (`<job>-publish`) after training passed its evaluation gate, with the workspace and the
store (spec.output.pvc) mounted. The copy is atomic: it is written under a temporary name beside its destination,
every file and folder is fsynced, then it is renamed to `<modelName>/<version>/` and the parent folder fsynced, so
a reader of the store sees the whole folder or nothing. An existing destination with the same content digest is
this copy done before (a retry after a crash): success. With another digest it belongs to someone else and is
never overwritten: ModelCopyFailed. With spec.output.s3 the folder is uploaded to the bucket instead
(`publish_to_bucket`; SHA256SUMS, uploaded last, marks a complete copy). Exit codes and the termination message
follow docs/runtime-contract.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from finetune_operator.api import JobConfig, TerminationMessage
from finetune_operator.api.contract import ExitCode, Reason, exit_code_for
from finetune_operator.api.termination import ProducedModel
from finetune_trainer import termination
from finetune_trainer.failures import JobFailed

STORE_DIR = "/mnt/model-store"
DEFAULT_CONFIG = "/etc/finetune/job.json"
PARTIAL = ".partial-"
_CHUNK = 1 << 20


def tree_digest(folder: Path) -> str:
    """`sha256:` + SHA-256 of the folder's `sha256sum` listing, sorted by relative path (bytewise)."""
    lines = []
    for path in sorted(_files(folder), key=lambda p: p.relative_to(folder).as_posix().encode()):
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
        lines.append(f"{digest.hexdigest()}  {path.relative_to(folder).as_posix()}\n")
    return "sha256:" + hashlib.sha256("".join(lines).encode()).hexdigest()


def _files(folder: Path) -> list[Path]:
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            if path.is_symlink():
                raise JobFailed(Reason.MODEL_COPY_FAILED, f"the model folder holds a symbolic link: {path}")
            found.append(path)
    return found


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def copy_durably(source: Path, target: Path) -> None:
    """Copy the folder `source` to the new folder `target`, every file and folder fsynced."""
    for root, folders, names in os.walk(source):
        relative = Path(root).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in names:
            with (Path(root) / name).open("rb") as reader, (target / relative / name).open("xb") as writer:
                shutil.copyfileobj(reader, writer, _CHUNK)
                writer.flush()
                os.fsync(writer.fileno())
        folders.sort()
    for root, _, _ in os.walk(target, topdown=False):
        _fsync(Path(root))


def check_holds_model(source: Path) -> None:
    if not (source / "config.json").is_file() and not (source / "adapter_config.json").is_file():
        raise JobFailed(Reason.MODEL_COPY_FAILED, f"{source} holds no model (no config.json or adapter_config.json)")


def publish_to_bucket(job: JobConfig, source: Path, version: str, environ: Mapping[str, str]) -> ProducedModel:
    """Upload `source` to `<output.s3.uri>/<modelName>/<version>/` (objectstore.upload: SHA256SUMS last).

    A retry uploads the same files again under the same keys: the version is this job's (the operator chose it
    for this copy), so nothing of another job's is overwritten, and the digest is of what was uploaded.
    """
    from finetune_trainer.objectstore import jobio  # the S3 client only where a bucket is used

    bucket = job.spec.output.s3
    assert bucket is not None
    check_holds_model(source)
    uploaded = jobio.publish_model(bucket.to_wire(), source, job.spec.output.model_name, version, environ)
    return produced_model(source, None, None, version, uploaded.digest, uri=uploaded.uri)


def publish(source: Path, store: Path, model_name: str, version: str) -> tuple[str, str]:
    """Copy `source` to `<store>/<model_name>/<version>`; returns (that path relative to the store, digest)."""
    relative = f"{model_name}/{version}"
    parent, destination = store / model_name, store / relative
    check_holds_model(source)
    digest = tree_digest(source)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for leftover in parent.glob(f".{version}{PARTIAL}*"):  # of an attempt that crashed mid-copy
            shutil.rmtree(leftover, ignore_errors=True)
        if not destination.exists():
            partial = parent / f".{version}{PARTIAL}{uuid.uuid4().hex[:8]}"
            copy_durably(source, partial)
            try:
                partial.rename(destination)  # refused when a folder of that name appeared meanwhile
            except OSError:
                shutil.rmtree(partial, ignore_errors=True)
                if not destination.exists():
                    raise
            _fsync(parent)
    except OSError as error:
        raise JobFailed(Reason.MODEL_COPY_FAILED, f"copying the model to {relative} in the store: {error}") from error
    if tree_digest(destination) != digest:
        raise JobFailed(
            Reason.MODEL_COPY_FAILED,
            f"{relative} already exists in the model store with other content; it is never overwritten "
            "(set output.version to a new version in a new job)",
        )
    return relative, digest


def produced_model(
    source: Path, store_claim: str | None, relative: str | None, version: str, digest: str, uri: str | None = None
) -> ProducedModel:
    try:
        block = json.loads((source / "metadata.json").read_text(encoding="utf-8")).get("model") or {}
    except (OSError, ValueError):
        block = {}
    return ProducedModel(
        path=relative,
        format=block.get("format"),
        adapter=block.get("adapter", (source / "adapter_config.json").is_file()),
        merged=block.get("merged"),
        store=store_claim,
        uri=uri,
        version=version,
        digest=digest,
    )


def source_folder(workspace: Path, relative: str) -> Path:
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
        raise JobFailed(Reason.MODEL_COPY_FAILED, f"the model path {relative!r} is not a folder of the workspace")
    return workspace / relative


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finetune_trainer.publish", description=__doc__)
    parser.add_argument("--config", default=os.environ.get("FINETUNE_CONFIG", DEFAULT_CONFIG))
    parser.add_argument("--source", default="model", help="the model folder, relative to the workspace")
    parser.add_argument("--version", required=True)
    parser.add_argument("--store", default=STORE_DIR, help="where the model store is mounted")
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    job = JobConfig.load(Path(options.config))
    claim = job.spec.output.pvc or ""
    try:
        source = source_folder(job.workspace, options.source)
        if job.spec.output.s3 is not None:
            model = publish_to_bucket(job, source, options.version, os.environ)
        else:
            relative, digest = publish(source, Path(options.store), job.spec.output.model_name, options.version)
            model = produced_model(source, claim, relative, options.version, digest)
    except JobFailed as failure:
        print(f"{failure.reason.value}: {failure.message}", file=sys.stderr)
        termination.write(TerminationMessage.failure(failure.reason, failure.message))
        return exit_code_for(failure.reason)
    termination.write(TerminationMessage(outcome="Succeeded", model=model))
    where = {"uri": model.uri} if model.uri else {"store": claim, "path": model.path}
    print(json.dumps({"event": "published", **where, "digest": model.digest}))
    return ExitCode.SUCCEEDED


if __name__ == "__main__":
    sys.exit(main())
