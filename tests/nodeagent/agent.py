"""The agent's main loop: list+watch the pods bound to its node, one PodWorker per pod."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from . import node
from .dns import Records
from .logserver import LogServer
from .objects import Objects
from .worker import Context, PodWorker, pod_dir

log = logging.getLogger(__name__)

_WATCH_SECONDS = 60


class Agent:
    def __init__(
        self, api: client.ApiClient, node_name: str, state_dir: Path, provisioner_dir: Path, log_server: LogServer
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.log_server = log_server
        self.node_name = node_name
        self.stopping = threading.Event()
        self._workers: dict[str, PodWorker] = {}
        self._lock = threading.Lock()
        port = int(api.configuration.host.rsplit(":", 1)[1])
        records = Records(self.core, state_dir)
        self.ctx = Context(self.core, Objects(self.core, provisioner_dir), state_dir, port, self._forget, records)

    def _forget(self, uid: str) -> None:
        with self._lock:
            self._workers.pop(uid, None)

    def run(self, registered: Path) -> None:
        """Serves until shutdown; touches `registered` once the Node is (re)registered."""
        self.log_server.start()
        node.register(self.core, self.node_name, self.log_server.port)
        registered.touch()
        threading.Thread(
            target=node.heartbeat,
            args=(self.core, self.node_name, self.stopping),
            name="heartbeat",
            daemon=True,
        ).start()
        selector = f"spec.nodeName={self.node_name}"
        while not self.stopping.is_set():
            try:
                listed: Any = self.core.list_pod_for_all_namespaces(field_selector=selector)
                for pod in listed.items:
                    self._handle(pod, adopting=True)
                version = listed.metadata.resource_version
                while not self.stopping.is_set():
                    # kubernetes.watch is untyped; the events carry V1Pod objects.
                    stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                        self.core.list_pod_for_all_namespaces,
                        field_selector=selector,
                        resource_version=version,
                        timeout_seconds=_WATCH_SECONDS,
                    )
                    for event in stream:
                        pod = event["object"]
                        version = pod.metadata.resource_version
                        if event["type"] == "DELETED":
                            self._removed(pod)
                        else:
                            self._handle(pod, adopting=False)
            except ApiException as e:
                # 410 Gone: our resourceVersion is too old, list again.
                if e.status != 410:
                    log.exception("watching pods failed; relisting")
                    self.stopping.wait(1.0)
            except (urllib3.exceptions.HTTPError, OSError) as e:
                # The API server went away (restart, fault test): list again once it is back.
                log.warning("lost the pod watch (%s); relisting", e)
                self.stopping.wait(1.0)
            except Exception:
                log.exception("watching pods failed; relisting")
                self.stopping.wait(1.0)

    def _handle(self, pod: Any, adopting: bool) -> None:
        uid = pod.metadata.uid
        phase = pod.status.phase if pod.status else None
        deleting = pod.metadata.deletion_timestamp is not None
        with self._lock:
            worker = self._workers.get(uid)
            if worker is None and not deleting and phase not in ("Succeeded", "Failed"):
                if adopting and phase == "Running":
                    # Started by an earlier agent whose processes are gone: report it lost.
                    self._mark_lost(pod)
                    return
                worker = PodWorker(pod, self.ctx)
                self._workers[uid] = worker
                worker.start()
                return
        if not deleting:
            return
        if worker is not None:
            worker.request_stop(pod.metadata.deletion_grace_period_seconds)
        else:
            self._delete_now(pod)

    def _removed(self, pod: Any) -> None:
        with self._lock:
            worker = self._workers.get(pod.metadata.uid)
        if worker is not None:
            worker.pod_gone()
        else:
            shutil.rmtree(pod_dir(self.ctx.state_dir, pod), ignore_errors=True)

    def _mark_lost(self, pod: Any) -> None:
        status = {
            "phase": "Failed",
            "reason": "NodeAgentRestarted",
            "message": "the node agent restarted while the pod ran",
        }
        self.core.patch_namespaced_pod_status(
            pod.metadata.name,
            pod.metadata.namespace,
            {"status": status},
            _content_type="application/strategic-merge-patch+json",
        )

    def _delete_now(self, pod: Any) -> None:
        options = client.V1DeleteOptions(
            grace_period_seconds=0, preconditions=client.V1Preconditions(uid=pod.metadata.uid)
        )
        try:
            self.core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace, body=options)
        except ApiException as e:
            if e.status not in (404, 409):
                raise

    def shutdown(self) -> None:
        """Stops every pod's processes (grace 3 s), so `cluster.py down` leaves nothing running.

        The pods stay in the API (a stopping kubelet does not delete them); they end Failed.
        """
        self.stopping.set()
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.request_stop(3, remove=False)
        for worker in workers:
            worker.join(timeout=6)
