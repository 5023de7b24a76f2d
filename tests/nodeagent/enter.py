"""Runs inside `unshare --mount --propagation private`: bind-mounts a container's volumes, then execs it.

    python -m nodeagent.enter <spec.json>

spec.json: {"binds": [{"source", "target", "readOnly"}], "argv": [...], "workingDir": "/...",
"runtimePaths": [host folders the process needs whatever the pod mounts: the checkout, the venv]}.
The mounts are private to this process and its children; the host never sees them. Missing
mountpoints are created on the host (empty dirs or files), as the package docstring warns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _mountpoint(source: Path, target: Path) -> None:
    if source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.touch()


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    # Hold every source open before mounting anything: a mount over a parent of a source (an emptyDir at
    # /tmp while the volumes live under /tmp/...) would otherwise hide it from the binds that follow.
    # /proc/<pid>/fd/<n> still reaches a shadowed source, provided mount does not canonicalize it back into a
    # path (which would resolve in the new, shadowed view).
    held = [os.open(bind["source"], os.O_PATH) for bind in spec["binds"]]
    runtime_fds = {path: os.open(path, os.O_PATH) for path in spec.get("runtimePaths", [])}
    for bind, fd in zip(spec["binds"], held, strict=True):
        source, target = Path(bind["source"]), Path(bind["target"])
        _mountpoint(source, target)
        subprocess.run(
            ["mount", "--no-canonicalize", "--bind", f"/proc/{os.getpid()}/fd/{fd}", str(target)], check=True
        )
        if bind["readOnly"]:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
    # The image is ignored, so the project and its Python come from the host: a pod mount over one of their
    # parents (an emptyDir at /tmp while the checkout lives in /tmp/...) must not hide them.
    targets = [Path(bind["target"]) for bind in spec["binds"]]
    for runtime in spec.get("runtimePaths", []):
        path = Path(runtime)
        if any(target in path.parents for target in targets):
            fd = runtime_fds[runtime]
            path.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["mount", "--no-canonicalize", "--bind", f"/proc/{os.getpid()}/fd/{fd}", str(path)], check=True
            )
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
