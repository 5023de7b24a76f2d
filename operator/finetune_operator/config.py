"""Operator settings, from environment variables (flags in `__main__` mirror them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_TRAINER_IMAGE = "ghcr.io/finetune-operator/trainer:0.1.0"


@dataclass(frozen=True)
class Settings:
    trainer_image: str = DEFAULT_TRAINER_IMAGE
    """Image of the curation and training pods unless a job sets spec.trainerImage."""
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means all namespaces."""
    max_active_per_namespace: int = 0
    """Training workloads allowed at once per namespace; 0 means unlimited. Jobs over it wait in Queued."""
    metrics_port: int = 9090
    """Port of the Prometheus /metrics endpoint; 0 disables it."""
    health_port: int = 8080
    """Port of the /healthz liveness endpoint."""
    log_level: str = "INFO"
    log_format: str = "json"
    peering: str = "finetune-operator"
    """Kopf peering object: replicas sharing it elect one active operator."""
    peering_lifetime_seconds: int = 60
    """How long a replica's peering keep-alive counts (Kopf's default); a crashed active replica is replaced
    after at most this long. Keep-alives are sent a few seconds before it runs out."""
    source_wait_seconds: int = 300
    """How long a job waits in Pending for its dataset source to exist before it fails."""
    sweep_seconds: int = 15
    """Period of the sweep for time-based transitions (source wait, TTL after finished)."""
    termination_grace_seconds: int = 120
    """Grace period of training pods: long enough for the trainer to save a checkpoint on SIGTERM."""
    python_command: str = "python"
    """Interpreter in the trainer image."""
    reconcile_workers: int = 4
    """Jobs reconciled at once (each reconciliation is a few blocking API calls in a worker thread)."""
    reconcile_delay_ms: int = 100
    """How long a job waits in the reconcile queue after its first event, so that the events of one change
    (a Job, its pod, the job's status) are reconciled together."""


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    defaults = Settings()

    def integer(name: str, default: int) -> int:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            return int(raw)
        except ValueError as error:
            raise ValueError(f"{name} must be an integer, got {raw!r}") from error

    namespaces = tuple(n.strip() for n in env.get("FTO_NAMESPACES", "").split(",") if n.strip())
    return Settings(
        trainer_image=env.get("FTO_TRAINER_IMAGE", "").strip() or defaults.trainer_image,
        namespaces=namespaces,
        max_active_per_namespace=integer("FTO_MAX_ACTIVE_PER_NAMESPACE", defaults.max_active_per_namespace),
        metrics_port=integer("FTO_METRICS_PORT", defaults.metrics_port),
        health_port=integer("FTO_HEALTH_PORT", defaults.health_port),
        log_level=env.get("FTO_LOG_LEVEL", defaults.log_level).upper(),
        log_format=env.get("FTO_LOG_FORMAT", defaults.log_format),
        peering=env.get("FTO_PEERING", defaults.peering),
        peering_lifetime_seconds=integer("FTO_PEERING_LIFETIME_SECONDS", defaults.peering_lifetime_seconds),
        source_wait_seconds=integer("FTO_SOURCE_WAIT_SECONDS", defaults.source_wait_seconds),
        sweep_seconds=integer("FTO_SWEEP_SECONDS", defaults.sweep_seconds),
        termination_grace_seconds=integer("FTO_TERMINATION_GRACE_SECONDS", defaults.termination_grace_seconds),
        python_command=env.get("FTO_PYTHON", defaults.python_command),
        reconcile_workers=integer("FTO_RECONCILE_WORKERS", defaults.reconcile_workers),
        reconcile_delay_ms=integer("FTO_RECONCILE_DELAY_MS", defaults.reconcile_delay_ms),
    )
