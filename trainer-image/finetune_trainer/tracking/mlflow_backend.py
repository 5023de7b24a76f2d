"""MLflow as a `tracker.Backend`: one run per FineTuningJob, continued by a retried training pod.

The run is found again by its `finetune.dev/job-uid` tag, so a pod restarted after a crash or eviction
appends to the same metric history instead of starting a second run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from finetune_trainer.tracking.mlflow import MlflowClient, MlflowRun, now_ms

JOB_UID_TAG = "finetune.dev/job-uid"


class MlflowBackend:
    name = "mlflow"

    def __init__(self, client: MlflowClient, tracking_uri: str, experiment: str, run_name: str) -> None:
        self.client = client
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.run_name = run_name
        self.run: MlflowRun | None = None

    def start(self, hyperparameters: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        experiment_id = self.client.experiment_id(self.experiment)
        uid = tags.get(JOB_UID_TAG)
        run = self.client.find_run(experiment_id, JOB_UID_TAG, uid) if uid else None
        if run is None:
            run = self.client.create_run(experiment_id, self.run_name, tags)
            # Params are write-once in MLflow: a continued run already has them.
            self.client.log_batch(run.run_id, params=as_params(hyperparameters), tags=tags)
        self.run = run

    def _run(self) -> MlflowRun:
        if self.run is None:
            raise RuntimeError("the MLflow run was not created")
        return self.run

    def log_metrics(self, points: list[tuple[int, dict[str, float]]]) -> None:
        stamp = now_ms()
        metrics = [
            {"key": key, "value": float(value), "step": step, "timestamp": stamp}
            for step, values in points
            for key, value in values.items()
        ]
        self.client.log_batch(self._run().run_id, metrics=metrics)

    def log_artifact(self, local: Path, name: str) -> None:
        self.client.upload_artifact(self._run(), local, name)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.client.log_batch(self._run().run_id, tags=tags)

    def finish(self, succeeded: bool) -> None:
        self.client.finish(self._run().run_id, "FINISHED" if succeeded else "FAILED")

    def reference(self) -> dict[str, str]:
        if self.run is None:
            return {}
        return {
            "runId": self.run.run_id,
            "experimentId": self.run.experiment_id,
            "url": self.run.link(self.tracking_uri),
        }


def as_params(hyperparameters: Mapping[str, Any]) -> dict[str, str]:
    """MLflow params are strings: strings as written, anything else as JSON; unset values are left out."""
    return {
        key: value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        for key, value in hyperparameters.items()
        if value is not None
    }
