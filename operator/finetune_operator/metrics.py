"""Prometheus metrics of the operator (served on FTO_METRICS_PORT at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS = Gauge("finetune_operator_jobs", "FineTuningJobs known to this operator, by phase.", ["phase"])
TRANSITIONS = Counter(
    "finetune_operator_phase_transitions_total",
    "Phase transitions written by the operator.",
    ["from_phase", "to_phase"],
)
RECONCILE_ERRORS = Counter("finetune_operator_reconcile_errors_total", "Reconciliations that raised an error.")
RECONCILE_DURATION = Histogram(
    "finetune_operator_reconcile_duration_seconds",
    "Time to reconcile one job (reads, child creation, status write).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_DEPTH = Gauge(
    "finetune_operator_reconcile_queue_depth",
    "Jobs waiting for a reconciliation: grows when events arrive faster than the workers reconcile.",
)
TIME_TO_RUNNING = Histogram(
    "finetune_operator_time_to_running_seconds",
    "Time from a job's creation to its first Running phase.",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 14400),
)
MODEL_VERSIONS = Counter("finetune_operator_model_versions_registered_total", "ModelVersions created by the operator.")
