"""Helpers shared by the KWOK-backed registry and fault tests: job bodies, child counts, a phase recorder.

Pods of these jobs run on KWOK GPU nodes and follow the `kwok.finetune.dev/*` annotations that the job puts
on them through `spec.podMetadata` (hack/localcluster/kwok.py): they run for `run-for`, then exit with
`exit-code` and the termination message. Curation and training pods share the annotations, so the one
message carries both the curation result (`dataset`) and the training result (`metrics`).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import yaml
from kubernetes import client, watch
from operator_harness import TERMINAL, OperatorProcess

from support.fixtures import Kubectl

RUN_FOR = "kwok.finetune.dev/run-for"
EXIT_CODE = "kwok.finetune.dev/exit-code"
MESSAGE = "kwok.finetune.dev/termination-message"
JOB_UID = "finetune.dev/job-uid"
COMPONENT = "app.kubernetes.io/component"
GROUP, VERSION = "finetune.dev", "v1alpha1"

CURATED: dict[str, Any] = {
    "outcome": "Succeeded",
    "dataset": {"samples": 40, "trainSamples": 36, "evalSamples": 4, "sha256": "0" * 64},
}
TRAINED: dict[str, Any] = {"outcome": "Succeeded", "metrics": {"trainLoss": 1.5, "evalLoss": 1.7, "perplexity": 5.47}}


def gpu_job(
    name: str,
    *,
    model: str = "support-agent",
    gpus: int = 1,
    run_for: str = "2s",
    exit_code: int = 0,
    message: dict[str, Any] | None = None,
    source: str = "sessions",
    **spec: Any,
) -> dict[str, Any]:
    """A FineTuningJob whose curation and training pods run on KWOK nodes."""
    result = message if message is not None else {**CURATED, **TRAINED}
    annotations = {RUN_FOR: run_for, EXIT_CODE: str(exit_code), MESSAGE: json.dumps(result)}
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FineTuningJob",
        "metadata": {"name": name},
        "spec": {
            "baseModel": {"name": "llama-3.1-8b", "builtin": "tiny-gpt"},
            "dataset": {"source": {"configMap": {"name": source, "key": "sessions.jsonl"}}},
            "resources": {"gpus": gpus, "nodeSelector": {"finetune.dev/node-pool": "gpu"}},
            "output": {"modelName": model},
            "storage": {"size": "1Gi"},
            "podMetadata": {"annotations": annotations},
        },
    }
    body["spec"].update(spec)
    return body


def sessions_config_map(name: str = "sessions") -> dict[str, Any]:
    line = {"id": "s1", "success_rate": 1.0, "instruction": "say hi", "input": "", "output": "hi"}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"sessions.jsonl": json.dumps(line) + "\n"},
    }


def apply(kubectl: Kubectl, namespace: str, *objects: dict[str, Any]) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump_all(objects))


def get_json(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    return json.loads(kubectl(*args, "-o", "json"))  # type: ignore[no-any-return]


def items(kubectl: Kubectl, namespace: str, kind: str, selector: str) -> list[dict[str, Any]]:
    return get_json(kubectl, "-n", namespace, "get", kind, "-l", selector)["items"]  # type: ignore[no-any-return]


def children(kubectl: Kubectl, namespace: str, uid: str) -> dict[str, list[str]]:
    """The names of a job's children by kind: curation and training Jobs, workspace PVCs, ModelVersions."""
    selector = f"{JOB_UID}={uid}"
    jobs = items(kubectl, namespace, "jobs.batch", selector)
    return {
        "curation": [j["metadata"]["name"] for j in jobs if j["metadata"]["labels"].get(COMPONENT) == "curation"],
        "training": [j["metadata"]["name"] for j in jobs if j["metadata"]["labels"].get(COMPONENT) == "training"],
        "pvc": [p["metadata"]["name"] for p in items(kubectl, namespace, "pvc", selector)],
        "modelversion": [m["metadata"]["name"] for m in items(kubectl, namespace, "modelversions", selector)],
    }


