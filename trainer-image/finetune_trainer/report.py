"""Live progress from the training pod to its FineTuningJob's status (docs/runtime-contract.md).

The pod merge-patches `finetuningjobs/<job>/status` with its own ServiceAccount, whose Role allows
exactly that one object. Writes are throttled to one per `interval` seconds, except that a stage
change (Training -> Evaluating) is sent at once, so `kubectl get` shows it within seconds while a
fast training loop cannot flood the API server. Reporting is best effort: every failure is logged
and swallowed, because losing a progress update must never cost a training run. Outside a cluster
(no KUBERNETES_SERVICE_HOST) updates are only logged.

Raw HTTPS with the mounted token and CA keeps this free of the heavy `kubernetes` client; the
token is re-read for every request because projected ServiceAccount tokens rotate.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from finetune_operator.api import GROUP, VERSION

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_INTERVAL_SECONDS = 10.0
REQUEST_TIMEOUT_SECONDS = 5.0

Send = Callable[[dict[str, object]], None]


def is_due(now: float, last_sent: float | None, last_stage: str | None, stage: str, interval: float) -> bool:
    """Send the first update, every stage change, and otherwise at most one per `interval` seconds."""
    if last_sent is None or stage != last_stage:
        return True
    return now - last_sent >= interval


def percent(step: int, total_steps: int) -> int:
    if total_steps <= 0:
        return 0
    return max(0, min(100, step * 100 // total_steps))


def status_patch(
    *,
    stage: str,
    step: int,
    total_steps: int,
    epoch: float,
    metrics: Mapping[str, float],
    now: datetime,
    checkpoint: Mapping[str, object] | None = None,
) -> dict[str, object]:
    status: dict[str, object] = {
        "progress": {
            "stage": stage,
            "step": step,
            "totalSteps": total_steps,
            "epoch": round(epoch, 4),
            "percent": percent(step, total_steps),
            "updatedAt": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "metrics": dict(metrics),
    }
    if checkpoint is not None:
        status["checkpoint"] = dict(checkpoint)
    return {"status": status}


@dataclass
class Reporter:
    """Throttled status writer; `send` does the I/O (HTTPS in a cluster, a log line outside)."""

    send: Send
    interval: float = DEFAULT_INTERVAL_SECONDS
    last_sent: float | None = None
    last_stage: str | None = None

    def report(self, patch: dict[str, object], stage: str, now: float, force: bool = False) -> bool:
        if not force and not is_due(now, self.last_sent, self.last_stage, stage, self.interval):
            return False
        self.last_sent, self.last_stage = now, stage
        try:
            self.send(patch)
        except Exception as error:
            log.warning("status update failed: %s", error)
        return True


def from_environment(name: str, namespace: str, environ: Mapping[str, str] | None = None) -> Reporter:
    env = os.environ if environ is None else environ
    host = env.get("KUBERNETES_SERVICE_HOST")
    if not host:
        return Reporter(send=_log_only)
    port = env.get("KUBERNETES_SERVICE_PORT", "443")
    # IPv6 service hosts need brackets in a URL.
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"https://{authority}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/finetuningjobs/{name}/status"
    return Reporter(send=https_sender(url, SERVICE_ACCOUNT_DIR))


def https_sender(url: str, credentials: Path) -> Send:
    context = ssl.create_default_context(cafile=str(credentials / "ca.crt"))

    def send(patch: dict[str, object]) -> None:
        token = (credentials / "token").read_text(encoding="utf-8").strip()
        request = urllib.request.Request(
            url,
            data=json.dumps(patch).encode("utf-8"),
            method="PATCH",
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/merge-patch+json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS, context=context) as response:
                response.read()
        except urllib.error.HTTPError as error:
            body = error.read().decode("utf-8", "replace")[:300]
            raise RuntimeError(f"PATCH {url}: HTTP {error.code}: {body}") from error

    return send


def _log_only(patch: dict[str, object]) -> None:
    log.info("status update (not in a cluster): %s", json.dumps(patch))
