"""How often trainers report, set from how many jobs are running (issue #15; bench/scale/RESULTS.md).

Every running trainer writes its progress (the job's status) and, with every second report, its metric
history (the `<job>-metrics` ConfigMap). At 1,000 running jobs a fixed 10 s interval is ~150 writes/s, under
which the API server's FineTuningJob watch cache was seen re-initialising. The operator, which knows how many
jobs run or are about to (REPORTING_PHASES), keeps one `finetune-report-pacing` ConfigMap per namespace with
such jobs holding the interval that keeps the cluster's total within WRITES_PER_SECOND; each trainer reads it
(its Role may `get` that one name) and also backs off by itself on 429s and slow answers
(finetune_trainer.report).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from finetune_operator import naming
from finetune_operator.api import reporting
from finetune_operator.kube import ApiError, Kube

log = logging.getLogger(__name__)

WRITES_PER_SECOND = 15.0  # the target is 20/s in total; headroom for stage changes and final reports
WRITES_PER_REPORT = 1.5  # a status patch every report, the history with every second one
MIN_INTERVAL_SECONDS = 10.0
MAX_INTERVAL_SECONDS = 600.0
# Rewrite a namespace's pacing only when the interval moved by at least this factor: a handful of writes
# while 1,000 jobs ramp up, none while the count wobbles.
HYSTERESIS = 1.25


def report_interval(jobs: int) -> float:
    """Seconds between two reports of each pod so that `jobs` reporting jobs' pods stay within the budget."""
    needed = jobs * WRITES_PER_REPORT / WRITES_PER_SECOND
    return round(min(MAX_INTERVAL_SECONDS, max(MIN_INTERVAL_SECONDS, needed)), 1)


def worth_writing(written: float | None, wanted: float) -> bool:
    if written is None:
        return True
    return wanted >= written * HYSTERESIS or wanted * HYSTERESIS <= written


def pacing_config_map(namespace: str, interval: float, jobs: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": reporting.REPORT_PACING,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": naming.MANAGED_BY, "app.kubernetes.io/component": "pacing"},
        },
        "data": {reporting.REPORT_PACING_KEY: str(interval), "reportingJobs": str(jobs)},
    }


@dataclass
class Pacer:
    """Writes each namespace's pacing when the cluster-wide count of reporting jobs moved it enough (the sweep)."""

    kube: Kube
    written: dict[str, float] = field(default_factory=dict)

    def publish(self, reporting_by_namespace: Mapping[str, int]) -> list[str]:
        """Namespaces whose pacing was written. Namespaces without reporting jobs keep their last value."""
        total = sum(reporting_by_namespace.values())
        wanted = report_interval(total)
        changed = []
        for namespace in sorted(n for n, count in reporting_by_namespace.items() if count):
            if not worth_writing(self.written.get(namespace), wanted):
                continue
            try:
                self._write(pacing_config_map(namespace, wanted, total))
            except ApiError as error:
                log.warning("%s: cannot write the report pacing: %s", namespace, error)
                continue
            self.written[namespace] = wanted
            changed.append(namespace)
        return changed

    def _write(self, config_map: dict[str, Any]) -> None:
        namespace = config_map["metadata"]["namespace"]
        if not self.kube.create(config_map):
            self.kube.patch("ConfigMap", namespace, reporting.REPORT_PACING, {"data": config_map["data"]})


# Jobs whose pods report now (curation and training run in Running, the final patches in Evaluating) or are about
# to (Pending: the workspace binding, the curation pod starting). Counting Pending sets the pacing before a wave of
# jobs starts instead of after it: each pod reads the pacing when it starts and then once a minute, so pods that
# started early in a wave of 1,000 kept the interval of the first hundred for that minute (bench/scale run 3:
# 30 writes/s in the peak minute). Queued jobs wait for admission or capacity, possibly for hours, and do not count.
REPORTING_PHASES = frozenset({"Pending", "Running", "Evaluating"})


def reporting_by_namespace(phases: Iterable[tuple[str, str | None]]) -> dict[str, int]:
    """(namespace, phase) of every known job -> jobs reporting or about to, per namespace (REPORTING_PHASES)."""
    counts: dict[str, int] = {}
    for namespace, phase in phases:
        counts.setdefault(namespace, 0)
        if phase in REPORTING_PHASES:
            counts[namespace] += 1
    return counts
