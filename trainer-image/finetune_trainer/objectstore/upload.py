"""Upload of a finished folder (the trained model) with one content digest for the whole of it.

Every file is hashed (SHA-256, streamed) and uploaded (multipart in 32 MiB parts above that size, one part in
memory at a time). Then `SHA256SUMS` is uploaded last, in `sha256sum -c` format: its presence marks a complete
copy, and the digest recorded on the ModelVersion is `sha256:` + the SHA-256 of that file. Anyone can check
a copy with `aws s3 cp --recursive ... && sha256sum -c SHA256SUMS` and compare one hash.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune_trainer.objectstore import errors
from finetune_trainer.objectstore.download import CHUNK, backoff_seconds
from finetune_trainer.objectstore.location import S3Location

SUMS_FILE = "SHA256SUMS"
PART_SIZE = 32 << 20


@dataclass(frozen=True, slots=True)
class Uploaded:
    uri: str
    """The folder's s3:// URI, ending with a slash."""
    digest: str
    """sha256:<hex> of SHA256SUMS."""
    files: int
    bytes: int


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while piece := stream.read(CHUNK):
            digest.update(piece)
    return digest.hexdigest()


def sums_listing(folder: Path) -> tuple[str, list[Path]]:
    """The SHA256SUMS text for every file under `folder` (sorted by relative path) and those files."""
    files = sorted(path for path in folder.rglob("*") if path.is_file() and path.name != SUMS_FILE)
    lines = [f"{file_sha256(path)}  {path.relative_to(folder).as_posix()}\n" for path in files]
    return "".join(lines), files


def content_digest(sums: str) -> str:
    return "sha256:" + hashlib.sha256(sums.encode("utf-8")).hexdigest()


def upload_folder(
    client: Any,
    folder: Path,
    target: S3Location,
    *,
    attempts: int = 5,
    sleep: Callable[[float], None] = time.sleep,
) -> Uploaded:
    sums, files = sums_listing(folder)
    prefix = target.folder()
    for path in files:
        key = prefix + path.relative_to(folder).as_posix()
        _with_retries(
            lambda: client.fput_object(target.bucket, key, str(path), part_size=PART_SIZE, num_parallel_uploads=1),  # noqa: B023
            f"s3://{target.bucket}/{key}",
            attempts,
            sleep,
        )
    sums_key = prefix + SUMS_FILE
    _with_retries(
        lambda: client.put_object(target.bucket, sums_key, io.BytesIO(sums.encode("utf-8")), len(sums.encode("utf-8"))),
        f"s3://{target.bucket}/{sums_key}",
        attempts,
        sleep,
    )
    return Uploaded(
        uri=f"s3://{target.bucket}/{prefix}",
        digest=content_digest(sums),
        files=len(files),
        bytes=sum(path.stat().st_size for path in files),
    )


def _with_retries(action: Callable[[], object], uri: str, attempts: int, sleep: Callable[[float], None]) -> None:
    for attempt in range(attempts):
        try:
            action()
            return
        except Exception as error:
            errors.raise_for(error, uri, writing=True)
            if attempt + 1 == attempts:
                raise RuntimeError(f"uploading to {uri} failed {attempts} times; last error: {error}") from error
            sleep(backoff_seconds(attempt))
