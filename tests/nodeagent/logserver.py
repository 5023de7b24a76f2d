"""The kubelet's container-log endpoint, so `kubectl logs [-f] [--previous] [--tail N]` works on agent pods.

    GET /containerLogs/<namespace>/<pod>/<container>?follow=&previous=&timestamps=&tailLines=&sinceSeconds=
        &sinceTime=&limitBytes=

Served over TLS on the port the Node advertises (status.daemonEndpoints.kubeletEndpoint); only clients with a
certificate of the cluster's CA get in (the API server's --kubelet-client-certificate), as a kubelet started
with --client-ca-file. The API server has already checked the caller's `pods/log` permission and that the
container is one of the pod's.
"""

from __future__ import annotations

import datetime
import logging
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import containerlog

log = logging.getLogger(__name__)


def container_folder(logs_dir: Path, namespace: str, pod: str, uid: str, container: str) -> Path:
    return logs_dir / f"{namespace}_{pod}_{uid}" / container


def _query(params: dict[str, list[str]]) -> containerlog.Query:
    def flag(name: str) -> bool:
        return params.get(name, ["false"])[-1] == "true"

    def number(name: str) -> int | None:
        return int(params[name][-1]) if name in params else None

    since = None
    if "sinceSeconds" in params:
        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=int(params["sinceSeconds"][-1]))
    elif "sinceTime" in params:
        since = datetime.datetime.fromisoformat(params["sinceTime"][-1].replace("Z", "+00:00"))
    return containerlog.Query(
        follow=flag("follow"),
        previous=flag("previous"),
        timestamps=flag("timestamps"),
        tail_lines=number("tailLines"),
        since=since,
        limit_bytes=number("limitBytes"),
    )


class _Handler(BaseHTTPRequestHandler):
    server: LogServer

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "containerLogs":
            self._fail(404, f"no such endpoint {url.path}")
            return
        _, namespace, pod, container = parts
        query = _query(urllib.parse.parse_qs(url.query))
        try:
            found: Any = self.server.core.read_namespaced_pod(pod, namespace)
        except ApiException as e:
            self._fail(e.status or 500, f'pod "{pod}" in namespace "{namespace}": {e.reason}')
            return
        runs = containerlog.runs(container_folder(self.server.logs_dir, namespace, pod, found.metadata.uid, container))
        wanted = runs[-2:-1] if query.previous else runs[-1:]
        if not wanted:
            which = "previous terminated" if query.previous else "running or terminated"
            self._fail(400, f'{which} container "{container}" in pod "{pod}" not found (it has not started yet)')
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        budget = query.limit_bytes
        try:
            for line in containerlog.read(wanted[0], query):
                if budget is not None:
                    line, budget = line[:budget], budget - len(line)
                self.wfile.write(line)
                self.wfile.flush()
                if budget is not None and budget <= 0:
                    return
        except (BrokenPipeError, ConnectionResetError):
            return  # the client (kubectl logs -f interrupted) went away

    def _fail(self, code: int, message: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(message.encode() + b"\n")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("log endpoint: " + format, *args)


class LogServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, core: client.CoreV1Api, logs_dir: Path, cert: Path, key: Path, client_ca: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.core = core
        self.logs_dir = logs_dir
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        context.load_verify_locations(str(client_ca))
        context.verify_mode = ssl.CERT_REQUIRED
        self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        threading.Thread(target=self.serve_forever, name="log-endpoint", daemon=True).start()
