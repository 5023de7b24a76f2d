"""Scale benchmark of the operator (issue #9): N live FineTuningJobs on a local cluster of KWOK GPU nodes.

    python bench/scale/run.py [--jobs 1000] [--rate 10] [--run-for S] [--models 10] [--keep-cluster]

Starts a SEPARATE local control plane (its own state dir, never the shared $FTO_CLUSTER_DIR one) with
ceil(N/8)+1 KWOK GPU nodes and API audit logging of every write, runs the real operator
(`python -m finetune_operator`) as a process with its own client identity (user `finetune-operator`, group
system:masters), and creates N jobs at `--rate` per second. Each job's curation and training pods run for
`--run-for` seconds on KWOK (default: N/rate + 30, at least 60, so all N are live at once) and end with a
termination message shaped like the real trainer's
(docs/runtime-contract.md). While a training pod runs, the harness plays the trainer: it gets a token for the
job's `<job>-trainer` ServiceAccount (TokenRequest) and merge-patches the job's status subresource with that
token, at most once per 10 s plus once at the stage change to Evaluating, exactly the trainer's API path.

Reported (printed, and saved as JSON under ~/.cache/finetune-operator/bench/):
- creation -> first child: the FineTuningJob's create vs the workspace PVC's create, from the audit log's
  microsecond stage timestamps (and, for reference, from the objects' 1 s creationTimestamps), reported apart
  for the ramp (the N jobs, created while fewer were live) and for `--probe-jobs` more jobs created one per
  second once all N are live: the latency a user sees on a cluster that already runs N jobs;
- creation -> Running and creation -> Completed, as the harness's watch saw them (ms clock), and creation ->
  workspace PVC Bound, the cluster's share of the time to Running (the host-path provisioner binds on the PV
  controller's resync, so it grows with the number of claims);
- status-update lag: training pod seen Succeeded -> job seen Completed (includes the Job controller's turn);
- the operator's peak RSS and CPU seconds (psutil on its process);
- API writes of the operator per job, counted at the API server (audit log, user finetune-operator), by
  resource and verb; the trainer's progress patches are another user and are counted separately.
Targets (PASS/FAIL per line; the script exits 0 either way): all N (+ probes) complete; p99 creation -> first
child < 2 s for the probe jobs, each created with N jobs live; operator RSS < 300 MB; <= 25 API writes per job.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime
import json
import math
import os
import random
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]

REPOSITORY = Path(__file__).resolve().parents[2]
# Run as a script, only bench/scale/ is on sys.path: add hack/ (the local cluster).
sys.path.insert(0, str(REPOSITORY / "hack"))

from dashboard_probe import DashboardProbe  # noqa: E402  (beside this script)

import localcluster  # noqa: E402
from finetune_operator.api import reporting  # noqa: E402
from finetune_trainer import report  # noqa: E402
from finetune_trainer.curate import progress as curation_progress  # noqa: E402
from finetune_trainer.history import History  # noqa: E402
from localcluster import audit as audit_log  # noqa: E402
from localcluster import kwok, pki, processes  # noqa: E402

NAMESPACE = "bench"
OPERATOR_USER = "finetune-operator"
RESULTS_DIR = Path.home() / ".cache" / "finetune-operator" / "bench"
GROUP_PATH = "/apis/finetune.dev/v1alpha1"
TERMINAL = ("Completed", "Failed", "Cancelled")
# Every write at Metadata level (one ResponseComplete event each), nothing else; node leases are noise.
AUDIT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}]},
        # The operator's status patches with their bodies: which fields each one changed.
        {
            "level": "Request",
            "users": [OPERATOR_USER],
            "verbs": ["patch"],
            "resources": [{"group": "finetune.dev", "resources": ["finetuningjobs/status"]}],
        },
        {"level": "Metadata", "verbs": audit_log.WRITE_VERBS},
        {"level": "None"},
    ],
}
# What the real entrypoints write to their termination log (docs/runtime-contract.md). Curation and training
# pods share the job's podMetadata annotations, so one message carries both results, as in the KWOK tests.
TERMINATION_MESSAGE = {
    "outcome": "Succeeded",
    "dataset": {
        "sourceFiles": 1,
        "sourceRecords": 1200,
        "samples": 1012,
        "trainSamples": 961,
        "evalSamples": 51,
        "sha256": "5" * 64,
        "rejected": {"malformed": 3, "lowSuccess": 150, "duplicate": 30, "tooLong": 5, "empty": 0},
        "redactions": 17,
    },
    "metrics": {
        "trainLoss": 1.91,
        "evalLoss": 2.08,
        "perplexity": 8.0,
        "tokensPerSecond": 5400.0,
        "evalExactMatch": 0.1,
        "evalTokenF1": 0.41,
    },
    "progress": {"step": 120, "totalSteps": 120, "epoch": 3.0},
    "model": {"path": "model", "format": "safetensors", "adapter": True, "merged": False},
}
SESSIONS_PER_JOB = 1200  # what the played curation reports having read (as the message's sourceRecords)
SESSION_BYTES = 2_600_000


# ------------------------------------------------------------------------------------------ cluster


def operator_kubeconfig(info: localcluster.ClusterInfo) -> Path:
    """A client certificate and kubeconfig for user finetune-operator (system:masters, like the admin)."""
    keys = pki.ensure_pki(info.state_dir / "pki")
    cert, key = info.state_dir / "pki" / "operator.crt", info.state_dir / "pki" / "operator.key"
    pki.issue_client_cert(keys, OPERATOR_USER, ["system:masters"], cert, key)
    path = info.state_dir / "operator.kubeconfig"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bench", "cluster": {"server": info.server, "certificate-authority": str(keys.ca_cert)}}],
        "users": [{"name": OPERATOR_USER, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": OPERATOR_USER}}],
        "current-context": "bench",
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    return Path(path)


def prepare(info: localcluster.ClusterInfo) -> None:
    for plural in ("finetuningjobs", "modelversions", "registeredmodels"):
        path = REPOSITORY / "crds" / f"finetune.dev_{plural}.yaml"
        localcluster.kubectl(info, "apply", "--server-side", "--force-conflicts", "-f", str(path))
        localcluster.wait_established(info.kubeconfig, [f"{plural}.finetune.dev"])
    localcluster.kubectl(info, "create", "namespace", NAMESPACE)
    deadline = time.monotonic() + 60
    while "default" not in localcluster.kubectl(info, "-n", NAMESPACE, "get", "sa", "-o", "name"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no default ServiceAccount in {NAMESPACE}")
        time.sleep(0.5)
    line = {"id": "s1", "success_rate": 1.0, "instruction": "say hi", "input": "", "output": "hi"}
    sessions = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "sessions", "namespace": NAMESPACE},
        "data": {"sessions.jsonl": json.dumps(line) + "\n"},
    }
    localcluster.kubectl(info, "apply", "-f", "-", stdin=json.dumps(sessions))


def job_manifest(index: int, models: int, run_for: int) -> dict[str, Any]:
    annotations = {
        kwok.RUN_FOR: f"{run_for}s",
        kwok.EXIT_CODE: "0",
        kwok.TERMINATION_MESSAGE: json.dumps(TERMINATION_MESSAGE, separators=(",", ":")),
    }
    return {
        "apiVersion": "finetune.dev/v1alpha1",
        "kind": "FineTuningJob",
        "metadata": {"name": f"job-{index:05d}", "namespace": NAMESPACE},
        "spec": {
            "baseModel": {"name": "llama-3.1-8b", "builtin": "tiny-gpt"},
            "dataset": {"source": {"configMap": {"name": "sessions", "key": "sessions.jsonl"}}},
            "resources": {"gpus": 1, "nodeSelector": {kwok.POOL_LABEL: "gpu"}},
            "output": {"modelName": f"model-{index % models}"},
            "storage": {"size": "1Gi"},
            "podMetadata": {"annotations": annotations},
        },
    }


class Operator:
    """The operator process, sampled for RSS while it runs."""

    def __init__(self, kubeconfig: Path, log: Path) -> None:
        self.health_port = processes.free_port()
        self.process = localcluster.start_operator(kubeconfig, log, self.health_port)
        self.ps = psutil.Process(self.process.pid)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak_rss = max(self.peak_rss, self.ps.memory_info().rss)
            self._stop.wait(0.25)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the operator exited at startup")
            url = f"http://127.0.0.1:{self.health_port}/healthz"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError("the operator's /healthz did not answer")

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self._stop.set()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ------------------------------------------------------------------------------------------ harness


@dataclass
class Track:
    """What the harness saw of one job, on its monotonic clock."""

    name: str
    created: float = 0.0  # the create call returned
    creation_timestamp: str = ""
    pvc_seen: float | None = None
    pvc_creation_timestamp: str = ""
    pvc_bound: float | None = None
    phases: dict[str, float] = field(default_factory=dict)  # first time each phase was seen
    curation_running: float | None = None
    curation_succeeded: float | None = None
    training_running: float | None = None
    training_succeeded: float | None = None
    # The objects' own timestamps (1 s resolution), immune to how late a watch delivers them.
    start_time: str = ""  # status.startTime: when the operator saw the job Running
    completion_time: str = ""  # status.completionTime
    training_finished_at: str = ""  # the training container's terminated.finishedAt
    progress_patches: int = 0
    progress_errors: int = 0
    reporter: asyncio.Task[None] | None = None
    curation_reporter: asyncio.Task[None] | None = None

    @property
    def terminal(self) -> str | None:
        return next((p for p in TERMINAL if p in self.phases), None)


class Harness:
    def __init__(self, info: localcluster.ClusterInfo, args: argparse.Namespace) -> None:
        self.info = info
        self.args = args
        self.tracks: dict[str, Track] = {}
        self.live = 0
        self.peak_live = 0
        self.live_at_probes: list[int] = []  # jobs live when each probe job was created
        self.all_done = asyncio.Event()
        self.pacing_reads = 0
        self.events: collections.Counter[str] = collections.Counter()  # watch events per resource
        keys = pki.ensure_pki(info.state_dir / "pki")
        self.admin_tls = ssl.create_default_context(cafile=str(keys.ca_cert))
        self.admin_tls.load_cert_chain(str(keys.admin_cert), str(keys.admin_key))
        # The trainer authenticates with its ServiceAccount token only.
        self.trainer_tls = ssl.create_default_context(cafile=str(keys.ca_cert))

    # ---- watches

    async def watch(self, session: aiohttp.ClientSession, path: str, handle: Any) -> None:
        """List then watch `path`, resuming from the last resourceVersion (relisting after 410 Gone) forever."""
        url = f"{self.info.server}{path}"
        version: str | None = None
        while True:
            try:
                if version is None:
                    async with session.get(url) as response:
                        listing = await response.json()
                        if response.status != 200:  # e.g. 429 while a new CRD's watch cache initialises
                            raise RuntimeError(f"{response.status}: {listing.get('message')}")
                    version = listing["metadata"]["resourceVersion"]
                    for item in listing.get("items") or []:
                        handle("ADDED", item, time.monotonic())
                params = {"watch": "1", "resourceVersion": version, "allowWatchBookmarks": "true"}
                timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
                async with session.get(url, params=params, timeout=timeout) as response:
                    if response.status != 200:
                        raise RuntimeError(f"{response.status}: {(await response.text())[:200]}")
                    buffer = b""
                    async for chunk in response.content.iter_any():
                        buffer += chunk
                        *lines, buffer = buffer.split(b"\n")
                        for line in filter(bytes.strip, lines):
                            event = json.loads(line)
                            if event["type"] == "ERROR":
                                raise RuntimeError(f"watch error: {event['object'].get('message')}")
                            version = event["object"]["metadata"]["resourceVersion"]
                            if event["type"] != "BOOKMARK":
                                self.events[path.rsplit("/", 1)[-1]] += 1
                                handle(event["type"], event["object"], time.monotonic())
            except asyncio.CancelledError:
                raise
            except Exception as error:
                print(f"watch {path}: {error!r}; relisting", file=sys.stderr, flush=True)
                version = None
                await asyncio.sleep(0.5)

    def on_job(self, kind: str, obj: dict[str, Any], now: float) -> None:
        track = self.tracks.get(obj["metadata"]["name"])
        phase = (obj.get("status") or {}).get("phase")
        if track is None or not phase or phase in track.phases:
            return
        was_terminal = track.terminal is not None
        track.phases[phase] = now
        status = obj.get("status") or {}
        track.start_time = track.start_time or status.get("startTime") or ""
        track.completion_time = track.completion_time or status.get("completionTime") or ""
        if not was_terminal and track.terminal is not None:
            self.live -= 1
            if all(t.terminal for t in self.tracks.values()) and len(self.tracks) == total_jobs(self.args):
                self.all_done.set()

    def on_pvc(self, kind: str, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"].removesuffix("-workspace")
        track = self.tracks.get(name)
        if track is None:
            return
        if track.pvc_seen is None:
            track.pvc_seen = now
            track.pvc_creation_timestamp = obj["metadata"]["creationTimestamp"]
        if track.pvc_bound is None and (obj.get("status") or {}).get("phase") == "Bound":
            track.pvc_bound = now

    def on_pod(self, kind: str, obj: dict[str, Any], now: float) -> None:
        labels = obj["metadata"].get("labels") or {}
        component = labels.get("app.kubernetes.io/component")
        track = self.tracks.get(labels.get("finetune.dev/job", ""))
        phase = (obj.get("status") or {}).get("phase")
        if track is None:
            return
        if component == "curation":
            if phase == "Running" and track.curation_running is None:
                track.curation_running = now
                track.curation_reporter = asyncio.create_task(self.report_progress(track, curating=True))
            elif phase in ("Succeeded", "Failed") and track.curation_succeeded is None:
                track.curation_succeeded = now
            return
        if component != "training":
            return
        if phase == "Running" and track.training_running is None:
            track.training_running = now
            track.reporter = asyncio.create_task(self.report_progress(track))
        elif phase == "Succeeded" and track.training_succeeded is None:
            track.training_succeeded = now
            for container in (obj.get("status") or {}).get("containerStatuses") or []:
                finished = ((container.get("state") or {}).get("terminated") or {}).get("finishedAt")
                track.training_finished_at = finished or track.training_finished_at

    # ---- the trainer's progress reports

    async def report_progress(self, track: Track, curating: bool = False) -> None:
        """As the trainer (finetune_trainer.report, same functions): a status merge-patch per report, the
        history ConfigMap with every second one and at the stage change to Evaluating; the interval never below
        the namespace's pacing (re-read once a minute, as the trainer's Role allows) and adapted to 429s, 5xx
        and slow answers by `report.adapt`. `curating`: as the curation pod (finetune_trainer.curate.progress),
        same identity and pacing, Curating patches without history, a last one with the final figures."""
        assert self.admin is not None and self.trainer is not None
        run_for = self.args.run_for
        base = f"{self.info.server}/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{track.name}-trainer/token"
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        }
        try:
            async with self.admin.post(base, json=request) as response:
                token = (await response.json())["status"]["token"]
        except (aiohttp.ClientError, KeyError, ValueError):
            track.progress_errors += 1
            return
        url = f"{self.info.server}{GROUP_PATH}/namespaces/{NAMESPACE}/finetuningjobs/{track.name}/status"
        config_maps = f"{self.info.server}/api/v1/namespaces/{NAMESPACE}/configmaps"
        history_url = f"{config_maps}/{reporting.metrics_config_map(track.name)}"
        pacing_url = f"{config_maps}/{reporting.REPORT_PACING}?resourceVersion=0"
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/merge-patch+json"}
        total_steps = 120
        start = time.monotonic()
        evaluate_at = start + max(run_for - 3, 0)
        interval = floor = self.args.progress_interval
        pacing_read_at: float | None = None
        reports = 0
        history = History()
        history.hyperparameters = {"learningRate": 0.0002, "epochs": 3, "batchSize": 8}

        async def write(target: str, body: dict[str, Any]) -> None:
            nonlocal interval
            sent = time.monotonic()
            code: int | None = None
            retry_after: float | None = None
            try:
                async with self.trainer.patch(target, data=json.dumps(body), headers=headers) as response:  # type: ignore[union-attr]
                    await response.read()
                    if response.status >= 300:
                        track.progress_errors += 1
                        code = response.status
                        retry = response.headers.get("Retry-After", "")
                        retry_after = float(retry) if retry.isdigit() else None
                    else:
                        track.progress_patches += 1
            except aiohttp.ClientError:
                track.progress_errors += 1
                code = 0
            latency = time.monotonic() - sent
            interval = report.adapt(interval, floor, latency=latency, code=code, retry_after=retry_after)

        async def refresh_pacing(now: float) -> None:
            nonlocal floor, interval, pacing_read_at
            if pacing_read_at is not None and now - pacing_read_at < report.PACING_REREAD_SECONDS:
                return
            pacing_read_at = now
            with contextlib.suppress(aiohttp.ClientError, ValueError, KeyError):
                async with self.trainer.get(pacing_url, headers=headers) as response:  # type: ignore[union-attr]
                    self.pacing_reads += 1
                    if response.status == 200:
                        value = ((await response.json()).get("data") or {}).get(reporting.REPORT_PACING_KEY)
                        if value:
                            floor = float(value)
                            interval = max(interval, floor)

        # as Reporter.hold_first_report: the pacing read first; on a busy cluster the first report at a random
        # moment within the paced interval
        await refresh_pacing(start)
        moment, stage = start, "Curating" if curating else "Training"
        if floor > report.DEFAULT_INTERVAL_SECONDS:
            moment = min(start + random.random() * floor, evaluate_at)
            if not curating and moment >= evaluate_at:
                stage = "Evaluating"
        while True:
            await asyncio.sleep(max(0.0, moment - time.monotonic()))
            over = curating and (track.curation_succeeded is not None or track.training_running is not None)
            if over or track.training_succeeded is not None or track.terminal is not None:
                return
            now = time.monotonic()
            await refresh_pacing(now)
            fraction = min(1.0, (now - start) / max(run_for, 1))
            if curating:
                final = moment >= evaluate_at
                figures = curation_progress.status_patch(
                    records=int(SESSIONS_PER_JOB * (1.0 if final else fraction)),
                    bytes_read=int(SESSION_BYTES * (1.0 if final else fraction)),
                    total_bytes=SESSION_BYTES,
                    elapsed=now - start,
                    now=datetime.datetime.now(datetime.UTC),
                )
                if final and floor > report.DEFAULT_INTERVAL_SECONDS:
                    return  # as Reporter.report(final=True) on a busy cluster: the operator's status replaces it
                await write(url, figures)
                if final:
                    return
                moment = min(now + interval, evaluate_at)
                continue
            step = max(1, int(total_steps * fraction))
            loss = round(3.0 - fraction, 3)
            history.add_many(step, {"trainLoss": loss, "learningRate": 0.0002, "tokensPerSecond": 5100.0})
            status = {
                "progress": {
                    "stage": stage,
                    "step": step,
                    "totalSteps": total_steps,
                    "epoch": round(3.0 * fraction, 2),
                    "percent": int(100 * fraction),
                    "updatedAt": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "estimatedSecondsRemaining": max(0, int(evaluate_at - now)),
                },
                "metrics": {"trainLoss": loss, "learningRate": 0.0002, "tokensPerSecond": 5100.0},
            }
            await write(url, {"status": status})
            reports += 1
            # as report.Reporter: every second report of the stage; at the end (the trainer's Evaluating stage
            # change, a status patch, then its final report, the curve: here one moment) the status and the curve
            if stage == "Evaluating" or reports % report.HISTORY_EVERY == 0:
                document = json.dumps(history.document(status["progress"]["updatedAt"]), separators=(",", ":"))
                await write(history_url, {"data": {reporting.HISTORY_KEY: document}})
            if stage == "Evaluating":
                return
            moment = now + interval
            if moment >= evaluate_at:
                moment, stage = evaluate_at, "Evaluating"

    # ---- the run

    admin: aiohttp.ClientSession | None = None
    trainer: aiohttp.ClientSession | None = None

    async def run(self) -> float:
        args = self.args
        limits = aiohttp.TCPConnector(ssl=self.admin_tls, limit=50)
        async with (
            aiohttp.ClientSession(connector=limits) as admin,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.trainer_tls, limit=50)) as trainer,
        ):
            self.admin, self.trainer = admin, trainer
            ns = f"/namespaces/{NAMESPACE}"
            watches = [
                asyncio.create_task(self.watch(admin, f"{GROUP_PATH}{ns}/finetuningjobs", self.on_job)),
                asyncio.create_task(self.watch(admin, f"/api/v1{ns}/persistentvolumeclaims", self.on_pvc)),
                asyncio.create_task(self.watch(admin, f"/api/v1{ns}/pods", self.on_pod)),
            ]
            await asyncio.sleep(1.0)  # the watches are open before the first job exists
            started = time.monotonic()
            url = f"{self.info.server}{GROUP_PATH}{ns}/finetuningjobs"

            async def create(index: int) -> None:
                manifest = job_manifest(index, args.models, args.run_for)
                track = Track(manifest["metadata"]["name"])
                self.tracks[track.name] = track
                self.live += 1
                self.peak_live = max(self.peak_live, self.live)
                async with admin.post(url, json=manifest) as response:
                    body = await response.json()
                    if response.status != 201:
                        raise RuntimeError(f"creating {track.name}: {response.status} {body.get('message')}")
                track.created = time.monotonic()
                track.creation_timestamp = body["metadata"]["creationTimestamp"]

            # On a schedule, not one after the other: a slow create must not lower the rate.
            creations = []
            for index in range(args.jobs):
                await asyncio.sleep(max(0.0, started + index / args.rate - time.monotonic()))
                creations.append(asyncio.create_task(create(index)))
            await asyncio.gather(*creations)
            print(f"created {args.jobs} jobs in {time.monotonic() - started:.1f} s", flush=True)
            # With all N live (their pods run for --run-for s, which covers the probes): first-child latency as a
            # user sees it on a busy cluster, apart from the ramp's.
            for index in range(args.jobs, total_jobs(args)):
                await asyncio.sleep(1.0)
                self.live_at_probes.append(self.live)
                await create(index)
            print(f"created {args.probe_jobs} probe jobs with {min(self.live_at_probes, default=0)}+ live", flush=True)
            deadline = started + args.timeout
            while not self.all_done.is_set() and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.all_done.wait(), timeout=15)
                done = sum(1 for t in self.tracks.values() if t.terminal)
                print(
                    f"  {time.monotonic() - started:6.0f} s: {done}/{total_jobs(args)} finished, {self.live} live;"
                    f" watch events {dict(self.events)}",
                    flush=True,
                )
            elapsed = time.monotonic() - started
            reporters = [task for t in self.tracks.values() for task in (t.reporter, t.curation_reporter) if task]
            for task in [*watches, *reporters]:
                task.cancel()
            await asyncio.gather(*watches, return_exceptions=True)
            return elapsed


# ------------------------------------------------------------------------------------------ analysis


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": percentile(values, 0.5),
        "p99": percentile(values, 0.99),
        "max": max(values, default=None),
    }


def parse_k8s_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def audit_figures(events: list[dict[str, Any]], jobs: int) -> dict[str, Any]:
    by_user: collections.Counter[str] = collections.Counter()
    operator: collections.Counter[str] = collections.Counter()
    operator_failed: collections.Counter[str] = collections.Counter()
    trainer = 0
    trainer_history = 0
    trainer_moments: list[datetime.datetime] = []
    status_fields: collections.Counter[str] = collections.Counter()
    job_created: dict[str, datetime.datetime] = {}
    pvc_created: dict[str, datetime.datetime] = {}
    for event in events:
        user = event.get("user", {}).get("username", "?")
        ref = event.get("objectRef") or {}
        resource, code = audit_log.resource(event), audit_log.code(event)
        by_user[user] += 1
        if user == OPERATOR_USER:
            key = f"{event['verb']} {resource}"
            operator[key] += 1
            if code >= 300:
                operator_failed[f"{key} -> {code}"] += 1
            if resource == "finetuningjobs/status" and isinstance(event.get("requestObject"), dict):
                status_fields[",".join(sorted(event["requestObject"].get("status") or {}))] += 1
        elif user.startswith(f"system:serviceaccount:{NAMESPACE}:") and event["verb"] == "patch":
            if resource == "finetuningjobs/status":
                trainer += 1
                trainer_moments.append(parse_k8s_time(event["stageTimestamp"]))
            elif resource == "configmaps":
                trainer_history += 1
                trainer_moments.append(parse_k8s_time(event["stageTimestamp"]))
        if event["verb"] == "create" and code == 201 and ref.get("namespace") == NAMESPACE and ref.get("name"):
            moment = parse_k8s_time(event["stageTimestamp"])
            if resource == "finetuningjobs":
                job_created[ref["name"]] = moment
            elif resource == "persistentvolumeclaims" and user == OPERATOR_USER:
                pvc_created[ref["name"].removesuffix("-workspace")] = moment
    first_child = {n: (pvc_created[n] - job_created[n]).total_seconds() for n in job_created if n in pvc_created}
    total = sum(operator.values())
    return {
        "operator_writes_total": total,
        "operator_writes_per_job": total / jobs if jobs else None,
        "operator_writes_by_verb_resource": dict(operator.most_common()),
        "operator_writes_refused": dict(operator_failed.most_common()),
        "operator_status_patches_by_fields": dict(status_fields.most_common(15)),
        "trainer_progress_patches": trainer,
        "trainer_history_patches": trainer_history,
        "trainer_writes_per_second_peak_60s": peak_rate(trainer_moments, 60.0),
        "trainer_writes_per_minute": per_minute(trainer_moments),
        "writes_by_user": dict(by_user.most_common(12)),
        "first_child_seconds_by_job": first_child,
    }


def total_jobs(args: argparse.Namespace) -> int:
    return int(args.jobs + args.probe_jobs)


def peak_rate(moments: list[datetime.datetime], window: float) -> float:
    """The most writes per second in any `window`-second span (a sliding window over the sorted moments)."""
    ordered = sorted(moments)
    best, first = 0, 0
    for last, moment in enumerate(ordered):
        while (moment - ordered[first]).total_seconds() > window:
            first += 1
        best = max(best, last - first + 1)
    return best / window


def per_minute(moments: list[datetime.datetime]) -> list[int]:
    """Writes in each minute from the first: where in the run the peak was (the ramp, a stage change, the end)."""
    if not moments:
        return []
    first = min(moments)
    counts = collections.Counter(int((moment - first).total_seconds() // 60) for moment in moments)
    return [counts[minute] for minute in range(max(counts) + 1)]


def span(start: str, end: str) -> float:
    return (parse_k8s_time(end) - parse_k8s_time(start)).total_seconds()


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="jobs created per second")
    parser.add_argument(
        "--run-for",
        type=int,
        default=None,
        help="seconds each curation and training pod runs (default: long enough for all N jobs to be live at once)",
    )
    parser.add_argument(
        "--probe-jobs", type=int, default=20, help="jobs created one per second after the N, with N live"
    )
    parser.add_argument("--models", type=int, default=10, help="distinct output.modelName values")
    parser.add_argument("--progress-interval", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--state-dir", type=Path, default=None, help="cluster state (default: a new temp dir)")
    parser.add_argument("--keep-cluster", action="store_true", help="leave the bench cluster running")
    parser.add_argument("--dashboard", action="store_true", help="also run the dashboard and time its jobs page")
    args = parser.parse_args()
    if args.run_for is None:
        args.run_for = max(60, math.ceil(args.jobs / args.rate) + args.probe_jobs + 30)

    # Started in the background, a process ignores SIGINT: make SIGTERM unwind (stop the operator, the cluster).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="fto-scale-"))
    if state.resolve() == localcluster.state_dir_from_env().resolve() and "FTO_CLUSTER_DIR" not in os.environ:
        raise SystemExit("refusing to use the shared cluster's state dir")
    gpu_nodes = math.ceil(total_jobs(args) / kwok.GPUS_PER_NODE) + 1
    print(f"cluster in {state} with {gpu_nodes} KWOK GPU nodes ...", flush=True)
    t0 = time.monotonic()
    info = localcluster.up(state, with_node_agent=False, gpu_nodes=gpu_nodes, audit_policy=AUDIT_POLICY)
    print(f"cluster up in {time.monotonic() - t0:.0f} s", flush=True)
    operator: Operator | None = None
    probe: DashboardProbe | None = None
    dashboard: dict[str, Any] | None = None
    try:
        prepare(info)
        operator = Operator(operator_kubeconfig(info), info.state_dir / "logs" / "operator.log")
        operator.wait_ready()
        if args.dashboard:
            log = info.state_dir / "logs" / "dashboard.log"
            probe = DashboardProbe(info.kubeconfig, NAMESPACE, processes.free_port(), log)
        cpu_before = operator.cpu_seconds()
        harness = Harness(info, args)
        elapsed = asyncio.run(harness.run())
        cpu = operator.cpu_seconds() - cpu_before
        cpu_total = operator.cpu_seconds()
        alive = operator.process.poll() is None
        dashboard = probe.stop() if probe is not None else None
        operator.stop()
        time.sleep(1.0)
        audit = audit_figures(list(audit_log.events(info.state_dir)), total_jobs(args))
    finally:
        if operator is not None:
            operator.stop()
        if not args.keep_cluster:
            localcluster.down(state, purge=args.state_dir is None)

    tracks = list(harness.tracks.values())
    probes = {
        job_manifest(index, args.models, args.run_for)["metadata"]["name"]
        for index in range(args.jobs, total_jobs(args))
    }
    completed = [t for t in tracks if t.terminal == "Completed"]
    failed = collections.Counter(t.terminal or "unfinished" for t in tracks if t.terminal != "Completed")
    timestamp_child = [
        (parse_k8s_time(t.pvc_creation_timestamp) - parse_k8s_time(t.creation_timestamp)).total_seconds()
        for t in tracks
        if t.pvc_creation_timestamp
    ]
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "gpu_nodes": gpu_nodes,
        "wall_seconds": elapsed,
        "jobs_completed": len(completed),
        "jobs_not_completed": dict(failed),
        "peak_live_jobs": harness.peak_live,
        "creation_to_first_child_audit_ramp": summary(
            [s for name, s in audit["first_child_seconds_by_job"].items() if name not in probes]
        ),
        "creation_to_first_child_audit_n_live": summary(
            [s for name, s in audit["first_child_seconds_by_job"].items() if name in probes]
        ),
        "live_at_probe_creation_min": min(harness.live_at_probes, default=0),
        "creation_to_first_child_timestamps_1s": summary(timestamp_child),
        "creation_to_first_child_watch": summary([t.pvc_seen - t.created for t in tracks if t.pvc_seen and t.created]),
        # The cluster's part: the host-path provisioner binds a claim on the PV controller's 15 s resync.
        "creation_to_pvc_bound": summary([t.pvc_bound - t.created for t in tracks if t.pvc_bound and t.created]),
        "creation_to_running": summary(
            [t.phases["Running"] - t.created for t in tracks if "Running" in t.phases and t.created]
        ),
        "creation_to_completed": summary([t.phases["Completed"] - t.created for t in completed if t.created]),
        "creation_to_running_timestamps_1s": summary(
            [span(t.creation_timestamp, t.start_time) for t in tracks if t.start_time and t.creation_timestamp]
        ),
        "creation_to_completed_timestamps_1s": summary(
            [span(t.creation_timestamp, t.completion_time) for t in completed if t.completion_time]
        ),
        "pod_end_to_phase_change_timestamps_1s": summary(
            [
                span(t.training_finished_at, t.completion_time)
                for t in completed
                if t.completion_time and t.training_finished_at
            ]
        ),
        "pod_end_to_phase_change": summary(
            [t.phases["Completed"] - t.training_succeeded for t in completed if t.training_succeeded is not None]
        ),
        "operator_alive_at_end": alive,
        "operator_peak_rss_mb": operator.peak_rss / 2**20 if operator else None,
        "operator_cpu_seconds_during_run": cpu,
        "operator_cpu_seconds_total": cpu_total,
        "trainer_progress_patches_sent": sum(t.progress_patches for t in tracks),
        "trainer_progress_patch_errors": sum(t.progress_errors for t in tracks),
        "audit": audit,
        "dashboard": dashboard,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"scale-{datetime.datetime.now(datetime.UTC):%Y%m%dT%H%M%SZ}-n{args.jobs}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")

    n, total = args.jobs, total_jobs(args)
    first = results["creation_to_first_child_audit_n_live"]
    rss = results["operator_peak_rss_mb"] or 0.0
    per_job = audit["operator_writes_per_job"] or 0.0

    def line(name: str, figures: dict[str, Any]) -> str:
        return f"{name:<44} p50 {seconds(figures['p50'])}  p99 {seconds(figures['p99'])}  max {seconds(figures['max'])}"

    print(
        f"\n== scale benchmark: {n} jobs + {args.probe_jobs} probes, {args.rate}/s, pods run {args.run_for} s,"
        f" {gpu_nodes} GPU nodes =="
    )
    print(f"wall {elapsed:.0f} s; peak live jobs {harness.peak_live}; not completed: {dict(failed) or 'none'}")
    print(line("creation -> first child, ramp (audit, us)", results["creation_to_first_child_audit_ramp"]))
    print(line(f"creation -> first child, {n} live (audit, us)", first))
    print(line("creation -> first child (creationTimestamp, 1 s)", results["creation_to_first_child_timestamps_1s"]))
    print(line("creation -> first child (watch)", results["creation_to_first_child_watch"]))
    print(line("creation -> workspace PVC Bound (watch)", results["creation_to_pvc_bound"]))
    print(line("creation -> Running (watch)", results["creation_to_running"]))
    print(line("creation -> Completed (watch)", results["creation_to_completed"]))
    print(line("training pod Succeeded -> job Completed (watch)", results["pod_end_to_phase_change"]))
    print(line("creation -> Running (startTime, 1 s)", results["creation_to_running_timestamps_1s"]))
    print(line("creation -> Completed (completionTime, 1 s)", results["creation_to_completed_timestamps_1s"]))
    print(line("pod finishedAt -> completionTime (1 s)", results["pod_end_to_phase_change_timestamps_1s"]))
    print(f"operator: peak RSS {rss:.0f} MB, CPU {cpu:.0f} s ({cpu / total * 1000:.0f} ms per job), alive {alive}")
    print(f"operator API writes: {audit['operator_writes_total']} ({per_job:.1f} per job), by verb and resource:")
    for key, count in audit["operator_writes_by_verb_resource"].items():
        print(f"    {key:<40} {count:>7} ({count / total:.2f}/job)")
    for key, count in audit["operator_writes_refused"].items():
        print(f"    refused: {key:<31} {count:>7}")
    print("operator status patches by the fields they changed:")
    for key, count in audit["operator_status_patches_by_fields"].items():
        print(f"    {count / total:5.2f}/job  {key}")
    print(
        f"trainer writes (audit, SA users): {audit['trainer_progress_patches']} status patches,"
        f" {audit['trainer_history_patches']} history patches (harness sent {results['trainer_progress_patches_sent']},"
        f" errors {results['trainer_progress_patch_errors']}; pacing reads {harness.pacing_reads});"
        f" peak {audit['trainer_writes_per_second_peak_60s']:.1f} writes/s over 60 s"
    )
    print(f"trainer writes per minute: {audit['trainer_writes_per_minute']}")
    print(f"writes by user: {audit['writes_by_user']}")
    if dashboard is not None:
        print(
            f"dashboard: {dashboard['page_views']} jobs-page views of up to {dashboard['max_rows']} rows;"
            f" server time p50 {dashboard['server_ms']['p50']} ms p95 {dashboard['server_ms']['p95']} ms,"
            f" wall p95 {dashboard['wall_ms']['p95']} ms; peak RSS {dashboard['peak_rss_mb']:.0f} MB"
        )
    print("targets:")
    print(f"  [{verdict(len(completed) == total)}] all {total} jobs Completed ({len(completed)})")
    p99, live = first["p99"], results["live_at_probe_creation_min"]
    ok = p99 is not None and p99 < 2.0 and live >= n
    print(
        f"  [{verdict(ok)}] p99 creation -> first child < 2 s for {first['n']} jobs created with {n} live"
        f" (p99 {seconds(p99)}, fewest live at a probe's creation {live})"
    )
    print(f"  [{verdict(rss < 300)}] operator RSS < 300 MB ({rss:.0f} MB)")
    print(f"  [{verdict(per_job <= 25)}] <= 25 operator API writes per job ({per_job:.1f})")
    peak = audit["trainer_writes_per_second_peak_60s"]
    print(f"  [{verdict(peak <= 20)}] <= 20 progress+history writes/s in total ({peak:.1f}/s, peak 60 s window)")
    if dashboard is not None:
        p95 = dashboard["server_ms"]["p95"]
        print(f"  [{verdict(p95 is not None and p95 < 300)}] dashboard jobs page server time p95 < 300 ms ({p95} ms)")
        print(
            f"  [{verdict(dashboard['peak_rss_mb'] < 300)}] dashboard RSS < 300 MB ({dashboard['peak_rss_mb']:.0f} MB)"
        )
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
