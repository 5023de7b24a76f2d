"""spec.baseModel.s3 in the training pods (finetune_trainer.train.basemodel) against a real S3 server (s3s-fs):
rank 0 downloads the Hugging Face folder into the workspace and the model loads from it; the other ranks wait
for rank 0 instead of downloading; a missing prefix ends in SourceNotFound naming the URI."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import pytest

from finetune_operator.api import JobConfig
from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed
from finetune_trainer.objectstore.client import Use
from finetune_trainer.train import basemodel
from finetune_trainer.train.tinygpt import ensure_tiny_gpt
from localservers import S3Server

from .conftest import credentials_env


def upload_folder(s3: Any, bucket: str, prefix: str, folder: Path) -> None:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        s3.put_object(bucket, prefix + path.relative_to(folder).as_posix(), io.BytesIO(data), len(data))


def job_config(workspace: Path, server: S3Server, uri: str) -> JobConfig:
    return JobConfig.model_validate(
        {
            "job": {"name": "j", "namespace": "ml", "uid": "u"},
            "spec": {
                "baseModel": {"name": "tiny", "s3": {"uri": uri, "endpoint": server.url}},
                "dataset": {"source": {"configMap": {"name": "s", "key": "s.jsonl"}}},
                "output": {"modelName": "chat"},
            },
            "paths": {"workspace": str(workspace), "sourceGlob": "x", "baseModel": str(workspace / "base-model")},
        }
    )


def test_rank_0_downloads_the_model_the_other_ranks_wait_and_it_loads(
    s3_server: S3Server, s3: Any, bucket: str, tmp_path: Path
) -> None:
    built = ensure_tiny_gpt(tmp_path / "built", ["hello world", "a tiny corpus for a tiny model"], seed=1)
    upload_folder(s3, bucket, "models/tiny/", built)
    upload_folder(s3, bucket, "models/tiny-2/", built)  # a sibling prefix is not part of the model
    job = job_config(tmp_path / "workspace", s3_server, f"s3://{bucket}/models/tiny")
    environ = credentials_env(s3_server, Use.BASE_MODEL)

    waited: list[Path] = []
    other_rank = threading.Thread(target=lambda: waited.append(basemodel.staged(job, 1, environ, timeout=120)))
    other_rank.start()
    folder = basemodel.staged(job, 0, environ, timeout=120)
    other_rank.join(timeout=120)
    assert waited == [folder] == [tmp_path / "workspace" / "base-model"]
    downloaded = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    expected = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}
    assert expected <= downloaded and not [name for name in downloaded - expected if not name.startswith(".")]
    for name in expected:
        assert (folder / name).read_bytes() == (built / name).read_bytes()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(folder).state_dict()
    original = AutoModelForCausalLM.from_pretrained(built).state_dict()
    assert loaded.keys() == original.keys() and all(loaded[k].equal(original[k]) for k in original)
    assert AutoTokenizer.from_pretrained(folder)("hello world")["input_ids"]


def test_a_rank_that_never_sees_rank_0_finish_times_out_naming_the_uri(s3_server: S3Server, tmp_path: Path) -> None:
    job = job_config(tmp_path / "workspace", s3_server, "s3://models/never")
    with pytest.raises(TimeoutError, match="s3://models/never"):
        basemodel.staged(job, 1, {}, timeout=0)


def test_a_missing_prefix_is_source_not_found_naming_the_uri(s3_server: S3Server, bucket: str, tmp_path: Path) -> None:
    uri = f"s3://{bucket}/models/absent"
    job = job_config(tmp_path / "workspace", s3_server, uri)
    with pytest.raises(JobFailed) as failure:
        basemodel.staged(job, 0, credentials_env(s3_server, Use.BASE_MODEL), timeout=10)
    assert failure.value.reason is Reason.SOURCE_NOT_FOUND
    assert uri in failure.value.message
