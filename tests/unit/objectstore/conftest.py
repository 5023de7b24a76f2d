"""A real S3 server (s3s-fs, hack/build-s3s-fs.sh) on 127.0.0.1 for the object-storage tests, and clients."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finetune_trainer.objectstore.client import Endpoint, Use, credential_env_name, make_client
from localservers import S3Server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with S3Server(tmp_path_factory.mktemp("s3s-fs")) as server:
        assert isinstance(server, S3Server)
        yield server


def credentials_env(server: S3Server, use: Use, *, secret: str | None = None) -> dict[str, str]:
    return {
        credential_env_name(use, "ACCESS_KEY_ID"): server.access_key,
        credential_env_name(use, "SECRET_ACCESS_KEY"): secret or server.secret_key,
    }


def client_for(server: S3Server, use: Use = Use.DATASET, *, secret: str | None = None, attempts: int = 2) -> Any:
    return make_client(Endpoint(server.url), credentials_env(server, use, secret=secret), use, attempts=attempts)


@pytest.fixture
def s3(s3_server: S3Server) -> Any:
    return client_for(s3_server)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"b-{uuid.uuid4().hex[:10]}"
    s3.make_bucket(name)
    return name


def stored_file(server: S3Server, bucket: str, key: str) -> Path:
    """Where s3s-fs keeps an object's bytes: a file under its root directory."""
    return server.root / bucket / key