def poll(probe: Callable[[], Any], what: str, timeout: float, operator: OperatorProcess | None = None) -> Any:
    """Polls `probe` until it returns a truthy value; a probe that raises counts as not yet (API restarts)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
        except (AssertionError, client.ApiException, OSError) as error:
            value, last_error = None, error
        if value:
            return value
        if operator is not None and not operator.alive():
            raise AssertionError(f"the operator exited while waiting for {what}:\n{operator.tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error})")
        time.sleep(0.3)


def job_status(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return get_json(kubectl, "-n", namespace, "get", "ftj", name).get("status") or {}


def wait_status(
    kubectl: Kubectl,
    namespace: str,
    name: str,
    accept: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float,
    operator: OperatorProcess | None = None,
) -> dict[str, Any]:
    """Waits until the job's status satisfies `accept`; fails at once on an unexpected terminal phase."""

    def probe() -> dict[str, Any] | None:
        status = job_status(kubectl, namespace, name)
        if accept(status):
            return status
        if status.get("phase") in TERMINAL:
            raise RuntimeError(f"{name} ended {status.get('phase')} ({status.get('reason')}): {status.get('message')}")
        return None

    return poll(probe, f"{name}: {what}", timeout, operator)  # type: ignore[no-any-return]


def phase_is(*phases: str) -> Callable[[dict[str, Any]], bool]:
    return lambda status: status.get("phase") in phases


def reason_is(phase: str, reason: str) -> Callable[[dict[str, Any]], bool]:
    return lambda status: status.get("phase") == phase and status.get("reason") == reason


# Forward order of the phases; terminal phases never change again.
_RANK = {"Pending": 0, "Queued": 1, "Running": 2, "Evaluating": 3, "Completed": 4, "Failed": 4, "Cancelled": 4}
_REQUEUES = {("Running", "Queued"), ("Evaluating", "Queued"), ("Evaluating", "Running")}


def backward_steps(phases: list[str], requeue_caused: bool = False) -> list[tuple[str, str]]:
    """Transitions in `phases` that do not go strictly forward (staying in a phase is not a transition).

    A requeue from Running/Evaluating is allowed only where the test caused one (an eviction, a preemption).
    """
    bad = []
    for before, after in itertools.pairwise(phases):
        requeue = requeue_caused and (before, after) in _REQUEUES
        if before in TERMINAL or (_RANK[after] <= _RANK[before] and not requeue):
            bad.append((before, after))
    return bad


class PhaseRecorder:
    """Records every phase each FineTuningJob of a namespace goes through, from a watch (re-listed after errors,
    so it survives an API server restart; a phase shorter than the outage may then be missed, never invented)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.phases: dict[str, list[str]] = {}
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        """Every status each job was seen with, in order (watch events)."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"phases-{namespace}", daemon=True)

    def __enter__(self) -> PhaseRecorder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def of(self, name: str) -> list[str]:
        with self._lock:
            return list(self.phases.get(name, []))

    def seen(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.statuses.get(name, []))

    def _record(self, obj: dict[str, Any]) -> None:
        phase = (obj.get("status") or {}).get("phase")
        if not phase:
            return
        with self._lock:
            self.statuses.setdefault(obj["metadata"]["name"], []).append(obj["status"])
            seen = self.phases.setdefault(obj["metadata"]["name"], [])
            if not seen or seen[-1] != phase:
                seen.append(phase)

    def _run(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        args = (GROUP, VERSION, self.namespace, "finetuningjobs")
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    listing: Any = custom.list_namespaced_custom_object(*args)
                    for obj in listing["items"]:
                        self._record(obj)
                    version = listing["metadata"]["resourceVersion"]
                stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                    custom.list_namespaced_custom_object, *args, resource_version=version, timeout_seconds=5
                )
                for event in stream:
                    if event["type"] == "ERROR":
                        version = None
                        break
                    self._record(event["object"])
                    version = event["object"]["metadata"]["resourceVersion"]
                    if self._stop.is_set():
                        break
            except Exception:
                version = None
                self._stop.wait(0.5)
