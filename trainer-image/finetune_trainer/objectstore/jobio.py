"""What the entrypoints do with object storage, driven by the job config's `s3` blocks (wire format).

- curate: `stage_sessions` downloads the matching session files into the workspace, then curates them there;
- train: `stage_base_model` downloads (or resumes) the base model folder into the workspace;
- train: `publish_model` copies `model/` to `<output uri>/<modelName>/<version>/` with its content digest.

Progress is logged as JSON lines (`download_progress` / `upload_done`) at most every `PROGRESS_SECONDS`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from finetune_trainer.objectstore.client import Endpoint, Use, make_client
from finetune_trainer.objectstore.download import FolderResult, download_folder, list_objects
from finetune_trainer.objectstore.location import parse
from finetune_trainer.objectstore.upload import Uploaded, upload_folder

PROGRESS_SECONDS = 5.0


def _client(block: Mapping[str, Any], environ: Mapping[str, str], use: Use) -> Any:
    return make_client(Endpoint(block.get("endpoint"), block.get("region")), environ, use)


def log_event(name: str, **fields: Any) -> None:
    """One JSON line on stderr (stdout carries each entrypoint's result line)."""
    print(json.dumps({"event": name, **fields}), file=sys.stderr, flush=True)


class ProgressLog:
    """Counts bytes and logs them at most every PROGRESS_SECONDS, and once at the end."""

    def __init__(self, uri: str, total: int, clock: Any = time.monotonic) -> None:
        self.uri, self.total, self.done, self.clock = uri, total, 0, clock
        self.last = clock()

    def __call__(self, count: int) -> None:
        self.done += count
        if self.clock() - self.last >= PROGRESS_SECONDS:
            self.last = self.clock()
            self.log()

    def log(self) -> None:
        percent = 100 if self.total == 0 else min(100, self.done * 100 // self.total)
        log_event("download_progress", uri=self.uri, bytes=self.done, totalBytes=self.total, percent=percent)


def _download(block: Mapping[str, Any], destination: Path, environ: Mapping[str, str], use: Use) -> FolderResult:
    location = parse(str(block["uri"]))
    client = _client(block, environ, use)
    remotes = list_objects(client, location)
    progress = ProgressLog(location.uri, sum(remote.size for remote in remotes))
    result = download_folder(client, location, destination, progress=progress, remotes=remotes)
    progress.log()
    return result


def stage_sessions(block: Mapping[str, Any], destination: Path, environ: Mapping[str, str]) -> FolderResult:
    return _download(block, destination, environ, Use.DATASET)


def stage_base_model(block: Mapping[str, Any], destination: Path, environ: Mapping[str, str]) -> Path:
    # The URI names a folder: its files land directly under `destination` (not under the folder's name), and a
    # sibling prefix (models/llama-2 beside models/llama) is never part of it.
    folder = {**block, "uri": str(block["uri"]).rstrip("/") + "/"}
    result = _download(folder, destination, environ, Use.BASE_MODEL)
    log_event("base_model_ready", uri=block["uri"], files=len(result.files), resumedSkipping=result.skipped)
    return destination


def publish_model(
    block: Mapping[str, Any], model_dir: Path, model_name: str, version: str, environ: Mapping[str, str]
) -> Uploaded:
    target = parse(str(block["uri"])).child(model_name, version)
    uploaded = upload_folder(_client(block, environ, Use.OUTPUT), model_dir, target)
    log_event("upload_done", uri=uploaded.uri, digest=uploaded.digest, files=uploaded.files, bytes=uploaded.bytes)
    return uploaded
