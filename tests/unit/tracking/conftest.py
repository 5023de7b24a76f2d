"""A real MLflow tracking server (hack/mlflow-server.sh: SQLite backend, proxied artifacts) on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from localservers import MlflowServer


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start(timeout=300)
    yield server
    server.stop()


def rest(server_url: str, endpoint: str, query: dict[str, str]) -> Any:
    """GET one MLflow REST endpoint, the way any other MLflow client would read what the trainer wrote."""
    url = f"{server_url}/api/2.0/{endpoint}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())
