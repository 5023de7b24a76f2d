"""Downloads that stream with bounded memory, verify what they got and pick up where they stopped.

Each object is written in 1 MiB pieces to `<file>.part` beside its destination and renamed into place only
after its size matches the listing and, where the ETag is an MD5 (single-part, not KMS-encrypted), its
MD5 matches the ETag. A dropped connection resumes with a ranged GET from the bytes already on disk (with
`If-Match`, so a replaced object is never spliced onto the old one's start), after a backoff. A folder
download (a base model) records each finished object's size and ETag in `.finetune-download.json`, so a
restarted pod skips what it already has and resumes the file it was in the middle of.

A size or MD5 mismatch that a fresh read reproduces is the stored object's fault: `SourceCorrupt`.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed
from finetune_trainer.objectstore import errors
from finetune_trainer.objectstore.location import S3Location, matches

CHUNK = 1 << 20
STATE_FILE = ".finetune-download.json"
PART_SUFFIX = ".part"
_HEX = frozenset("0123456789abcdef")

Progress = Callable[[int], None]
"""Called with each piece's size as it is written."""


@dataclass(frozen=True, slots=True)
class RemoteObject:
    key: str
    size: int
    etag: str
    """Without quotes."""

    def md5_etag(self) -> bool:
        """Single-part uploads (without SSE-KMS/SSE-C, checked on the GET) have the MD5 of the bytes as ETag."""
        # Some servers (s3s-fs) list no ETags: then the GET's ETag is the one checked.
        return len(self.etag) == 32 and set(self.etag) <= _HEX


def list_objects(client: Any, location: S3Location) -> list[RemoteObject]:
    """Every object `location` selects, sorted by key; folder markers (keys ending in /) are skipped."""
    found: list[RemoteObject] = []
    try:
        for item in _walk(client, location.bucket, location.list_prefix):
            key = item.object_name
            if not key.endswith("/") and matches(location, key):
                found.append(RemoteObject(key, int(item.size), str(item.etag or "").strip('"')))
    except Exception as error:
        errors.raise_for(error, location.uri)
        raise
    return sorted(found, key=lambda remote: remote.key)


def _walk(client: Any, bucket: str, prefix: str) -> Iterator[Any]:
    """Objects under `prefix`, folder by folder (delimiter "/").

    A walk rather than one undelimited listing: some S3-compatible servers (s3s-fs 0.14) mishandle the empty
    delimiter the SDK sends for a recursive listing, and every server handles "/".
    """
    folders = [prefix]
    while folders:
        for item in client.list_objects(bucket, prefix=folders.pop(), recursive=False):
            if item.is_dir:
                folders.append(item.object_name)
            else:
                yield item


def backoff_seconds(attempt: int, *, base: float = 0.5, cap: float = 20.0) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt))."""
    return random.uniform(0.0, min(cap, base * 2.0**attempt))


def fetch(
    client: Any,
    bucket: str,
    remote: RemoteObject,
    target: Path,
    *,
    progress: Progress | None = None,
    attempts: int = 5,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Download one object to `target`, resuming a `.part` left by an earlier attempt; verified before the rename.

    Returns the ETag the bytes were checked against: the listing's, or the GET's where a server lists none.
    """
    uri = f"s3://{bucket}/{remote.key}"
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + PART_SUFFIX)
    digest = _resume_digest(part, remote.size)
    expected = replace(remote)
    check_md5 = True
    for attempt in range(attempts):
        offset = part.stat().st_size
        if offset >= remote.size:
            break
        try:
            etag, plain = _append(client, bucket, expected, part, offset, digest, progress)
        except Exception as error:
            errors.raise_for(error, uri)
            if attempt + 1 == attempts:
                raise RuntimeError(f"downloading {uri} failed {attempts} times; last error: {error}") from error
            sleep(backoff_seconds(attempt))
            continue
        check_md5 &= plain
        if not expected.etag:
            expected = replace(expected, etag=etag)
    _verify(part, expected, uri, digest.hexdigest() if check_md5 and expected.md5_etag() else None)
    part.rename(target)
    return expected.etag


def _resume_digest(part: Path, size: int) -> Any:
    """MD5 of what an earlier attempt left in `part` (restarting when it is longer than the object)."""
    digest = hashlib.md5(usedforsecurity=False)
    if part.exists() and part.stat().st_size > size:
        part.unlink()
    if not part.exists():
        part.touch()
        return digest
    with part.open("rb") as existing:
        while piece := existing.read(CHUNK):
            digest.update(piece)
    return digest


