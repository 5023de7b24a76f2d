"""A pod's volumes as host folders, and a container's mounts as bind mounts of them.

ConfigMap, Secret, downwardAPI and projected volumes are written once when the pod starts (no
live updates, unlike a kubelet); service-account tokens come from the TokenRequest API.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .objects import NotReadyYet, Objects
from .podenv import ConfigError, field_value
from .security import fs_group

_TOKEN_SECONDS = 3607


@dataclass(frozen=True)
class Bind:
    source: Path
    target: str
    read_only: bool

    def as_json(self) -> dict[str, Any]:
        return {"source": str(self.source), "target": self.target, "readOnly": self.read_only}


def _write_files(folder: Path, files: dict[str, bytes], mode: int | None) -> None:
    for rel, content in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode if mode is not None else 0o644)


def _select(data: dict[str, bytes], items: Any, what: str, optional: bool) -> dict[str, bytes]:
    """All keys, or only `items` (key -> path) as the volume source lists them."""
    if not items:
        return dict(data)
    out = {}
    for item in items:
        if item.key in data:
            out[item.path] = data[item.key]
        elif not optional:
            raise NotReadyYet(f"{what}: key {item.key} not found")
    return out


def _downward(pod: Any, items: Any) -> dict[str, bytes]:
    out = {}
    for item in items or []:
        if item.field_ref is None:
            raise ConfigError("downwardAPI volumes: only fieldRef items are supported")
        out[item.path] = field_value(pod, item.field_ref.field_path).encode()
    return out


def _projected(pod: Any, sources: Any, objects: Objects) -> dict[str, bytes]:
    namespace = pod.metadata.namespace
    out: dict[str, bytes] = {}
    for source in sources or []:
        if source.service_account_token is not None:
            sat = source.service_account_token
            token = objects.service_account_token(
                namespace,
                pod.spec.service_account_name or "default",
                pod,
                sat.audience,
                sat.expiration_seconds or _TOKEN_SECONDS,
            )
            out[sat.path] = token.encode()
        elif source.config_map is not None:
            ref = source.config_map
            data = objects.config_map(namespace, ref.name, bool(ref.optional))
            out.update(_select(data, ref.items, f"configmap {ref.name}", bool(ref.optional)))
        elif source.secret is not None:
            ref = source.secret
            data = objects.secret(namespace, ref.name, bool(ref.optional))
            out.update(_select(data, ref.items, f"secret {ref.name}", bool(ref.optional)))
        elif source.downward_api is not None:
            out.update(_downward(pod, source.downward_api.items))
        else:
            raise ConfigError("projected volumes: unsupported source")
    return out


def give_to_group(folder: Path, gid: int) -> None:
    """What a kubelet does with fsGroup: the volume's files belong to the group, which may read and write them,
    and new files inherit the group (setgid folders)."""
    for root, dirs, files in os.walk(folder):
        os.chown(root, -1, gid)
        os.chmod(root, os.stat(root).st_mode & 0o7777 | 0o2070)
        for name in [*files, *dirs]:
            path = os.path.join(root, name)
            if os.path.islink(path):
                continue
            os.chown(path, -1, gid)
            if name in files:
                os.chmod(path, os.stat(path).st_mode & 0o7777 | 0o060)


def materialize(pod: Any, objects: Objects, pod_dir: Path) -> dict[str, Path]:
    """Creates every volume of `pod` under `pod_dir`; returns volume name -> host folder.

    With a pod fsGroup every volume but hostPath ones is given to that group (kubelet's volume ownership
    management; the PVCs here are hostPath PVs, treated like the block volumes of a real cluster).
    """
    folders = _materialize(pod, objects, pod_dir)
    group = fs_group(pod)
    if group is not None:
        for volume in pod.spec.volumes or []:
            if volume.host_path is None:
                give_to_group(folders[volume.name], group)
    return folders


def _materialize(pod: Any, objects: Objects, pod_dir: Path) -> dict[str, Path]:
    namespace = pod.metadata.namespace
    folders: dict[str, Path] = {}
    for volume in pod.spec.volumes or []:
        folder = pod_dir / "volumes" / volume.name
        if volume.persistent_volume_claim is not None:
            folders[volume.name] = objects.claim_path(namespace, volume.persistent_volume_claim.claim_name)
            continue
        if volume.host_path is not None:
            folders[volume.name] = Path(volume.host_path.path)
            if volume.host_path.type in ("DirectoryOrCreate", None, ""):
                folders[volume.name].mkdir(parents=True, exist_ok=True)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        folders[volume.name] = folder
        if volume.empty_dir is not None:
            folder.chmod(0o777)  # as a kubelet makes them: any user of the pod may write there
            continue
        if volume.config_map is not None:
            ref = volume.config_map
            data = objects.config_map(namespace, ref.name, bool(ref.optional))
            files = _select(data, ref.items, f"configmap {ref.name}", bool(ref.optional))
            _write_files(folder, files, ref.default_mode)
        elif volume.secret is not None:
            ref = volume.secret
            data = objects.secret(namespace, ref.secret_name, bool(ref.optional))
            files = _select(data, ref.items, f"secret {ref.secret_name}", bool(ref.optional))
            _write_files(folder, files, ref.default_mode)
        elif volume.downward_api is not None:
            _write_files(folder, _downward(pod, volume.downward_api.items), volume.downward_api.default_mode)
        elif volume.projected is not None:
            files = _projected(pod, volume.projected.sources, objects)
            _write_files(folder, files, volume.projected.default_mode)
        else:
            raise ConfigError(f"volume {volume.name}: unsupported volume type")
    return folders


def binds(container: Any, folders: dict[str, Path], termination_file: Path) -> list[Bind]:
    """The container's volumeMounts (plus its termination-message file) as bind mounts."""
    out = []
    for mount in container.volume_mounts or []:
        if mount.name not in folders:
            raise ConfigError(f"volumeMount {mount.name}: no such volume")
        source = folders[mount.name]
        if mount.sub_path:
            source = source / mount.sub_path
            if not source.exists():
                # A kubelet creates a missing subPath as a directory.
                source.mkdir(parents=True)
        out.append(Bind(source, mount.mount_path, bool(mount.read_only)))
    termination_file.parent.mkdir(parents=True, exist_ok=True)
    termination_file.write_bytes(b"")
    out.append(Bind(termination_file, container.termination_message_path or "/dev/termination-log", False))
    # Parents before children, so a mount inside another volume's mountPath stays visible.
    return sorted(out, key=lambda b: len(os.path.normpath(b.target)))
