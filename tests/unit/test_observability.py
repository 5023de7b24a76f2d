"""The Grafana dashboard queries only the metrics the operator exports (docs/install.md lists them)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import localcluster
import strictyaml

OBSERVABILITY = Path(__file__).resolve().parents[2] / "manifests" / "observability"
DASHBOARD = OBSERVABILITY / "grafana-dashboard.json"

OPERATOR_METRICS = {
    "finetune_operator_jobs",
    "finetune_operator_phase_transitions_total",
    "finetune_operator_reconcile_errors_total",
    "finetune_operator_reconcile_duration_seconds",
    "finetune_operator_reconcile_queue_depth",
    "finetune_operator_time_to_running_seconds",
    "finetune_operator_model_versions_registered_total",
}
HISTOGRAMS = {"finetune_operator_reconcile_duration_seconds", "finetune_operator_time_to_running_seconds"}
# prometheus_client's default process collector, present in every Python exporter.
PROCESS_METRICS = {"process_resident_memory_bytes"}
PHASES = {"Pending", "Queued", "Running", "Evaluating", "Completed", "Failed", "Cancelled"}
LABELS = {"phase", "from_phase", "to_phase"}


def panels() -> list[dict[str, Any]]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def exprs() -> list[str]:
    return [t["expr"] for p in panels() for t in p["targets"]]


def series_names(expr: str) -> set[str]:
    """Identifiers that select series: words followed by `{` (every query here uses a selector)."""
    return set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expr))


def exported(name: str) -> bool:
    if name in OPERATOR_METRICS or name in PROCESS_METRICS:
        return True
    base, _, suffix = name.rpartition("_")
    return base in HISTOGRAMS and suffix in {"bucket", "sum", "count"}


def test_dashboard_is_valid_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "finetune-operator"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "job"}
    for panel in panels():
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"


def test_every_query_uses_exported_metrics_and_the_job_filter() -> None:
    used: set[str] = set()
    for expr in exprs():
        assert expr.count("(") == expr.count(")"), expr
        names = series_names(expr)
        assert names, expr
        for name in names:
            assert exported(name), f"{name} is not exported by the operator: {expr}"
            used.add(name.removesuffix("_bucket").removesuffix("_count"))
        assert expr.count('job=~"$job"') == len(re.findall(r"\{", expr)), expr
    assert used >= OPERATOR_METRICS, f"metrics without a panel: {OPERATOR_METRICS - used}"


def test_label_values_match_the_operator() -> None:
    for expr in exprs():
        for label, value in re.findall(r'(\w+)=~?"([^"$]+)"', expr):
            assert label in LABELS, expr
            assert set(value.split("|")) <= PHASES, expr


def test_check_rejects_an_unknown_metric() -> None:
    assert not exported("finetune_operator_jobs_total")
    assert not exported("finetune_operator_jobs_bucket")
    assert exported("finetune_operator_time_to_running_seconds_bucket")


def test_dashboard_configmap_renders() -> None:
    result = subprocess.run(
        [localcluster.kubectl_binary(), "kustomize", str(OBSERVABILITY)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    (configmap,) = list(strictyaml.load_all(result.stdout))
    assert configmap["metadata"]["name"] == "finetune-operator-dashboard"
    assert configmap["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert json.loads(configmap["data"]["grafana-dashboard.json"]) == json.loads(DASHBOARD.read_text())