def _append(
    client: Any, bucket: str, remote: RemoteObject, part: Path, offset: int, digest: Any, progress: Progress | None
) -> tuple[str, bool]:
    """One GET from `offset` to the end; returns the object's ETag and whether it can be checked as an MD5."""
    headers = {"If-Match": f'"{remote.etag}"'} if remote.etag else None
    response = client.get_object(bucket, remote.key, offset=offset, request_headers=headers)
    try:
        with part.open("ab") as out:
            # urllib3 raises when the body ends before its Content-Length: the caller resumes from what arrived.
            for piece in response.stream(CHUNK):
                out.write(piece)
                digest.update(piece)
                if progress is not None:
                    progress(len(piece))
        encrypted = response.headers.get("x-amz-server-side-encryption") == "aws:kms" or bool(
            response.headers.get("x-amz-server-side-encryption-customer-algorithm")
        )
        return str(response.headers.get("ETag", "")).strip('"'), not encrypted
    finally:
        response.close()
        response.release_conn()


def _verify(part: Path, remote: RemoteObject, uri: str, md5: str | None) -> None:
    size = part.stat().st_size
    if size != remote.size or (md5 is not None and md5 != remote.etag):
        part.unlink()
        got = f"{size} bytes" + (f" with MD5 {md5}" if md5 else "")
        raise JobFailed(
            Reason.SOURCE_CORRUPT,
            f"{uri} is damaged in the object store: read {got}, but it is listed with {remote.size} bytes and "
            f"ETag {remote.etag}; upload it again",
        )


@dataclass(frozen=True, slots=True)
class FolderResult:
    files: list[Path]
    bytes: int
    skipped: int
    """Objects a previous attempt had already downloaded and verified."""


def download_folder(
    client: Any,
    location: S3Location,
    destination: Path,
    *,
    progress: Progress | None = None,
    present: Progress | None = None,
    attempts: int = 5,
    remotes: list[RemoteObject] | None = None,
) -> FolderResult:
    """Every object `location` selects (`remotes` when already listed), under `destination` by its key relative
    to the folder the listing starts in. `progress` is told the bytes that arrive, `present` those an earlier
    attempt left (verified files, and the `.part` a download resumes from)."""
    if remotes is None:
        remotes = list_objects(client, location)
    if not remotes:
        raise JobFailed(Reason.SOURCE_NOT_FOUND, f"no object matches {location.uri}")
    destination.mkdir(parents=True, exist_ok=True)
    state = _load_state(destination)
    files: list[Path] = []
    skipped = 0
    for remote, relative in _relative_keys(location, remotes):
        target = destination / relative
        if _already_have(state.get(relative), remote) and target.is_file():
            skipped += 1
            if present is not None:
                present(remote.size)
        else:
            if present is not None:
                present(_resumable_bytes(target, remote))
            etag = fetch(client, location.bucket, remote, target, progress=progress, attempts=attempts)
            state[relative] = [remote.size, etag]
            _save_state(destination, state)
        files.append(target)
    return FolderResult(files, sum(remote.size for remote in remotes), skipped)


def _resumable_bytes(target: Path, remote: RemoteObject) -> int:
    """What `fetch` resumes from: the `.part` left by an earlier attempt, unless it is longer than the object."""
    part = target.with_name(target.name + PART_SUFFIX)
    size = part.stat().st_size if part.is_file() else 0
    return size if size <= remote.size else 0


def _already_have(recorded: list[Any] | None, remote: RemoteObject) -> bool:
    """Downloaded and verified before, and unchanged since (by size, and ETag where the listing has one)."""
    if not recorded or len(recorded) != 2:
        return False
    return bool(recorded[0] == remote.size and (not remote.etag or recorded[1] == remote.etag))


def _relative_keys(location: S3Location, remotes: list[RemoteObject]) -> Iterator[tuple[RemoteObject, str]]:
    """Keys relative to the folder the listing starts in; a key that escapes it (`..`) is refused."""
    prefix = location.list_prefix
    root = prefix[: prefix.rfind("/") + 1]
    for remote in remotes:
        relative = remote.key[len(root) :]
        parts = relative.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise JobFailed(Reason.SOURCE_NOT_FOUND, f"s3://{location.bucket}/{remote.key} is not a usable file name")
        yield remote, relative


def _load_state(destination: Path) -> dict[str, list[Any]]:
    try:
        loaded = json.loads((destination / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _save_state(destination: Path, state: dict[str, list[Any]]) -> None:
    staging = destination / (STATE_FILE + ".tmp")
    staging.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
    staging.replace(destination / STATE_FILE)
