"""A genuinely small filesystem for disk-full tests: a size-limited tmpfs in a private mount namespace.

`SmallVolume` starts a holder process in a new mount namespace (`unshare --mount --propagation
private`) that mounts a tmpfs of the given size at `path` and then sleeps. Programs under test run
in that namespace through `nsenter`, so they see the small volume at `path`; the test reads it
through `/proc/<holder>/root/<path>` (`view`), without resolving symlinks (which would lead back to
the host's directory). The mount exists only in the holder's namespace: killing the holder removes
it, so nothing leaks into the host's mount table even if a test dies. `resize` remounts the tmpfs
(content kept), which is how a test fills the volume at a chosen moment (shrink it to what is used
plus a margin) and frees it again afterwards.

Needs root (or CAP_SYS_ADMIN) and unshare/nsenter; `open_volume` skips the test with the reason
otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

KiB = 1024
MiB = 1024 * KiB


class SmallVolume:
    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        script = 'mount -t tmpfs -o "size=$1,mode=0755" fto-small-volume "$2" && echo mounted && exec sleep 3600'
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", str(size), str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != "mounted":
            self.holder.kill()
            _, error = self.holder.communicate()
            raise OSError(f"cannot mount a tmpfs in a private mount namespace: {error.strip()}")

    @property
    def view(self) -> Path:
        """`path` as the test process can read it (inside the holder's namespace)."""
        return Path(f"/proc/{self.holder.pid}/root") / self.path.relative_to("/")

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["nsenter", f"--target={self.holder.pid}", "--mount", "--", *argv]

    def popen(self, argv: Sequence[str], **options: Any) -> subprocess.Popen[str]:
        # nsenter execs the program (no --fork for a mount namespace): the Popen's pid is the program's.
        return subprocess.Popen(self.command(argv), text=True, **options)

    def resize(self, size: int) -> None:
        subprocess.run(self.command(["mount", "-o", f"remount,size={size}", str(self.path)]), check=True)

    def usage(self) -> tuple[int, int, int]:
        """(total, used, free) bytes, as statvfs reports them inside the namespace."""
        stat = os.statvfs(self.view)
        total, free = stat.f_blocks * stat.f_frsize, stat.f_bavail * stat.f_frsize
        return total, total - free, free

    def close(self) -> None:
        self.holder.kill()
        self.holder.communicate()


@contextmanager
def open_volume(path: Path, size: int) -> Iterator[SmallVolume]:
    """A SmallVolume for the duration of a test; skips it, with the reason, where mounting is impossible."""
    if os.geteuid() != 0:
        pytest.skip("disk-full tests mount a tmpfs in a private mount namespace: run them as root")
    if not (shutil.which("unshare") and shutil.which("nsenter")):
        pytest.skip("disk-full tests need unshare and nsenter (util-linux)")
    try:
        volume = SmallVolume(path, size)
    except OSError as error:
        pytest.skip(str(error))
    try:
        yield volume
    finally:
        volume.close()
