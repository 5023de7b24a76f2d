"""The job a tracking test's run belongs to, and the Trainer's log calls, shared by the MLflow and W&B tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from finetune_operator.api.jobconfig import JobConfig
from finetune_trainer.train import tracking

UID = "0b8f4b6e-3c55-4a5e-9a57-1f2f3a4b5c6d"


def job_config(tracked: dict[str, Any] | None, workspace: Path | str = "/workspace") -> JobConfig:
    """The job `support-agent` in `ml`, with `tracked` as its spec.tracking (None: no tracking)."""
    return JobConfig.model_validate(
        {
            "job": {"name": "support-agent", "namespace": "ml", "uid": UID},
            "spec": {
                "baseModel": {"name": "tiny", "builtin": "tiny-gpt"},
                "dataset": {"source": {"configMap": {"name": "sessions", "key": "sessions.jsonl"}}},
                "output": {"modelName": "support-bot", "version": "1.2.0"},
                **({"tracking": tracked} if tracked else {}),
            },
            "paths": {"workspace": str(workspace), "sourceGlob": "/source/*.jsonl"},
        }
    )


def trainer_log(callback: tracking.TrackingCallback, step: int, logs: dict[str, Any]) -> None:
    """What the Trainer calls with each log record, on the main process."""
    state = SimpleNamespace(is_world_process_zero=True, global_step=step)
    callback.on_log(None, state, None, logs=logs)
