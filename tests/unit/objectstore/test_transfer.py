"""Downloads and uploads against a real S3 server (s3s-fs): verified, resumable, with reasons naming the URI."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed
from finetune_trainer.objectstore.client import Use
from finetune_trainer.objectstore.download import STATE_FILE, RemoteObject, download_folder, fetch, list_objects
from finetune_trainer.objectstore.location import parse
from finetune_trainer.objectstore.upload import SUMS_FILE, content_digest, upload_folder
from localservers import S3Server

from .conftest import client_for, stored_file


def put(s3: Any, bucket: str, key: str, data: bytes) -> None:
    s3.put_object(bucket, key, io.BytesIO(data), len(data))


def get(s3: Any, bucket: str, key: str) -> bytes:
    response = s3.get_object(bucket, key)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def test_download_folder_selects_by_glob_and_keeps_relative_paths(s3: Any, bucket: str, tmp_path: Path) -> None:
    put(s3, bucket, "sessions/a.jsonl", b'{"id": 1}\n')
    put(s3, bucket, "sessions/deep/b.jsonl", b'{"id": 2}\n')
    put(s3, bucket, "sessions/notes.txt", b"not a session")
    result = download_folder(s3, parse(f"s3://{bucket}/sessions/**/*.jsonl"), tmp_path)
    assert sorted(path.relative_to(tmp_path).as_posix() for path in result.files) == ["a.jsonl", "deep/b.jsonl"]
    assert (tmp_path / "deep/b.jsonl").read_bytes() == b'{"id": 2}\n'
    assert not list(tmp_path.rglob("*.part"))


def test_a_second_download_skips_what_is_verified_and_fetches_what_changed(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    put(s3, bucket, "model/config.json", b"{}")
    put(s3, bucket, "model/weights.bin", os.urandom(3000))
    location = parse(f"s3://{bucket}/model/")
    assert download_folder(s3, location, tmp_path).skipped == 0
    put(s3, bucket, "model/config.json", b'{"changed": true}')
    again = download_folder(s3, location, tmp_path)
    assert again.skipped == 1  # weights.bin: same size and ETag as recorded in .finetune-download.json
    assert (tmp_path / "config.json").read_bytes() == b'{"changed": true}'
    assert (tmp_path / STATE_FILE).is_file()


def test_fetch_resumes_a_partial_file_with_a_ranged_read(s3: Any, bucket: str, tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 17)
    put(s3, bucket, "big.bin", data)
    (remote,) = list_objects(s3, parse(f"s3://{bucket}/big.bin"))
    target = tmp_path / "big.bin"
    # What a pod killed mid-download leaves behind.
    (tmp_path / "big.bin.part").write_bytes(data[: 2 * 1024 * 1024])
    fetched: list[int] = []
    fetch(s3, bucket, remote, target, progress=fetched.append)
    assert target.read_bytes() == data
    assert sum(fetched) == len(data) - 2 * 1024 * 1024  # only the missing bytes crossed the network


def test_a_truncated_stored_object_is_source_corrupt(s3_server: S3Server, s3: Any, bucket: str, tmp_path: Path) -> None:
    data = os.urandom(4096)
    put(s3, bucket, "s/a.jsonl", data)
    # The store lost the object's tail after it was written: its ETag still says what was uploaded.
    with stored_file(s3_server, bucket, "s/a.jsonl").open("r+b") as stored:
        stored.truncate(1000)
    with pytest.raises(JobFailed) as failure:
        download_folder(s3, parse(f"s3://{bucket}/s/*.jsonl"), tmp_path)
    assert failure.value.reason is Reason.SOURCE_CORRUPT
    assert f"s3://{bucket}/s/a.jsonl" in failure.value.message
    assert hashlib.md5(data).hexdigest() in failure.value.message
    assert not list(tmp_path.rglob("a.jsonl*")), "nothing unverified stays behind"


def test_a_wrong_secret_is_source_access_denied_naming_the_uri(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    wrong = client_for(s3_server, secret="not-the-secret")
    with pytest.raises(JobFailed) as failure:
        download_folder(wrong, parse(f"s3://{bucket}/sessions/*.jsonl"), tmp_path)
    assert failure.value.reason is Reason.SOURCE_ACCESS_DENIED
    assert f"s3://{bucket}/sessions/*.jsonl" in failure.value.message
    assert "not-the-secret" not in failure.value.message


def test_a_missing_bucket_or_an_empty_match_is_source_not_found(s3: Any, bucket: str, tmp_path: Path) -> None:
    with pytest.raises(JobFailed) as missing:
        download_folder(s3, parse("s3://no-such-bucket-fto/sessions/"), tmp_path)
    assert missing.value.reason is Reason.SOURCE_NOT_FOUND
    assert "s3://no-such-bucket-fto/sessions/" in missing.value.message
    with pytest.raises(JobFailed) as empty:
        download_folder(s3, parse(f"s3://{bucket}/nothing-here/*.jsonl"), tmp_path)
    assert empty.value.reason is Reason.SOURCE_NOT_FOUND
    assert f"no object matches s3://{bucket}/nothing-here/*.jsonl" in empty.value.message


def test_upload_folder_records_a_digest_anyone_can_check(s3: Any, bucket: str, tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "merged").mkdir(parents=True)
    (model / "adapter_model.safetensors").write_bytes(os.urandom(70 * 1024 * 1024))  # multipart
    (model / "merged" / "config.json").write_text("{}")
    uploaded = upload_folder(s3, model, parse(f"s3://{bucket}/models/").child("support-agent", "0.1.0"))
    assert uploaded.uri == f"s3://{bucket}/models/support-agent/0.1.0/"
    assert uploaded.files == 2
    sums = get(s3, bucket, f"models/support-agent/0.1.0/{SUMS_FILE}").decode()
    assert uploaded.digest == content_digest(sums) == "sha256:" + hashlib.sha256(sums.encode()).hexdigest()
    for line in sums.splitlines():
        expected, name = line.split("  ", 1)
        body = get(s3, bucket, f"models/support-agent/0.1.0/{name}")
        assert hashlib.sha256(body).hexdigest() == expected == hashlib.sha256((model / name).read_bytes()).hexdigest()


def test_upload_with_a_wrong_secret_is_output_access_denied(s3_server: S3Server, bucket: str, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a").write_text("x")
    wrong = client_for(s3_server, Use.OUTPUT, secret="nope")
    with pytest.raises(JobFailed) as failure:
        upload_folder(wrong, tmp_path / "m", parse(f"s3://{bucket}/out/"), sleep=lambda _: None)
    assert failure.value.reason is Reason.OUTPUT_ACCESS_DENIED
    assert f"s3://{bucket}/out/a" in failure.value.message


def test_md5_etags_are_recognised() -> None:
    assert RemoteObject("k", 1, "d41d8cd98f00b204e9800998ecf8427e").md5_etag()
    assert not RemoteObject("k", 1, "d41d8cd98f00b204e9800998ecf8427e-3").md5_etag()  # multipart
