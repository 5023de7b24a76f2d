"""The dashboard's only door to the API server: authenticated GETs and list-then-watch streams (aiohttp).

Credentials come from the official client's loaders (in-cluster ServiceAccount, else the kubeconfig), so the
dashboard run locally acts as the user and that user's RBAC decides what it shows. The bearer token is read
through the loader for every request: in a pod the projected token rotates and the loader re-reads it.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes import client, config

Obj = dict[str, Any]
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
LIST_PAGE = 500
WATCH_SECONDS = 290


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Expired(ApiError):
    """410 Gone: the resourceVersion is too old; list again."""


@dataclass(frozen=True)
class Credentials:
    server: str
    tls: ssl.SSLContext
    configuration: client.Configuration
    namespace: str  # the context's (or the pod's) namespace: the fallback scope when cluster-wide reads are denied

    def headers(self) -> dict[str, str]:
        # The client's own auth settings: they run its token refresh hook (in-cluster tokens rotate).
        headers = {"Accept": "application/json"}
        for setting in self.configuration.auth_settings().values():
            fields: Any = setting  # typed loosely by the client (a TypedDict of optional entries)
            if fields.get("in") == "header" and fields.get("value"):
                headers[str(fields["key"]).title()] = str(fields["value"])
        return headers


def load(kubeconfig: str | None = None, context: str | None = None) -> Credentials:
    """In-cluster identity when in a pod (and no kubeconfig was named), else the kubeconfig's context."""
    configuration = client.Configuration()
    namespace = "default"
    try:
        if kubeconfig is not None:
            raise config.ConfigException("a kubeconfig was given")
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        namespace = IN_CLUSTER_NAMESPACE.read_text().strip() or namespace
    except config.ConfigException:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)  # type: ignore[no-untyped-call]
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        chosen = next((c for c in _ if c["name"] == context), active) if context else active
        namespace = (chosen or {}).get("context", {}).get("namespace") or namespace
    tls = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        tls.load_cert_chain(configuration.cert_file, configuration.key_file)
    if not configuration.verify_ssl:
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    return Credentials(configuration.host.rstrip("/"), tls, configuration, namespace)


class Api:
    def __init__(self, credentials: Credentials, session: aiohttp.ClientSession) -> None:
        self.credentials = credentials
        self.session = session

    @classmethod
    def session_for(cls, credentials: Credentials) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=credentials.tls, limit=20))

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Obj:
        async with self.session.get(
            self.credentials.server + path, params=params, headers=self.credentials.headers()
        ) as response:
            body = await response.read()
            if response.status >= 300:
                raise _error(response.status, body)
            result: Obj = json.loads(body)
            return result

    async def text(self, path: str, params: Mapping[str, str] | None = None) -> str:
        async with self.session.get(
            self.credentials.server + path, params=params, headers=self.credentials.headers()
        ) as response:
            body = await response.read()
            if response.status >= 300:
                raise _error(response.status, body)
            return body.decode("utf-8", "replace")

    async def list_all(self, path: str, params: Mapping[str, str]) -> tuple[list[Obj], str]:
        """Every item (paged), and the list's resourceVersion to watch from."""
        items: list[Obj] = []
        token = ""
        while True:
            page = await self.get(path, {**params, "limit": str(LIST_PAGE), **({"continue": token} if token else {})})
            items.extend(page.get("items") or [])
            token = page["metadata"].get("continue") or ""
            if not token:
                return items, page["metadata"]["resourceVersion"]

    async def watch(self, path: str, params: Mapping[str, str], version: str) -> AsyncIterator[tuple[str, Obj]]:
        """(type, object) events from `version` on, bookmarks included, until the server ends the watch."""
        query = {
            **params,
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_read=WATCH_SECONDS + 30)
        async with self.session.get(
            self.credentials.server + path, params=query, headers=self.credentials.headers(), timeout=timeout
        ) as response:
            if response.status >= 300:
                raise _error(response.status, await response.read())
            # Whole lines by hand: aiohttp's line iterator refuses lines over 64 KiB (a metrics ConfigMap nears it).
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in filter(bytes.strip, lines):
                    event = json.loads(line)
                    if event["type"] == "ERROR":
                        status = event["object"]
                        raise _error(int(status.get("code") or 500), json.dumps(status).encode())
                    yield event["type"], event["object"]


def _error(status: int, body: bytes) -> ApiError:
    try:
        message = str(json.loads(body).get("message") or "")
    except ValueError:
        message = body[:300].decode("utf-8", "replace")
    return (Expired if status == 410 else ApiError)(status, message)
