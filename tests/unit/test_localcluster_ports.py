"""The local cluster gives each component its own port, even when the kernel offers one twice."""

from __future__ import annotations

import pytest

from localcluster import cluster, processes


def test_each_component_gets_a_distinct_port(monkeypatch: pytest.MonkeyPatch) -> None:
    offered = iter([40001, 40001, 40002, 40002, 40003])
    monkeypatch.setattr(processes, "free_port", lambda: next(offered))
    monkeypatch.setattr(cluster, "_is_free", lambda port: True)
    # A ports.json written by the old allocator with one port twice is repaired, not reused as it is.
    ports = cluster._ports(
        {"etcd-peer": 40001, "kube-controller-manager": 40001}, ("etcd-peer", "kube-controller-manager", "kwok")
    )
    assert ports["etcd-peer"] == 40001
    assert len(set(ports.values())) == 3, ports
