"""Live progress and metric history from the training pod (docs/runtime-contract.md).

The pod merge-patches `finetuningjobs/<job>/status` (progress, latest metrics) and, with every second
report of a stage, its `<job>-metrics` ConfigMap (the bounded history, finetune_trainer.history) with its own
ServiceAccount, whose Role allows exactly those two objects and reading the namespace's pacing. Writes are
throttled to one report per `interval` seconds, except that a stage change (Training -> Evaluating) is sent
at once. The interval adapts to load: never below the pacing the operator publishes for the number of
reporting jobs (finetune_operator.pacing, read when the pod starts and then at most once a minute; on a busy
cluster the first report waits for a random moment within it, `Reporter.hold_first_report`), doubled on 429
(or Retry-After) and 5xx, x1.5 on an answer slower than SLOW_SECONDS, and relaxed back by 10% per quick
answer. Reporting is best
effort: every failure is logged and swallowed, because losing a progress update must never cost a training
run (the final figures travel in the termination message). Outside a cluster (no KUBERNETES_SERVICE_HOST)
updates are only logged.

Raw HTTPS with the mounted token and CA keeps this free of the heavy `kubernetes` client; the
token is re-read for every request because projected ServiceAccount tokens rotate.
"""

from __future__ import annotations

import json
import logging
import os
import random
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from finetune_operator.api import GROUP, VERSION, reporting

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_INTERVAL_SECONDS = 10.0
MAX_INTERVAL_SECONDS = 600.0
SLOW_SECONDS = 2.0
PACING_REREAD_SECONDS = 60.0
HISTORY_EVERY = 2  # the history goes with every second report (and every forced or stage-change one)
REQUEST_TIMEOUT_SECONDS = 5.0

Send = Callable[[dict[str, object]], None]
Read = Callable[[], float | None]


class Refused(RuntimeError):
    """The API server answered an error status (Retry-After in seconds when it sent one)."""

    def __init__(self, message: str, code: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


def adapt(interval: float, floor: float, *, latency: float, code: int | None, retry_after: float | None) -> float:
    """The next report interval after one write (code None: it succeeded)."""
    if code is not None and (code == 429 or code >= 500):
        return min(MAX_INTERVAL_SECONDS, max(interval * 2, retry_after or 0.0, floor))
    if latency > SLOW_SECONDS:
        return min(MAX_INTERVAL_SECONDS, max(interval * 1.5, floor))
    return max(floor, interval * 0.9)


def is_due(
    now: float,
    last_sent: float | None,
    last_stage: str | None,
    stage: str,
    interval: float,
    first_at: float | None = None,
) -> bool:
    """Send the first update (from `first_at` when given), every stage change, and otherwise at most one per
    `interval` seconds."""
    if last_sent is None:
        return first_at is None or now >= first_at
    if stage != last_stage:
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
    seconds_remaining: int | None = None,
) -> dict[str, object]:
    progress: dict[str, object] = {
        "stage": stage,
        "step": step,
        "totalSteps": total_steps,
        "epoch": round(epoch, 4),
        "percent": percent(step, total_steps),
        "updatedAt": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        # null clears an estimate once training is over (a merge patch keeps fields it does not mention)
        "estimatedSecondsRemaining": seconds_remaining,
    }
    status: dict[str, object] = {"progress": progress, "metrics": dict(metrics)}
    if checkpoint is not None:
        status["checkpoint"] = dict(checkpoint)
    return {"status": status}


