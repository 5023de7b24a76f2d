"""`spec.tracking`: experiment tracking besides TensorBoard, and where a job's run is (status, ModelVersion).

MLflow: one run per job, with the resolved hyperparameters as params, per-step training metrics, the final
eval metrics, the dataset manifest as an artifact, and tags naming the job, namespace, uid and model. A
tracking server that is down never fails a job: the trainer trains on, sends buffered metrics when the server
answers again, and reports what went wrong in `status.tracking.mlflow.degraded`. Tokens go in through
`spec.env` (`MLFLOW_TRACKING_TOKEN`, or `MLFLOW_TRACKING_USERNAME`/`_PASSWORD`, from a Secret), never here.
"""

from __future__ import annotations

from pydantic import Field

from finetune_operator.api.base import ApiModel, StatusModel

HTTP_URL_PATTERN = r"^https?://[^\s/]+(/.*)?$"


class MlflowTracking(ApiModel):
    """An MLflow tracking server (its REST API and artifact proxy, `mlflow server --serve-artifacts`)."""

    tracking_uri: str = Field(pattern=HTTP_URL_PATTERN, max_length=2048)
    """http(s) URL of the tracking server."""
    experiment: str = Field(min_length=1, max_length=500)
    """Experiment name; created when missing."""
    run_name: str | None = Field(default=None, min_length=1, max_length=250)
    """Run name (default: <namespace>/<job>)."""


class TrackingSpec(ApiModel):
    """Where runs are reported besides the TensorBoard files in the workspace."""

    mlflow: MlflowTracking | None = None


# What the trainer writes is cut to these (`tracker.DEGRADED_LIMIT`); the bounds keep any writer's status small.
DEGRADED_LIMIT = 512


class TrackedRun(StatusModel):
    """A job's run in a tracking server."""

    run_id: str | None = Field(default=None, max_length=256)
    experiment_id: str | None = Field(default=None, max_length=256)
    url: str | None = Field(default=None, max_length=4096)
    """The run's page in the tracking server's UI."""
    degraded: str | None = Field(default=None, max_length=DEGRADED_LIMIT)
    """The first tracking error, when the server was unreachable or refused a request; training went on."""
    unsent_steps: int | None = Field(default=None, ge=0)
    """Steps whose metrics never reached the server."""


class TrackingStatus(StatusModel):
    """Where the job's runs are (reported by the training pod)."""

    mlflow: TrackedRun | None = None
