"""spec.tracking in a training run: which backends, what they are told, and the Trainer callback.

Rank 0 only. Params are the resolved hyperparameters (what the config hash covers), tags name the job,
namespace, uid and model; per-step training metrics go out as the Trainer logs them, the final eval metrics and
the dataset manifest after evaluation. Everything goes through `tracking.tracker.Tracker`, which never raises.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from finetune_operator.api import JobConfig
from finetune_trainer.failures import JobFailed
from finetune_trainer.tracking.mlflow import MlflowClient
from finetune_trainer.tracking.mlflow_backend import JOB_UID_TAG, MlflowBackend
from finetune_trainer.tracking.tracker import Backend, Tracker
from finetune_trainer.tracking.wandb_backend import WandbBackend
from finetune_trainer.train import jsonlog
from finetune_trainer.train.callbacks import Progress

# Trainer log keys -> metric names in the tracker: the names of status.metrics, so a step's trainLoss and the
# final trainLoss are one metric history.
_STEP_METRICS = {
    "loss": "trainLoss",
    "learning_rate": "learningRate",
    "grad_norm": "gradNorm",
    "eval_loss": "evalLoss",
}


def start(job: JobConfig, environ: Mapping[str, str], hyperparameters: Mapping[str, Any]) -> Tracker | None:
    """The job's tracker with its runs started (or their failures recorded), or None without spec.tracking."""
    backends = configured_backends(job, environ)
    if not backends:
        return None
    tracker = Tracker(backends)
    tracker.start(hyperparameters, tags(job))
    return tracker


def configured_backends(job: JobConfig, environ: Mapping[str, str]) -> list[Backend]:
    spec = job.spec.tracking
    default_name = f"{job.job.namespace}/{job.job.name}"
    backends: list[Backend] = []
    if spec is not None and (mlflow := spec.mlflow) is not None:
        client = MlflowClient(mlflow.tracking_uri, environ)
        backends.append(MlflowBackend(client, mlflow.tracking_uri, mlflow.experiment, mlflow.run_name or default_name))
    if spec is not None and (wandb := spec.wandb) is not None:
        run_name = wandb.run_name or default_name
        backends.append(WandbBackend(wandb, job.job.uid, run_name, job.job.name, job.workspace))
    return backends


def tags(job: JobConfig) -> dict[str, str]:
    found = {
        "finetune.dev/job": job.job.name,
        "finetune.dev/namespace": job.job.namespace,
        JOB_UID_TAG: job.job.uid,
        "finetune.dev/model": job.spec.output.model_name,
        "finetune.dev/base-model": job.spec.base_model.name,
    }
    if job.spec.output.version:
        found["finetune.dev/model-version"] = job.spec.output.version
    return found


def finish(
    tracker: Tracker | None, dataset: Path, step: int, metrics: Mapping[str, float], *, succeeded: bool
) -> dict[str, object]:
    """After evaluation: the final metrics, the dataset manifest, the run's end state; returns where the run is
    (and any tracking error) for the termination message."""
    if tracker is None:
        return {}
    tracker.log_metrics(step, {key: float(value) for key, value in metrics.items()})
    manifest = dataset / "manifest.json"
    if manifest.is_file():
        tracker.log_artifact(manifest, "dataset/manifest.json")
    tracker.finish(succeeded)
    summary = tracker.summary()
    jsonlog.event("tracking", **summary)
    return summary


def step_metrics(logs: Mapping[str, Any]) -> dict[str, float]:
    """The tracked values of one Trainer log record (a training step's or an evaluation's)."""
    return {
        name: float(logs[key])
        for key, name in _STEP_METRICS.items()
        if isinstance(logs.get(key), int | float) and not isinstance(logs.get(key), bool)
    }


@contextmanager
def finishing(tracker: Tracker | None, dataset: Path, progress: Progress) -> Iterator[dict[str, object]]:
    """Around writing the final model: the run ends FAILED when that fails (JobFailed: the gate, a full volume),
    FINISHED otherwise; the yielded dict then holds `tracking` (where the run is) for the termination message."""
    out: dict[str, object] = {}
    try:
        yield out
    except JobFailed:
        finish(tracker, dataset, progress.step, progress.metrics, succeeded=False)
        raise
    summary = finish(tracker, dataset, progress.step, progress.metrics, succeeded=True)
    if summary:
        out["tracking"] = summary


class TrackingCallback(TrainerCallback):  # type: ignore[misc]  # transformers is typed as Any here
    """Per-step training metrics and evaluations during training to the tracker (world process zero only)."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        values = step_metrics(logs or {})
        if state.is_world_process_zero and values:
            self.tracker.log_metrics(int(state.global_step), values)
