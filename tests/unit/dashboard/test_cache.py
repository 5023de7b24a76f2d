"""The cache's stores: slimmed objects, replace on relist, apply watch events, version bumps (no I/O)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from finetune_dashboard import cache, slim
from finetune_dashboard.kubeclient import ApiError


def raw_job(name: str, namespace: str = "a") -> dict[str, object]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": name,
            "managedFields": [{"manager": "x"}],
            "annotations": {"big": "y" * 10_000},
        },
        "spec": {"output": {"modelName": "m"}},
        "status": {"phase": "Running"},
    }


JOBS = cache.RESOURCES[0]


def test_relist_replaces_only_that_namespace_and_slims_objects() -> None:
    async def scenario() -> None:
        store = cache.Cache(namespaces=("a", "b"))
        store.replace(JOBS, "a", [raw_job("one"), raw_job("two")])
        store.replace(JOBS, "b", [raw_job("three", "b")])
        store.replace(JOBS, "a", [raw_job("two")])
        assert sorted(store["jobs"]) == [("a", "two"), ("b", "three")]
        kept = store["jobs"][("a", "two")]
        assert "managedFields" not in kept["metadata"] and "annotations" not in kept["metadata"]
        assert store.version == 3

    asyncio.run(scenario())


def test_watch_events_add_modify_delete_and_wake_waiters() -> None:
    async def scenario() -> None:
        store = cache.Cache(namespaces=None)
        waiter = asyncio.create_task(store.changed_since(0))
        await asyncio.sleep(0)
        assert not waiter.done()
        store.apply(JOBS, "ADDED", raw_job("one"))
        assert await asyncio.wait_for(waiter, 1) == 1
        changed = raw_job("one")
        changed["status"] = {"phase": "Completed"}
        store.apply(JOBS, "MODIFIED", changed)
        assert store["jobs"][("a", "one")]["status"]["phase"] == "Completed"
        store.apply(JOBS, "DELETED", changed)
        assert store["jobs"] == {}
        assert await store.changed_since(0) == 3  # already out of date: returns at once

    asyncio.run(scenario())


def test_ready_once_every_resource_listed_in_every_namespace() -> None:
    store = cache.Cache(namespaces=("a", "b"))
    for resource in cache.RESOURCES:
        store.synced.add(f"{resource.name}@a")
    assert not store.ready
    for resource in cache.RESOURCES:
        store.synced.add(f"{resource.name}@b")
    assert store.ready


def test_paths_and_selectors() -> None:
    assert JOBS.path(None) == "/apis/finetune.dev/v1alpha1/finetuningjobs"
    assert JOBS.path("x") == "/apis/finetune.dev/v1alpha1/namespaces/x/finetuningjobs"
    metrics = next(r for r in cache.RESOURCES if r.name == "metrics")
    assert metrics.path("x") == "/api/v1/namespaces/x/configmaps"
    assert "app.kubernetes.io/component=metrics" in metrics.params["labelSelector"]


def test_metrics_history_is_parsed_once_and_bad_json_is_empty() -> None:
    good = slim.metrics({"metadata": {"name": "j-metrics"}, "data": {slim.HISTORY_KEY: '{"series": {}}'}})
    assert good["history"] == {"series": {}}
    assert slim.metrics({"metadata": {"name": "j-metrics"}, "data": {slim.HISTORY_KEY: "{"}})["history"] == {}
    assert slim.metrics({"metadata": {"name": "j-metrics"}})["history"] == {}


class RefusingApi:
    """Lists answer from `statuses` (a status per resource plural; 200 lists nothing); watches stay open."""

    def __init__(self, statuses: dict[str, int]) -> None:
        self.statuses = statuses

    async def list_all(self, path: str, params: dict[str, str]) -> tuple[list[Any], str]:
        status = self.statuses.get(path.rsplit("/", 1)[-1], 200)
        if status != 200:
            raise ApiError(status, "refused")
        return [], "1"

    async def watch(self, path: str, params: dict[str, str], version: str) -> AsyncIterator[tuple[str, Any]]:
        await asyncio.Event().wait()
        yield "BOOKMARK", {}


def ready_after_first_lists(statuses: dict[str, int]) -> tuple[bool, dict[str, str]]:
    async def scenario() -> tuple[bool, dict[str, str]]:
        store = cache.Cache(namespaces=None)
        tasks = cache.start(store, RefusingApi(statuses))  # type: ignore[arg-type]
        await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return store.ready, dict(store.errors)

    return asyncio.run(scenario())


def test_a_resource_refused_for_good_does_not_hold_back_readiness() -> None:
    """An older Role without registeredmodels (403) or a missing CRD (404) is shown as an error, not a dead pod."""
    for status in (403, 404):
        ready, errors = ready_after_first_lists({"registeredmodels": status})
        assert ready, status
        assert f"HTTP {status}" in errors["registeredmodels"]


def test_a_transient_list_failure_keeps_it_unready() -> None:
    ready, errors = ready_after_first_lists({"registeredmodels": 503})
    assert not ready
    assert "HTTP 503" in errors["registeredmodels"]
