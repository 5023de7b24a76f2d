from __future__ import annotations

import pytest

from finetune_trainer.objectstore.location import matches, parse


def test_parse_splits_bucket_and_key() -> None:
    location = parse("s3://agent-logs/sessions/2026-11/*.jsonl.gz")
    assert (location.bucket, location.key) == ("agent-logs", "sessions/2026-11/*.jsonl.gz")
    assert location.list_prefix == "sessions/2026-11/"
    assert location.uri == "s3://agent-logs/sessions/2026-11/*.jsonl.gz"


@pytest.mark.parametrize("uri", ["agent-logs/x", "s3:///x", "https://bucket/x"])
def test_parse_refuses_what_is_not_an_s3_uri(uri: str) -> None:
    with pytest.raises(ValueError):
        parse(uri)


@pytest.mark.parametrize(
    ("uri", "key", "selected"),
    [
        ("s3://b/s/*.jsonl", "s/a.jsonl", True),
        ("s3://b/s/*.jsonl", "s/deeper/a.jsonl", False),  # * stays within one segment, like glob.glob
        ("s3://b/s/**/*.jsonl", "s/a.jsonl", True),
        ("s3://b/s/**/*.jsonl", "s/x/y/a.jsonl", True),
        ("s3://b/s/day-?.jsonl", "s/day-1.jsonl", True),
        ("s3://b/s/day-[12].jsonl", "s/day-3.jsonl", False),
        ("s3://b/s/day-[!12].jsonl", "s/day-3.jsonl", True),
        ("s3://b/models/llama", "models/llama/config.json", True),  # a plain prefix is a folder
        ("s3://b/models/llama", "models/llama-2/config.json", False),
        ("s3://b/s/a.jsonl", "s/a.jsonl", True),
        ("s3://b/s/a+b.jsonl", "s/a+b.jsonl", True),  # regex characters in a key are literal
    ],
)
def test_glob_selects_keys_like_the_pvc_source_does(uri: str, key: str, selected: bool) -> None:
    assert matches(parse(uri), key) is selected


def test_child_joins_below_the_folder() -> None:
    assert parse("s3://b/out/").child("model", "0.1.0").uri == "s3://b/out/model/0.1.0"
    assert parse("s3://b").child("m", "1").uri == "s3://b/m/1"
