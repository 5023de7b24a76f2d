"""Download progress in the job's status (stage Downloading), against a real S3 server (s3s-fs): what a retried pod
finds already downloaded counts as downloaded but not towards the pace, and the final figures go out at the end."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finetune_operator.api.status import Progress
from finetune_trainer import report
from finetune_trainer.objectstore.client import Use
from finetune_trainer.objectstore.download import download_folder
from finetune_trainer.objectstore.jobio import stage_sessions
from finetune_trainer.objectstore.location import parse
from finetune_trainer.objectstore.progress import DownloadProgress, status_patch
from localservers import S3Server

from .conftest import credentials_env

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def put(s3: Any, bucket: str, key: str, data: bytes) -> None:
    s3.put_object(bucket, key, io.BytesIO(data), len(data))


def test_the_patch_gives_the_share_downloaded_and_the_time_left_at_this_pods_pace() -> None:
    # 400 of 1000 bytes were there from an earlier pod, 100 arrived in 10 s: 500 left at 10 bytes/s.
    patch = status_patch(source="baseModel.s3", done=500, total=1000, transferred=100, elapsed=10.0, now=NOW)
    assert patch == {
        "status": {
            "progress": {
                "stage": "Downloading",
                "downloading": "baseModel.s3",
                "downloadedBytes": 500,
                "downloadBytes": 1000,
                "percent": 50,
                "estimatedSecondsRemaining": 50,
                "updatedAt": "2026-01-02T03:04:05Z",
            }
        }
    }
    Progress.model_validate(patch["status"]["progress"])  # the status schema has every field
    nothing_yet = status_patch(source="baseModel.s3", done=400, total=1000, transferred=0, elapsed=3.0, now=NOW)
    assert nothing_yet["status"]["progress"]["estimatedSecondsRemaining"] is None  # type: ignore[index]


def test_reports_are_sent_when_due_and_once_at_the_end() -> None:
    sent: list[dict[str, Any]] = []
    ticks = iter(float(tick) for tick in range(1000))  # one second per look at the clock
    reporter = report.Reporter(send=sent.append, interval=10.0)
    progress = DownloadProgress("s3://b/m/", "baseModel.s3", 100, reporter, clock=lambda: next(ticks))
    for _ in range(50):
        progress(2)
    progress.finish()
    figures = [patch["status"]["progress"] for patch in sent]
    # The first piece, then at most one report per 10 s of the 50 s the pieces took, then the final one.
    assert 2 <= len(figures) <= 7, figures
    assert figures[0]["downloadedBytes"] == 2
    assert (figures[-1]["downloadedBytes"], figures[-1]["percent"]) == (100, 100)


def test_a_resumed_download_counts_what_the_earlier_pod_left(
    s3_server: S3Server, s3: Any, bucket: str, tmp_path: Path
) -> None:
    small, big = os.urandom(3000), os.urandom(3 * 1024 * 1024 + 5)
    put(s3, bucket, "s/a.jsonl", small)
    staging = tmp_path / "staging"
    download_folder(s3, parse(f"s3://{bucket}/s/*.jsonl"), staging)  # an earlier pod finished a.jsonl...
    put(s3, bucket, "s/b.jsonl", big)
    (staging / "b.jsonl.part").write_bytes(big[: 1024 * 1024])  # ...and had 1 MiB of b.jsonl when it was killed

    sent: list[dict[str, Any]] = []
    block = {"uri": f"s3://{bucket}/s/*.jsonl", "endpoint": s3_server.url}
    reporter = report.Reporter(send=sent.append, interval=3600.0)
    stage_sessions(block, staging, credentials_env(s3_server, Use.DATASET), reporter)

    assert (staging / "b.jsonl").read_bytes() == big
    first, last = (patch["status"]["progress"] for patch in (sent[0], sent[-1]))
    total = len(small) + len(big)
    assert first["downloading"] == "dataset.source.s3" and first["downloadBytes"] == total
    assert first["downloadedBytes"] > len(small) + 1024 * 1024  # what was there, and the first piece
    assert (last["stage"], last["downloadedBytes"], last["percent"]) == ("Downloading", total, 100)
    assert len(sent) == 2  # the first report and the final one: the interval is an hour
