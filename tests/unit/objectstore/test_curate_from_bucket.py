"""`python -m finetune_trainer.curate` with dataset.source.s3 against a real S3 server (s3s-fs)."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import pytest

from finetune_trainer.curate.cli import main
from finetune_trainer.objectstore.client import Use, credential_env_name
from localservers import S3Server
from unit.curation.helpers import encode, flat


def put(s3: Any, bucket: str, key: str, data: bytes) -> None:
    s3.put_object(bucket, key, io.BytesIO(data), len(data))


def job_json(tmp_path: Path, server: S3Server, uri: str) -> Path:
    workspace = tmp_path / "ws"
    config = tmp_path / "job.json"
    spec = {
        "baseModel": {"name": "tiny", "builtin": "tiny-gpt"},
        "dataset": {
            "source": {"s3": {"uri": uri, "endpoint": server.url, "secretRef": {"name": "logs-reader"}}},
            "curation": {"minSuccessRate": 0.5, "evalFraction": 0.5},
        },
        "output": {"modelName": "m"},
    }
    paths = {
        "workspace": str(workspace),
        "sourceGlob": f"{workspace}/sources/**/*",
        "sourceStaging": f"{workspace}/sources",
        "baseModel": None,
    }
    config.write_text(
        json.dumps({"job": {"name": "demo", "namespace": "ml", "uid": "u"}, "spec": spec, "paths": paths})
    )
    return config


@pytest.fixture
def run(tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Any:
    def curate(uri: str, secret: str | None = None) -> tuple[int, dict[str, Any]]:
        monkeypatch.setenv("FINETUNE_CONFIG", str(job_json(tmp_path, s3_server, uri)))
        monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(tmp_path / "termination-log"))
        monkeypatch.setenv(credential_env_name(Use.DATASET, "ACCESS_KEY_ID"), s3_server.access_key)
        monkeypatch.setenv(credential_env_name(Use.DATASET, "SECRET_ACCESS_KEY"), secret or s3_server.secret_key)
        code = main([])
        return code, json.loads((tmp_path / "termination-log").read_text())

    return curate


def test_sessions_selected_by_a_bucket_glob_are_curated(run: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    put(s3, bucket, "sessions/2026-11/a.jsonl", encode([flat("a", rate=0.9), flat("b", rate=0.1)]))
    put(s3, bucket, "sessions/2026-11/deep/c.jsonl.gz", gzip.compress(encode([flat("c", rate=0.8)]), mtime=0))
    put(s3, bucket, "sessions/2026-10/old.jsonl", encode([flat("old", rate=0.99)]))  # outside the glob
    code, message = run(f"s3://{bucket}/sessions/2026-11/**/*.jsonl*")
    assert (code, message["outcome"]) == (0, "Succeeded"), message
    assert message["dataset"]["sourceFiles"] == 2
    assert message["dataset"]["samples"] == 2  # a and c; b is below minSuccessRate
    assert message["dataset"]["rejected"]["lowSuccess"] == 1
    assert (tmp_path / "ws" / "sources" / "deep" / "c.jsonl.gz").is_file()


def test_a_wrong_secret_fails_source_access_denied_naming_the_uri(run: Any, bucket: str) -> None:
    code, message = run(f"s3://{bucket}/sessions/*.jsonl", secret="wrong-secret-value")
    assert (code, message["reason"], message["failureKind"]) == (11, "SourceAccessDenied", "User")
    assert f"s3://{bucket}/sessions/*.jsonl" in message["message"]
    assert "wrong-secret-value" not in json.dumps(message)


def test_a_missing_prefix_fails_source_not_found_naming_the_uri(run: Any, bucket: str) -> None:
    code, message = run(f"s3://{bucket}/no-such-prefix/*.jsonl")
    assert (code, message["reason"]) == (10, "SourceNotFound")
    assert f"s3://{bucket}/no-such-prefix/*.jsonl" in message["message"]
