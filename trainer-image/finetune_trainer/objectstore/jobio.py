"""What the entrypoints do with object storage, driven by the job config's `s3` blocks (wire format).

- curate: `stage_sessions` downloads the matching session files into the workspace, then curates them there;
- train: `stage_base_model` downloads (or resumes) the base model folder into the workspace;
- train: `publish_model` copies `model/` to `<output uri>/<modelName>/<version>/` with its content digest.

Download progress goes to the pod's log (`download_progress` JSON lines) and, given the job's reporter, to the
job's status (`objectstore.progress`); the upload's end is logged (`upload_done`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from finetune_trainer.objectstore.client import Endpoint, Use, make_client
from finetune_trainer.objectstore.download import FolderResult, download_folder, list_objects
from finetune_trainer.objectstore.location import parse
from finetune_trainer.objectstore.progress import DownloadProgress, log_event
from finetune_trainer.objectstore.upload import Uploaded, upload_folder
from finetune_trainer.report import Reporter

# status.progress.downloading: the spec field the objects come from.
_SOURCES = {Use.DATASET: "dataset.source.s3", Use.BASE_MODEL: "baseModel.s3"}


def _client(block: Mapping[str, Any], environ: Mapping[str, str], use: Use) -> Any:
    return make_client(Endpoint(block.get("endpoint"), block.get("region")), environ, use)


def _download(
    block: Mapping[str, Any], destination: Path, environ: Mapping[str, str], use: Use, reporter: Reporter | None
) -> FolderResult:
    location = parse(str(block["uri"]))
    client = _client(block, environ, use)
    remotes = list_objects(client, location)
    progress = DownloadProgress(location.uri, _SOURCES[use], sum(remote.size for remote in remotes), reporter)
    result = download_folder(
        client, location, destination, progress=progress, present=progress.present, remotes=remotes
    )
    progress.finish()
    return result


def stage_sessions(
    block: Mapping[str, Any], destination: Path, environ: Mapping[str, str], reporter: Reporter | None = None
) -> FolderResult:
    return _download(block, destination, environ, Use.DATASET, reporter)


def stage_base_model(
    block: Mapping[str, Any], destination: Path, environ: Mapping[str, str], reporter: Reporter | None = None
) -> Path:
    # The URI names a folder: its files land directly under `destination` (not under the folder's name), and a
    # sibling prefix (models/llama-2 beside models/llama) is never part of it.
    folder = {**block, "uri": str(block["uri"]).rstrip("/") + "/"}
    result = _download(folder, destination, environ, Use.BASE_MODEL, reporter)
    log_event("base_model_ready", uri=block["uri"], files=len(result.files), resumedSkipping=result.skipped)
    return destination


def publish_model(
    block: Mapping[str, Any], model_dir: Path, model_name: str, version: str, environ: Mapping[str, str]
) -> Uploaded:
    target = parse(str(block["uri"])).child(model_name, version)
    uploaded = upload_folder(_client(block, environ, Use.OUTPUT), model_dir, target)
    log_event("upload_done", uri=uploaded.uri, digest=uploaded.digest, files=uploaded.files, bytes=uploaded.bytes)
    return uploaded
