"""A small MLflow tracking client over its REST API (`/api/2.0/mlflow/...`), on the standard library.

Why not the `mlflow` package: the server needs ~850 MB of dependencies, and even `mlflow-skinny` pulls a
dozen packages and imports slowly; the trainer needs five endpoints. Authentication follows MLflow's own
environment variables (`MLFLOW_TRACKING_TOKEN`, or `MLFLOW_TRACKING_USERNAME` + `MLFLOW_TRACKING_PASSWORD`),
which a job gives through `spec.env` with `secretKeyRef`. Artifacts go through the server's artifact proxy
(`mlflow server --serve-artifacts`, the default since MLflow 2): runs whose artifact URI is
`mlflow-artifacts:/...` accept uploads over HTTP; any other artifact store is reported as not reachable.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TIMEOUT_SECONDS = 10.0
# Limits of MLflow's log-batch endpoint.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_PARAM_VALUE = 6000
PROXIED_ARTIFACTS = "mlflow-artifacts:"


class MlflowError(Exception):
    """A request the server refused or could not be sent."""


@dataclass(frozen=True, slots=True)
class MlflowRun:
    experiment_id: str
    run_id: str
    artifact_uri: str

    def link(self, tracking_uri: str) -> str:
        """The run's page in the MLflow UI."""
        return f"{tracking_uri.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{self.run_id}"


def now_ms() -> int:
    return int(time.time() * 1000)


class MlflowClient:
    def __init__(self, tracking_uri: str, environ: Mapping[str, str], timeout: float = TIMEOUT_SECONDS) -> None:
        self.base = tracking_uri.rstrip("/")
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", **auth_headers(environ)}

    def _request(self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]) -> Any:
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=dict(headers))
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:300]
            raise MlflowError(f"{method} {path}: HTTP {error.code}: {detail}") from error
        except (OSError, ValueError) as error:
            raise MlflowError(f"{method} {self.base}{path}: {error}") from error
        return json.loads(payload) if payload.strip() else {}

    def call(self, method: str, endpoint: str, body: Mapping[str, Any] | None = None) -> Any:
        path = f"/api/2.0/mlflow/{endpoint}"
        if method == "GET" and body:
            return self._request("GET", f"{path}?{urllib.parse.urlencode(body)}", None, self.headers)
        data = json.dumps(body or {}).encode("utf-8")
        return self._request(method, path, data, self.headers)

    def experiment_id(self, name: str) -> str:
        """The experiment called `name`, created when it does not exist yet."""
        found = self._find_experiment(name)
        if found is not None:
            return found
        try:
            return str(self.call("POST", "experiments/create", {"name": name})["experiment_id"])
        except MlflowError as error:
            # Created by a concurrent job between our two calls.
            if "RESOURCE_ALREADY_EXISTS" not in str(error) or (found := self._find_experiment(name)) is None:
                raise
            return found

    def _find_experiment(self, name: str) -> str | None:
        try:
            found = self.call("GET", "experiments/get-by-name", {"experiment_name": name})
        except MlflowError as error:
            if "RESOURCE_DOES_NOT_EXIST" in str(error):
                return None
            raise
        return str(found["experiment"]["experiment_id"])

    def create_run(self, experiment_id: str, run_name: str, tags: Mapping[str, str]) -> MlflowRun:
        body = {
            "experiment_id": experiment_id,
            "run_name": run_name,
            "start_time": now_ms(),
            "tags": [{"key": key, "value": value} for key, value in tags.items()],
        }
        info = self.call("POST", "runs/create", body)["run"]["info"]
        return MlflowRun(str(info["experiment_id"]), str(info["run_id"]), str(info.get("artifact_uri", "")))

    def find_run(self, experiment_id: str, tag: str, value: str) -> MlflowRun | None:
        """A run of this experiment tagged `tag=value` (a retried pod continues its job's run)."""
        escaped = value.replace("'", "")
        body = {"experiment_ids": [experiment_id], "filter": f"tags.`{tag}` = '{escaped}'", "max_results": 1}
        runs = self.call("POST", "runs/search", body).get("runs") or []
        if not runs:
            return None
        info = runs[0]["info"]
        return MlflowRun(str(info["experiment_id"]), str(info["run_id"]), str(info.get("artifact_uri", "")))

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: list[dict[str, Any]] | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        param_items = [{"key": k, "value": v[:MAX_PARAM_VALUE]} for k, v in (params or {}).items()]
        for start in range(0, max(len(param_items), 1), MAX_PARAMS_PER_BATCH):
            chunk = param_items[start : start + MAX_PARAMS_PER_BATCH]
            if chunk or start == 0:
                body: dict[str, Any] = {"run_id": run_id, "params": chunk}
                if start == 0:
                    body["tags"] = [{"key": k, "value": v} for k, v in (tags or {}).items()]
                self.call("POST", "runs/log-batch", body)
        metric_items = metrics or []
        for start in range(0, len(metric_items), MAX_METRICS_PER_BATCH):
            chunk = metric_items[start : start + MAX_METRICS_PER_BATCH]
            self.call("POST", "runs/log-batch", {"run_id": run_id, "metrics": chunk})

    def finish(self, run_id: str, status: str) -> None:
        self.call("POST", "runs/update", {"run_id": run_id, "status": status, "end_time": now_ms()})

    def upload_artifact(self, run: MlflowRun, local: Path, name: str) -> None:
        if not run.artifact_uri.startswith(PROXIED_ARTIFACTS):
            raise MlflowError(
                f"the run's artifact store {run.artifact_uri} is not proxied by the tracking server "
                "(start it with --serve-artifacts); the artifact was not uploaded"
            )
        location = run.artifact_uri[len(PROXIED_ARTIFACTS) :].lstrip("/")
        path = f"/api/2.0/mlflow-artifacts/artifacts/{urllib.parse.quote(location)}/{urllib.parse.quote(name)}"
        headers = {**self.headers, "Content-Type": "application/octet-stream"}
        self._request("PUT", path, local.read_bytes(), headers)


def auth_headers(environ: Mapping[str, str]) -> dict[str, str]:
    token = environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = environ.get("MLFLOW_TRACKING_USERNAME"), environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    return {}
