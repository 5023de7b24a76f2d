"""A watch-backed, in-memory copy of what the pages show: each page view reads memory, never the API server.

One list-then-watch per resource (and per namespace when the identity may not read cluster-wide) keeps a
store of slimmed objects up to date. A 410 Gone relists; other errors are kept (shown on the pages) and
retried with backoff. Every change bumps `version`, which the live-update stream waits on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from finetune_dashboard import slim
from finetune_dashboard.kubeclient import Api, ApiError, Expired

log = logging.getLogger(__name__)
Obj = dict[str, Any]
GROUP_PATH = "/apis/finetune.dev/v1alpha1"
MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True)
class Resource:
    name: str
    prefix: str  # API path before /namespaces/<ns>
    plural: str
    params: dict[str, str]
    slim: Callable[[Obj], Obj]

    def path(self, namespace: str | None) -> str:
        middle = f"/namespaces/{namespace}" if namespace else ""
        return f"{self.prefix}{middle}/{self.plural}"


RESOURCES = (
    Resource("jobs", GROUP_PATH, "finetuningjobs", {}, slim.job),
    Resource("modelversions", GROUP_PATH, "modelversions", {}, slim.model_version),
    Resource("registeredmodels", GROUP_PATH, "registeredmodels", {}, slim.registered_model),
    Resource("events", "/api/v1", "events", {"fieldSelector": "involvedObject.kind=FineTuningJob"}, slim.event),
    Resource("pods", "/api/v1", "pods", {"labelSelector": "finetune.dev/job"}, slim.pod),
    Resource(
        "metrics",
        "/api/v1",
        "configmaps",
        {"labelSelector": "app.kubernetes.io/component=metrics,finetune.dev/job"},
        slim.metrics,
    ),
)


def key(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


@dataclass
class Cache:
    namespaces: tuple[str, ...] | None  # None: cluster-wide
    stores: dict[str, dict[tuple[str, str], Obj]] = field(default_factory=lambda: {r.name: {} for r in RESOURCES})
    errors: dict[str, str] = field(default_factory=dict)
    synced: set[str] = field(default_factory=set)
    # Lists refused for good (403: an older Role without the resource; 404: its CRD is not installed): the
    # pages show the error, and the rest of the dashboard is still worth serving.
    refused: set[str] = field(default_factory=set)
    version: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __getitem__(self, resource: str) -> dict[tuple[str, str], Obj]:
        return self.stores[resource]

    @property
    def ready(self) -> bool:
        return len(self.synced | self.refused) == len(RESOURCES) * len(self.namespaces or (None,))

    def bump(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed_since(self, version: int) -> int:
        """Returns once `version` is out of date (at once if it already is)."""
        while self.version == version:
            await self._changed.wait()
        return self.version

    def replace(self, resource: Resource, namespace: str | None, items: list[Obj]) -> None:
        store = self.stores[resource.name]
        for stale in [k for k in store if namespace is None or k[0] == namespace]:
            del store[stale]
        for item in items:
            store[key(item)] = resource.slim(item)
        self.bump()

    def apply(self, resource: Resource, kind: str, obj: Obj) -> None:
        store = self.stores[resource.name]
        if kind == "DELETED":
            store.pop(key(obj), None)
        else:
            store[key(obj)] = resource.slim(obj)
        self.bump()


async def keep(cache: Cache, api: Api, resource: Resource, namespace: str | None) -> None:
    """List, then watch from the list's version, forever; relist on 410, back off on other errors."""
    path, label = resource.path(namespace), f"{resource.name}@{namespace or '*'}"
    version: str | None = None
    backoff = 1.0
    while True:
        try:
            if version is None:
                items, version = await api.list_all(path, resource.params)
                cache.replace(resource, namespace, items)
                cache.synced.add(label)
                cache.refused.discard(label)
                cache.errors.pop(resource.name, None)
            async for kind, obj in api.watch(path, resource.params, version):
                version = obj["metadata"].get("resourceVersion") or version
                if kind != "BOOKMARK":
                    cache.apply(resource, kind, obj)
            backoff = 1.0
        except asyncio.CancelledError:
            raise
        except Expired:
            version = None
        except (ApiError, aiohttp.ClientError, OSError, ValueError, TimeoutError) as error:
            cache.errors[resource.name] = f"cannot read {resource.plural}: {error}"
            if isinstance(error, ApiError) and error.status in (403, 404):
                cache.refused.add(label)
            log.warning("%s: %s; retrying in %.0f s", label, error, backoff)
            version = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


async def scope(api: Api, requested: tuple[str, ...]) -> tuple[str, ...] | None:
    """The namespaces to watch: those asked for; else cluster-wide when allowed, else the context's namespace."""
    if requested:
        return requested
    try:
        await api.get(RESOURCES[0].path(None), {"limit": "1"})
        return None
    except ApiError as error:
        if error.status != 403:
            raise
        return (api.credentials.namespace,)


def start(cache: Cache, api: Api) -> list[asyncio.Task[None]]:
    return [
        asyncio.create_task(keep(cache, api, resource, namespace), name=f"watch {resource.name}")
        for resource in RESOURCES
        for namespace in cache.namespaces or (None,)
    ]
