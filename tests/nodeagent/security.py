"""A container's effective securityContext, merged as a kubelet merges it (pure; no I/O).

The agent honours what decides whether a restricted workload works: the user and groups a container runs
as (runAsUser, runAsGroup, fsGroup, supplementalGroups), runAsNonRoot, and readOnlyRootFilesystem. Images
are ignored, so an unset runAsUser means root (the image's USER is unknown): a pod that says runAsNonRoot
without a runAsUser is refused as a kubelet refuses an image whose user is root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .podenv import ConfigError


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]
    """Supplementary groups: fsGroup first, then supplementalGroups."""
    read_only_root: bool

    def as_json(self) -> dict[str, Any]:
        return {"uid": self.uid, "gid": self.gid, "groups": list(self.groups), "readOnlyRoot": self.read_only_root}


def fs_group(pod: Any) -> int | None:
    """The pod's fsGroup: the group that owns its writable volumes."""
    context = pod.spec.security_context
    return None if context is None or context.fs_group is None else int(context.fs_group)


def identity(pod: Any, container: Any) -> Identity:
    """The container's settings win over the pod's, field by field (as in the Kubernetes API)."""
    pod_context = pod.spec.security_context
    own = container.security_context

    def pick(field: str) -> Any:
        for context in (own, pod_context):
            value = getattr(context, field, None) if context is not None else None
            if value is not None:
                return value
        return None

    uid = int(pick("run_as_user") or 0)
    if pick("run_as_non_root") and uid == 0:
        raise ConfigError(
            f"container has runAsNonRoot and image will run as root (pod: {pod.metadata.name}, "
            f"container: {container.name}); the node agent ignores images, so set runAsUser"
        )
    group = fs_group(pod)
    groups = [] if group is None else [group]
    groups += [int(g) for g in (getattr(pod_context, "supplemental_groups", None) or [])]
    read_only = bool(own is not None and own.read_only_root_filesystem)
    return Identity(uid, int(pick("run_as_group") or 0), tuple(dict.fromkeys(groups)), read_only)
