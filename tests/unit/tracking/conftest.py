"""A real MLflow tracking server (hack/mlflow-server.sh: SQLite backend, proxied artifacts) on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from finetune_trainer.tracking.mlflow import MlflowClient
from localservers import MlflowServer


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start(timeout=300)
    warm_up(server.url)
    yield server
    server.stop()


def warm_up(server_url: str) -> None:
    """The server's first run search takes seconds (lazy imports, SQLite migrations) and can outlast the
    trainer's 10 s request timeout on a loaded machine: pay it here, not in the test's first request."""
    MlflowClient(server_url, {}, timeout=300).call("POST", "runs/search", {"experiment_ids": ["0"], "max_results": 1})


def rest(server_url: str, endpoint: str, query: dict[str, str]) -> Any:
    """GET one MLflow REST endpoint, the way any other MLflow client would read what the trainer wrote."""
    url = f"{server_url}/api/2.0/{endpoint}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())
