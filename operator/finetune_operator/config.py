"""Operator settings, from environment variables (flags in `__main__` mirror them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_TRAINER_IMAGE = "ghcr.io/finetune-operator/trainer:0.1.0"
# activeDeadlineSeconds of every curation Job. Curation is CPU work of minutes even for large datasets; a stalled
# read (an object store or volume that stops answering) fails the job after this instead of holding it forever.
CURATION_DEADLINE_SECONDS = 24 * 3600


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
    """DEBUG logs every reconcile decision."""
    log_format: str = "json"
    """json or plain."""
    peering: str = "finetune-operator"
    """Kopf peering object: replicas sharing it elect one active operator."""
    peering_lifetime_seconds: int = 60
    """How long a replica's peering keep-alive counts (Kopf's default); a crashed active replica is replaced
    after at most this long. Keep-alives are sent a few seconds before it runs out."""
    peering_mandatory: bool = False
    """true: a replica starts paused and acts only once peering elected it, and pauses while the peering CRDs are
    missing, so two replicas are never active at once (the production overlay sets it). false: without the
    peering CRDs the operator runs standalone (a laptop, the tests)."""
    source_wait_seconds: int = 300
    """How long a job waits in Pending for its dataset source to exist before it fails."""
    sweep_seconds: int = 15
    """Period of the sweep for time-based transitions (source wait, TTL after finished)."""
    termination_grace_seconds: int = 120
    """Grace period of training pods: long enough for the trainer to save a checkpoint on SIGTERM."""
    rendezvous_timeout_seconds: int = 600
    """How long the pods of a multi-node job wait for each other (pod 0's hostname to resolve, every node rank
    to reach it) before the job fails with RendezvousTimeout, naming the missing ranks."""
    kueue_workload_wait_seconds: int = 60
    """How long a training Job suspended for spec.queueName may have no Kueue Workload before the job says so
    (reason NoKueueWorkload: is Kueue installed and running?). Kueue's job controller creates the Workload within
    a second or two of the Job; a minute also covers a Kueue restart or leader change. The job keeps waiting.
    0 turns the check off."""
    python_command: str = "python"
    """Interpreter in the trainer image."""
    reconcile_workers: int = 4
    """Jobs reconciled at once (each reconciliation is a few blocking API calls in a worker thread)."""
    reconcile_delay_ms: int = 100
    """How long a job waits in the reconcile queue after its first event, so that the events of one change
    (a Job, its pod, the job's status) are reconciled together."""


# The environment variable of each setting; docs/install.md's settings table is generated from this and the
# docstrings above (`make crds`).
ENV_VARIABLES: Mapping[str, str] = {
    "trainer_image": "FTO_TRAINER_IMAGE",
    "namespaces": "FTO_NAMESPACES",
    "max_active_per_namespace": "FTO_MAX_ACTIVE_PER_NAMESPACE",
    "metrics_port": "FTO_METRICS_PORT",
    "health_port": "FTO_HEALTH_PORT",
    "log_level": "FTO_LOG_LEVEL",
    "log_format": "FTO_LOG_FORMAT",
    "peering": "FTO_PEERING",
    "peering_lifetime_seconds": "FTO_PEERING_LIFETIME_SECONDS",
    "peering_mandatory": "FTO_PEERING_MANDATORY",
    "source_wait_seconds": "FTO_SOURCE_WAIT_SECONDS",
    "sweep_seconds": "FTO_SWEEP_SECONDS",
    "termination_grace_seconds": "FTO_TERMINATION_GRACE_SECONDS",
    "rendezvous_timeout_seconds": "FTO_RENDEZVOUS_TIMEOUT_SECONDS",
    "kueue_workload_wait_seconds": "FTO_KUEUE_WORKLOAD_WAIT_SECONDS",
    "python_command": "FTO_PYTHON",
    "reconcile_workers": "FTO_RECONCILE_WORKERS",
    "reconcile_delay_ms": "FTO_RECONCILE_DELAY_MS",
}


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    defaults = Settings()

    def text(setting: str) -> str:
        return env.get(ENV_VARIABLES[setting], "").strip()

    def integer(setting: str) -> int:
        raw = text(setting)
        if not raw:
            return int(getattr(defaults, setting))
        try:
            return int(raw)
        except ValueError as error:
            raise ValueError(f"{ENV_VARIABLES[setting]} must be an integer, got {raw!r}") from error

    def boolean(setting: str) -> bool:
        raw = text(setting).lower()
        if raw not in ("", "true", "false"):
            raise ValueError(f"{ENV_VARIABLES[setting]} must be true or false, got {raw!r}")
        return raw == "true" if raw else bool(getattr(defaults, setting))

    return Settings(
        trainer_image=text("trainer_image") or defaults.trainer_image,
        namespaces=tuple(n.strip() for n in text("namespaces").split(",") if n.strip()),
        max_active_per_namespace=integer("max_active_per_namespace"),
        metrics_port=integer("metrics_port"),
        health_port=integer("health_port"),
        log_level=(text("log_level") or defaults.log_level).upper(),
        log_format=text("log_format") or defaults.log_format,
        peering=text("peering") or defaults.peering,
        peering_lifetime_seconds=integer("peering_lifetime_seconds"),
        peering_mandatory=boolean("peering_mandatory"),
        source_wait_seconds=integer("source_wait_seconds"),
        sweep_seconds=integer("sweep_seconds"),
        termination_grace_seconds=integer("termination_grace_seconds"),
        rendezvous_timeout_seconds=integer("rendezvous_timeout_seconds"),
        kueue_workload_wait_seconds=integer("kueue_workload_wait_seconds"),
        python_command=text("python_command") or defaults.python_command,
        reconcile_workers=integer("reconcile_workers"),
        reconcile_delay_ms=integer("reconcile_delay_ms"),
    )
