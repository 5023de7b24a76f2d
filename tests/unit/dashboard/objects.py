"""Slimmed objects as the dashboard's cache holds them, for the page tests."""

from __future__ import annotations

from typing import Any

from finetune_dashboard import slim

Obj = dict[str, Any]


def job(name: str = "quick", namespace: str = "team-a", **status: Any) -> Obj:
    return slim.job(
        {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"uid-{name}",
                "creationTimestamp": "2026-12-03T09:00:00Z",
                "labels": {"team": "ml"},
                "managedFields": [{"manager": "kubectl"}],
                "annotations": {"finetune.dev/last-handled-configuration": "x" * 5000},
            },
            "spec": {
                "baseModel": {"name": "tiny-gpt"},
                "training": {"epochs": 2, "learningRate": 0.001},
                "output": {"modelName": "quick-model"},
            },
            "status": status,
        }
    )


def metrics_map(job_name: str, namespace: str, history: Obj) -> Obj:
    import json

    return slim.metrics(
        {
            "metadata": {"name": f"{job_name}-metrics", "namespace": namespace},
            "data": {slim.HISTORY_KEY: json.dumps(history)},
        }
    )


def version(name: str, namespace: str, model: str, semver: str, job_name: str, job_uid: str, **metrics: float) -> Obj:
    return slim.model_version(
        {
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": "2026-12-03T09:05:00Z"},
            "spec": {
                "modelName": model,
                "version": semver,
                "baseModel": "tiny-gpt",
                "metrics": metrics,
                "dataset": {"sha256": "ab" * 32, "samples": 100},
                "job": {"name": job_name, "uid": job_uid},
                "hyperparameters": {"learningRate": 0.001},
            },
        }
    )
