"""The trainer's live-reporting contract beyond the status subresource (docs/runtime-contract.md).

- `<job>-metrics` ConfigMap (`metrics_config_map`): created empty by the operator with the job, patched by the
  training pod with its bounded metric history under `HISTORY_KEY` (finetune_trainer.history), read by the
  dashboard and by `kubectl get configmap <job>-metrics -o jsonpath='{.data.history\\.json}'`.
- `finetune-report-pacing` ConfigMap (`REPORT_PACING`): one per namespace with running jobs, written by the
  operator (finetune_operator.pacing); the trainer reads `REPORT_PACING_KEY`, the least number of seconds
  between two of its reports.
"""

from __future__ import annotations

import hashlib

HISTORY_KEY = "history.json"
REPORT_PACING = "finetune-report-pacing"
REPORT_PACING_KEY = "reportIntervalSeconds"
METRICS_COMPONENT = "metrics"  # the app.kubernetes.io/component label of the <job>-metrics ConfigMap
_MAX_NAME = 253
_SUFFIX = "-metrics"


def metrics_config_map(job: str) -> str:
    """`<job>-metrics`; a name too long for that is cut and given a digest so it stays unique and stable."""
    name = f"{job}{_SUFFIX}"
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(job.encode()).hexdigest()[:8]
    return f"{job[: _MAX_NAME - len(_SUFFIX) - 9].rstrip('-.')}-{digest}{_SUFFIX}"
