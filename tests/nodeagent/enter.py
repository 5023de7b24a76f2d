"""Runs inside `unshare --mount --uts --propagation private`: mounts a container's filesystem view, names the
host after the pod, then execs it.

    python -m nodeagent.enter <spec.json>

spec.json: {"binds": [{"source", "target", "readOnly"}], "argv": [...], "workingDir": "/...",
"runtimePaths": [host folders the process needs whatever the pod mounts: the checkout, the venv],
"user": {"uid", "gid", "groups", "readOnlyRoot"}, "hostname": the pod's}.
In order: host folders the container's user cannot traverse (/root, holding the Python installation) are
covered with an empty tmpfs through which only the runtime paths are bound back; the volumes are bind-mounted;
with readOnlyRoot every other mount of the view is remounted read-only (only /proc, /sys and /dev stay as they
are, as a container runtime mounts them separately); then the hostname becomes the pod's (its own UTS namespace:
a process that names itself after its host, as Kopf's peering identity does, names the pod); then the process
takes the container's user and groups and execs its command. The mounts are private to this process and its
children; the host never sees them. Missing mountpoints are created on the host (empty dirs or files), as the
package docstring warns.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

_RUNTIME_MOUNTS = (Path("/proc"), Path("/sys"), Path("/dev"))


def _mountpoint(source_fd: int, target: Path) -> None:
    # From the held descriptor, not the path: a tmpfs mounted over one of the source's parents (a folder the
    # container's user may not traverse) hides the path, which then read as "not a folder" and a file was touched
    # where a folder had to be bound ("mount point is not a directory").
    if stat.S_ISDIR(os.fstat(source_fd).st_mode):
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.touch()


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _bind_fd(fd: int, target: Path) -> None:
    # /proc/<pid>/fd/<n> still reaches a shadowed source, provided mount does not canonicalize it back into a
    # path (which would resolve in the new, shadowed view).
    _mount("--no-canonicalize", "--bind", f"/proc/{os.getpid()}/fd/{fd}", str(target))


def _traversable(path: Path, user: dict[str, Any]) -> bool:
    if user["uid"] == 0:
        return True
    info = path.stat()
    if info.st_uid == user["uid"]:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in (user["gid"], *user["groups"]):
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _blocked_ancestor(path: Path, user: dict[str, Any]) -> Path | None:
    """The first folder above `path` that the container's user may not traverse."""
    for ancestor in reversed(path.parents):
        if not _traversable(ancestor, user):
            return ancestor
    return None


def _under(path: Path, folders: list[Path]) -> bool:
    return any(path == folder or folder in path.parents for folder in folders)


def _mount_points() -> list[Path]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Field 5 is the mount point, with spaces and the like escaped as octal (\040).
        raw = line.split()[4]
        points.append(Path(raw.encode().decode("unicode_escape")))
    return list(dict.fromkeys(points))


def _read_only_root(writable: list[Path], runtime: list[Path]) -> None:
    """Every mount but the writable volumes and the runtime mounts becomes read-only (the image's root)."""
    for point in _mount_points():
        if _under(point, list(_RUNTIME_MOUNTS)) or (_under(point, writable) and point not in runtime):
            continue
        if not point.exists():
            continue  # hidden under a mount made above (the tmpfs over /root): nothing reaches it
        _mount("-o", "remount,bind,ro", str(point))


def _take_identity(user: dict[str, Any]) -> None:
    os.setgroups(user["groups"])
    os.setgid(user["gid"])
    os.setuid(user["uid"])


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    user = spec.get("user") or {"uid": 0, "gid": 0, "groups": [], "readOnlyRoot": False}
    # Hold every source open before mounting anything: a mount over a parent of a source (an emptyDir at
    # /tmp while the volumes live under /tmp/...) would otherwise hide it from the binds that follow.
    held = [os.open(bind["source"], os.O_PATH) for bind in spec["binds"]]
    runtime = [Path(path) for path in spec.get("runtimePaths", [])]
    runtime_fds = {path: os.open(path, os.O_PATH) for path in runtime}
    covered = sorted({b for b in (_blocked_ancestor(p, user) for p in runtime) if b is not None})
    for folder in covered:
        _mount("-t", "tmpfs", "-o", "mode=0755,size=1m", "fto-runtime", str(folder))
    for bind, fd in zip(spec["binds"], held, strict=True):
        target = Path(bind["target"])
        _mountpoint(fd, target)
        _bind_fd(fd, target)
        if bind["readOnly"]:
            _mount("-o", "remount,bind,ro", str(target))
    # The image is ignored, so the project and its Python come from the host: a pod mount over one of their
    # parents (an emptyDir at /tmp while the checkout lives in /tmp/...), or a tmpfs above, must not hide them.
    targets = [Path(bind["target"]) for bind in spec["binds"]]
    rebound = [path for path in runtime if _under(path, [*targets, *covered])]
    for path in rebound:
        path.mkdir(parents=True, exist_ok=True)
        _bind_fd(runtime_fds[path], path)
    if user["readOnlyRoot"]:
        writable = [Path(b["target"]) for b in spec["binds"] if not b["readOnly"]]
        _read_only_root(writable, rebound)
    socket.sethostname(spec["hostname"])
    _take_identity(user)
    os.chdir(spec["workingDir"])
    argv = spec["argv"]
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        # As a runtime reports a missing executable: exit code 127, reason on stderr.
        print(f"nodeagent: cannot run {argv[0]!r}: {e}", file=sys.stderr)
        sys.exit(127)


if __name__ == "__main__":
    main()
