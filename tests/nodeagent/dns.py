"""The DNS records of headless Services, as an /etc/hosts file per Service (test-only: no cluster DNS here).

A cluster's DNS gives each pod that has `spec.hostname` and `spec.subdomain` a record
`<hostname>.<subdomain>.<namespace>.svc.<domain>` when a headless Service named `<subdomain>` selects it; pods
find it through their search path (`<hostname>.<subdomain>` resolves). The agent has no DNS server and its pods
share the host's network, so every record points at 127.0.0.1: for each (namespace, subdomain) it keeps one
hosts file listing the pods it runs there, rewritten in place (the same inode, so the bind mounts see it) when
such a pod starts or ends, and bind-mounts it read-only at /etc/hosts into each container of those pods. A pod
gets a record only while its Service exists and selects it (checked when the pod starts), as with real DNS.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

CLUSTER_DOMAIN = "cluster.local"
_LOCAL = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


class Records:
    def __init__(self, core: client.CoreV1Api, state_dir: Path) -> None:
        self.core = core
        self.folder = state_dir / "hosts"
        self._lock = threading.Lock()
        self._members: dict[tuple[str, str], dict[str, str]] = {}

    def publish(self, pod: Any) -> Path | None:
        """The hosts file for `pod`'s containers (None without a subdomain); adds its record if its Service
        selects it."""
        subdomain = pod.spec.subdomain
        if not subdomain:
            return None
        key = (pod.metadata.namespace, subdomain)
        with self._lock:
            if self._selected(pod):
                hostname = (pod.spec.hostname or pod.metadata.name)[:63]
                self._members.setdefault(key, {})[pod.metadata.uid] = hostname
            return self._write(key)

    def withdraw(self, pod: Any) -> None:
        key = (pod.metadata.namespace, pod.spec.subdomain or "")
        with self._lock:
            if self._members.get(key, {}).pop(pod.metadata.uid, None) is not None:
                self._write(key)

    def _selected(self, pod: Any) -> bool:
        try:
            service: Any = self.core.read_namespaced_service(pod.spec.subdomain, pod.metadata.namespace)
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        selector = service.spec.selector or {}
        labels = pod.metadata.labels or {}
        headless = service.spec.cluster_ip == "None"
        return headless and bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    def _write(self, key: tuple[str, str]) -> Path:
        namespace, subdomain = key
        lines = [_LOCAL]
        for hostname in sorted(self._members.get(key, {}).values()):
            fqdn = f"{hostname}.{subdomain}.{namespace}.svc.{CLUSTER_DOMAIN}"
            lines.append(f"127.0.0.1\t{fqdn} {hostname}.{subdomain} {hostname}\n")
        path = self.folder / namespace / subdomain
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o644)
        with path.open("r+") as hosts:  # in place: the containers' bind mounts keep this inode
            hosts.truncate(0)
            hosts.write("".join(lines))
        path.chmod(0o644)
        return path
