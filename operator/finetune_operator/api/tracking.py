"""`spec.tracking`: experiment tracking besides TensorBoard, and where a job's run is (status, ModelVersion).

MLflow: one run per job, with the resolved hyperparameters as params, per-step training metrics, the final
eval metrics, the dataset manifest as an artifact, and tags naming the job, namespace, uid and model. A
tracking server that is down never fails a job: the trainer trains on, sends buffered metrics when the server
answers again, and reports what went wrong in `status.tracking.mlflow.degraded`. Tokens go in through
`spec.env` (`MLFLOW_TRACKING_TOKEN`, or `MLFLOW_TRACKING_USERNAME`/`_PASSWORD`, from a Secret), never here.

Weights & Biases: the same run content through the `wandb` SDK, its files under the workspace (`wandb/`); in
`offline` mode nothing leaves the cluster (`wandb sync` uploads the files later). `WANDB_API_KEY` goes in
through `spec.env` from a Secret.
"""

from __future__ import annotations

from typing import Literal

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


# W&B's own limits: entity and project names, and run names.
WANDB_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"


class WandbTracking(ApiModel):
    """A Weights & Biases project (wandb.ai, a self-hosted W&B server, or offline files in the workspace)."""

    project: str = Field(min_length=1, max_length=128, pattern=WANDB_NAME_PATTERN)
    """Project name; created on first use."""
    entity: str | None = Field(default=None, min_length=1, max_length=128, pattern=WANDB_NAME_PATTERN)
    """Team or user the project belongs to (default: the API key's default entity)."""
    mode: Literal["online", "offline"] = "online"
    """offline: the run is only written to the workspace (`wandb/`), for `wandb sync` later."""
    run_name: str | None = Field(default=None, min_length=1, max_length=128)
    """Display name of the run (default: <namespace>/<job>)."""
    host: str | None = Field(default=None, pattern=HTTP_URL_PATTERN, max_length=2048)
    """http(s) URL of a self-hosted W&B server (`WANDB_BASE_URL`; default https://api.wandb.ai)."""


class TrackingSpec(ApiModel):
    """Where runs are reported besides the TensorBoard files in the workspace (either or both)."""

    mlflow: MlflowTracking | None = None
    wandb: WandbTracking | None = None


# What the trainer writes is cut to these (`tracker.DEGRADED_LIMIT`); the bounds keep any writer's status small.
DEGRADED_LIMIT = 512


class TrackedRun(StatusModel):
    """A job's run in a tracking server."""

    run_id: str | None = Field(default=None, max_length=256)
    experiment_id: str | None = Field(default=None, max_length=256)
    """MLflow: the run's experiment."""
    path: str | None = Field(default=None, max_length=512)
    """W&B: the run path `<entity>/<project>/<runId>` (`wandb.Api().run(path)`)."""
    directory: str | None = Field(default=None, max_length=1024)
    """W&B: the run's files in the workspace, relative to it (what `wandb sync` uploads for an offline run)."""
    url: str | None = Field(default=None, max_length=4096)
    """The run's page in the tracking server's UI."""
    degraded: str | None = Field(default=None, max_length=DEGRADED_LIMIT)
    """The first tracking error, when the server was unreachable or refused a request; training went on."""
    unsent_steps: int | None = Field(default=None, ge=0)
    """Steps whose metrics never reached the server."""


class TrackingStatus(StatusModel):
    """Where the job's runs are (reported by the training pod)."""

    mlflow: TrackedRun | None = None
    wandb: TrackedRun | None = None