@dataclass
class Reporter:
    """Throttled, load-adaptive writer; `send`/`send_history` do the I/O (HTTPS in a cluster, a log line outside)."""

    send: Send
    interval: float = DEFAULT_INTERVAL_SECONDS
    send_history: Send | None = None
    read_pacing: Read | None = None
    clock: Callable[[], float] = time.monotonic  # times each write (latency), independent of the caller's clock
    floor: float = 0.0  # the pacing: never report more often (0: the starting interval)
    last_sent: float | None = None
    last_stage: str | None = None
    reports: int = 0  # in the current stage
    history_sent: bool = False
    pacing_read_at: float | None = None
    paced: float | None = None  # the operator's pacing as last read
    first_at: float | None = None  # no unforced report before then (`hold_first_report`)
    # Status fields that go out with the next report, whatever its stage (the memory plan, decided before
    # training, rides on the first training report instead of costing a write of its own).
    carried: dict[str, object] = field(default_factory=dict)
    # Runs a report's writes; None runs them in the caller. Rank 0 hands them to a background thread
    # (finetune_trainer.background): the writes, their timing and their answers, so a 429 or a slow answer still
    # stretches the interval, which a background thread behind `send` alone hid.
    handoff: Callable[[Callable[[], None]], None] | None = None

    def __post_init__(self) -> None:
        self.floor = self.floor or self.interval

    def hold_first_report(self, now: float, jitter: Callable[[], float] = random.random) -> None:
        """Read the pacing now and, on a busy cluster (pacing above the starting interval), hold the first
        unforced report until a random moment within the first interval: trainers that start together (a GitOps
        sync of 1,000 jobs moving from curation to training in the same minute) then spread their first writes
        over the interval, as their later ones are, instead of adding one write each to that minute. On a quiet
        cluster the first report goes out at once, as before."""
        self._refresh_pacing(now)
        if self.busy:
            self.first_at = now + jitter() * self.floor

    @property
    def busy(self) -> bool:
        """The cluster is busy: the operator's pacing asks for reports further apart than the starting interval."""
        return self.paced is not None and self.paced > DEFAULT_INTERVAL_SECONDS

    def is_due(self, now: float, stage: str) -> bool:
        return is_due(now, self.last_sent, self.last_stage, stage, self.interval, self.first_at)

    def carry(self, status: Mapping[str, object]) -> None:
        """Send these status fields with the next report."""
        self.carried.update(status)

    def report(
        self,
        patch: dict[str, object],
        stage: str,
        now: float,
        force: bool = False,
        history: Callable[[], dict[str, object]] | None = None,
        final: bool = False,
    ) -> bool:
        """Send `patch` (and the curve from `history`) if due or forced. `final`: the pod's last report, forced;
        on a busy cluster it sends only the curve, because its figures also travel in the termination message,
        which the operator writes into the status when the pod ends: a wave of 1,000 jobs finishing together
        then costs one write each at its end, not two."""
        curve_only = final and self.busy
        if curve_only and history is None:
            return False
        if not (force or final) and not self.is_due(now, stage):
            return False
        status_patch: dict[str, object] | None = None if curve_only else patch
        if self.carried:
            status = (status_patch or {}).get("status")
            status_patch = {
                **(status_patch or {}),
                "status": {**self.carried, **(status if isinstance(status, dict) else {})},
            }
            self.carried = {}
        stage_changed = stage != self.last_stage
        self.last_sent, self.last_stage = now, stage
        self.reports = 1 if stage_changed else self.reports + 1
        # A stage change sends the finished stage's curve, but a stage's first report has no curve of its own
        # to add: at 1,000 jobs starting together those history writes alone were ~5 writes/s beyond the pacing.
        history_due = force or final or (stage_changed and self.history_sent) or self.reports % HISTORY_EVERY == 0
        history_body: dict[str, object] | None = None
        if history is not None and self.send_history is not None and history_due:
            # serialised here, on the caller's thread: the history keeps changing while a write is out
            history_body = {"data": {reporting.HISTORY_KEY: json.dumps(history(), separators=(",", ":"))}}
            self.history_sent = True

        def write() -> None:
            self._refresh_pacing(now)
            if status_patch is not None:
                self._write(self.send, status_patch)
            if history_body is not None and self.send_history is not None:
                self._write(self.send_history, history_body)

        if self.handoff is None:
            write()
        else:
            self.handoff(write)
        return True

    def _refresh_pacing(self, now: float) -> None:
        if self.read_pacing is None:
            return
        if self.pacing_read_at is not None and now - self.pacing_read_at < PACING_REREAD_SECONDS:
            return
        self.pacing_read_at = now
        try:
            pacing = self.read_pacing()
        except Exception as error:  # no pacing published (yet): keep the current one
            log.debug("report pacing unavailable: %s", error)
            return
        if pacing is not None and pacing > 0:
            self.paced = pacing
            self.floor = min(pacing, MAX_INTERVAL_SECONDS)
            self.interval = max(self.interval, self.floor)

    def _write(self, send: Send, body: dict[str, object]) -> None:
        started = self.clock()
        code: int | None = None
        retry_after: float | None = None
        try:
            send(body)
        except Refused as error:
            code, retry_after = error.code, error.retry_after
            log.warning("status update failed: %s", error)
        except Exception as error:
            code = 0
            log.warning("status update failed: %s", error)
        latency = self.clock() - started
        self.interval = adapt(self.interval, self.floor, latency=latency, code=code, retry_after=retry_after)


def from_environment(name: str, namespace: str, environ: Mapping[str, str] | None = None) -> Reporter:
    env = os.environ if environ is None else environ
    host = env.get("KUBERNETES_SERVICE_HOST")
    if not host:
        return Reporter(send=_log_only)
    port = env.get("KUBERNETES_SERVICE_PORT", "443")
    # IPv6 service hosts need brackets in a URL.
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"https://{authority}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/finetuningjobs/{name}/status"
    config_maps = f"https://{authority}/api/v1/namespaces/{namespace}/configmaps"
    return Reporter(
        send=https_sender(url, SERVICE_ACCOUNT_DIR),
        send_history=https_sender(f"{config_maps}/{reporting.metrics_config_map(name)}", SERVICE_ACCOUNT_DIR),
        # resourceVersion=0: served from the API server's cache, not a quorum read of etcd.
        read_pacing=pacing_reader(f"{config_maps}/{reporting.REPORT_PACING}?resourceVersion=0", SERVICE_ACCOUNT_DIR),
    )


def _call(url: str, credentials: Path, context: ssl.SSLContext, method: str, body: bytes | None) -> bytes:
    token = (credentials / "token").read_text(encoding="utf-8").strip()
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/merge-patch+json"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS, context=context) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", "replace")[:300]
        retry = error.headers.get("Retry-After") if error.headers else None
        seconds = float(retry) if retry and retry.strip().isdigit() else None
        raise Refused(f"{method} {url}: HTTP {error.code}: {text}", error.code, seconds) from error


def https_sender(url: str, credentials: Path) -> Send:
    context = ssl.create_default_context(cafile=str(credentials / "ca.crt"))

    def send(patch: dict[str, object]) -> None:
        _call(url, credentials, context, "PATCH", json.dumps(patch).encode("utf-8"))

    return send


def pacing_reader(url: str, credentials: Path) -> Read:
    context = ssl.create_default_context(cafile=str(credentials / "ca.crt"))

    def read() -> float | None:
        config_map = json.loads(_call(url, credentials, context, "GET", None))
        value = (config_map.get("data") or {}).get(reporting.REPORT_PACING_KEY)
        return float(value) if value else None

    return read


def _log_only(patch: dict[str, object]) -> None:
    log.info("status update (not in a cluster): %s", json.dumps(patch))
