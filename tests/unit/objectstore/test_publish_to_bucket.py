"""spec.output.s3: the copy Job's entrypoint (`python -m finetune_trainer.publish`) uploads the trained model to a
real S3 server (s3s-fs) under <prefix>/<modelName>/<version>/ and reports the folder and its digest, the same
digest a copy to a PVC store gets; refused credentials end in OutputAccessDenied naming the URI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from finetune_operator.api.contract import ExitCode, Reason, exit_code_for
from finetune_trainer import publish
from finetune_trainer.objectstore.client import Use
from finetune_trainer.objectstore.upload import SUMS_FILE
from localservers import S3Server

from .conftest import credentials_env
from .test_transfer import get


def job_config(root: Path, server: S3Server, bucket: str) -> Path:
    workspace = root / "workspace"
    model = workspace / "model"
    (model / "merged").mkdir(parents=True)
    (model / "adapter_config.json").write_text('{"r": 8}')
    (model / "adapter_model.safetensors").write_bytes(b"\x00weights" * 1000)
    (model / "merged" / "config.json").write_text("{}")
    (model / "metadata.json").write_text(json.dumps({"model": {"format": "safetensors", "adapter": True}}))
    config = root / "job.json"
    output = {"modelName": "support-bot", "s3": {"uri": f"s3://{bucket}/trained", "endpoint": server.url}}
    config.write_text(
        json.dumps(
            {
                "job": {"name": "j", "namespace": "ml", "uid": "u"},
                "spec": {
                    "baseModel": {"name": "tiny", "builtin": "tiny-gpt"},
                    "dataset": {"source": {"configMap": {"name": "s", "key": "s.jsonl"}}},
                    "output": output,
                },
                "paths": {"workspace": str(workspace), "sourceGlob": "x"},
            }
        )
    )
    return config


def run_main(config: Path, tmp_path: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, Any]:
    log = tmp_path / "termination-log"
    monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(log))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    code = publish.main(["--config", str(config), "--version", "1.4.0"])
    return code, json.loads(log.read_text())


def test_the_model_is_uploaded_under_model_and_version_with_the_digest_a_store_copy_gets(
    s3_server: S3Server, s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = job_config(tmp_path, s3_server, bucket)
    code, message = run_main(config, tmp_path, credentials_env(s3_server, Use.OUTPUT), monkeypatch)
    assert code == ExitCode.SUCCEEDED, message
    model = message["model"]
    prefix = "trained/support-bot/1.4.0/"
    assert (model["uri"], model["version"], model["adapter"]) == (f"s3://{bucket}/{prefix}", "1.4.0", True)
    assert "store" not in model and "path" not in model
    source = tmp_path / "workspace" / "model"
    assert model["digest"] == publish.tree_digest(source)
    sums = get(s3, bucket, prefix + SUMS_FILE)
    assert model["digest"] == "sha256:" + hashlib.sha256(sums).hexdigest()
    for line in sums.decode().splitlines():
        expected, name = line.split("  ", 1)
        assert hashlib.sha256(get(s3, bucket, prefix + name)).hexdigest() == expected

    # A retry of the copy (its pod lost after the upload) uploads the same folder and reports the same digest.
    code, again = run_main(config, tmp_path, credentials_env(s3_server, Use.OUTPUT), monkeypatch)
    assert (code, again["model"]) == (ExitCode.SUCCEEDED, model)


def test_refused_credentials_are_output_access_denied_naming_the_uri(
    s3_server: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = job_config(tmp_path, s3_server, bucket)
    environ = credentials_env(s3_server, Use.OUTPUT, secret="not-the-secret")
    code, message = run_main(config, tmp_path, environ, monkeypatch)
    assert code == exit_code_for(Reason.OUTPUT_ACCESS_DENIED)
    assert message["reason"] == "OutputAccessDenied"
    assert f"s3://{bucket}/trained/support-bot/1.4.0/" in message["message"]
    assert "not-the-secret" not in json.dumps(message)
