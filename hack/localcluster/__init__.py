"""The local test control plane behind hack/cluster.py (see cluster.py)."""

from . import kueue
from .cluster import (
    OPTIONAL_COMPONENTS,
    ClusterInfo,
    down,
    kubectl,
    kubectl_binary,
    read_info,
    restart_apiserver,
    run_kubectl,
    state_dir_from_env,
    status,
    up,
)
from .crds import wait_established
from .operator_process import start_operator

__all__ = [
    "OPTIONAL_COMPONENTS",
    "ClusterInfo",
    "down",
    "kubectl",
    "kubectl_binary",
    "kueue",
    "read_info",
    "restart_apiserver",
    "run_kubectl",
    "start_operator",
    "state_dir_from_env",
    "status",
    "up",
    "wait_established",
]
