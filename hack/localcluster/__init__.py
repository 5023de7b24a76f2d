"""The local test control plane behind hack/cluster.py (see cluster.py)."""

from .cluster import (
    ClusterInfo,
    down,
    kubectl,
    kubectl_binary,
    read_info,
    restart_apiserver,
    state_dir_from_env,
    status,
    up,
)

__all__ = [
    "ClusterInfo",
    "down",
    "kubectl",
    "kubectl_binary",
    "read_info",
    "restart_apiserver",
    "state_dir_from_env",
    "status",
    "up",
]
