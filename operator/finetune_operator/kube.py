"""A small synchronous gateway to the Kubernetes API: the only module of the operator that does HTTP.

It speaks plain JSON (dicts in, dicts out) through the official client's authenticated transport, which
avoids the client's slow model (de)serialisation and keeps one code path for every kind the operator
touches. Call it from a thread (`asyncio.to_thread`), never directly on Kopf's event loop.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]

# kind -> (API path prefix, plural); namespaced kinds only.
_KINDS: Mapping[str, tuple[str, str]] = {
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "Event": ("/api/v1", "events"),
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "Service": ("/api/v1", "services"),
    "Pod": ("/api/v1", "pods"),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings"),
    "Job": ("/apis/batch/v1", "jobs"),
    "FineTuningJob": ("/apis/finetune.dev/v1alpha1", "finetuningjobs"),
    "ModelVersion": ("/apis/finetune.dev/v1alpha1", "modelversions"),
    "RegisteredModel": ("/apis/finetune.dev/v1alpha1", "registeredmodels"),
    "Workload": ("/apis/kueue.x-k8s.io/v1beta2", "workloads"),
}


class ApiError(Exception):
    """A failed API call, carrying the HTTP status and the API server's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def load_config() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig ($KUBECONFIG)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self._api = api

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> Obj:
        serialized = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._api.call_api(*serialized, _request_timeout=30)
            data = response.read()  # type: ignore[no-untyped-call]
        except ApiException as error:
            raise ApiError(int(error.status or 0), _message(error.body)) from error
        if response.status >= 400:
            raise ApiError(response.status, _message(data))
        return json.loads(data) if data else {}

    @staticmethod
    def path(kind: str, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        prefix, plural = _KINDS[kind]
        path = f"{prefix}/namespaces/{namespace}/{plural}"
        if name:
            path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
        return path

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return self._request("GET", self.path(kind, namespace, name))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def get_path(self, path: str) -> Obj | None:
        """GET any API path (e.g. a cluster-scoped object); None when it does not exist."""
        try:
            return self._request("GET", path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def list(
        self, kind: str, namespace: str, label_selector: str | None = None, field_selector: str | None = None
    ) -> list[Obj]:
        query = [("labelSelector", label_selector)] if label_selector else []
        query += [("fieldSelector", field_selector)] if field_selector else []
        items: list[Obj] = self._request("GET", self.path(kind, namespace), query=query).get("items", [])
        return items

    def create(self, obj: Obj) -> bool:
        """Create `obj`; True if created, False if it already existed (a restart repeating itself)."""
        meta = obj["metadata"]
        try:
            self._request("POST", self.path(obj["kind"], meta["namespace"]), body=obj)
        except ApiError as error:
            if error.status == 409:
                return False
            raise
        return True

    def post(self, obj: Obj) -> None:
        """Create an object with a generated name (Events)."""
        self._request("POST", self.path(obj["kind"], obj["metadata"]["namespace"]), body=obj)

    def delete(self, kind: str, namespace: str, name: str, propagation: str = "Background") -> None:
        # Background (or Foreground) propagation: without it, deleting a Job orphans its pods.
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            self._request("DELETE", self.path(kind, namespace, name), body=body)
        except ApiError as error:
            if error.status != 404:
                raise

    def patch(self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]) -> Obj | None:
        """Merge-patch an object; None when it does not exist."""
        try:
            return self._request(
                "PATCH", self.path(kind, namespace, name), body=dict(patch), content_type="application/merge-patch+json"
            )
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def annotate(self, kind: str, namespace: str, name: str, annotations: Mapping[str, str | None]) -> None:
        """Merge-patch metadata.annotations (None removes one); a vanished object is not an error."""
        self.patch(kind, namespace, name, {"metadata": {"annotations": dict(annotations)}})

    def patch_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> Obj | None:
        """Merge-patch the status subresource; None when the object is gone (deleted meanwhile)."""
        try:
            return self._request(
                "PATCH",
                self.path(kind, namespace, name, "status"),
                body={"status": dict(status)},
                content_type="application/merge-patch+json",
            )
        except ApiError as error:
            if error.status == 404:
                return None
            raise


def event_for(
    obj: Mapping[str, Any], event_type: str, reason: str, message: str, now: str, name: str | None = None
) -> Obj:
    """A core/v1 Event about `obj` (what `kubectl describe` shows); named `name`, or a generated name."""
    meta = obj["metadata"]
    identity = {"name": name} if name else {"generateName": f"{meta['name']}."}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {**identity, "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion", "finetune.dev/v1alpha1"),
            "kind": obj.get("kind", "FineTuningJob"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "type": event_type,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "finetune-operator"},
        "reportingComponent": "finetune-operator",
        "reportingInstance": socket.gethostname()[:128],
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def _message(body: Any) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return str(body)[:512]
    return str(parsed.get("message") or body)[:512] if isinstance(parsed, dict) else str(body)[:512]
