"""Container logs as a CRI runtime keeps them, and the kubelet's reading of them.

Each run of a container gets its own file, `<log dir>/<container>/<restart count>.log`, one line per line
the process wrote: `<RFC3339Nano time> <stdout|stderr> F <text>` (the CRI format, which is what lets the
kubelet answer `timestamps`, `sinceSeconds` and `previous`). A `<n>.done` file beside it says that run ended,
which ends a `follow`. The files outlive the pod's folder: kubectl logs works on a finished pod, as on a
real node until the pod is deleted.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_LINE = re.compile(rb"^(\S+) (stdout|stderr) [FP] (.*)$", re.DOTALL)
_FOLLOW_POLL = 0.1


def _stamp() -> bytes:
    moment = datetime.datetime.now(datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f000Z").encode()


def run_file(folder: Path, restart_count: int) -> Path:
    return folder / f"{restart_count}.log"


class Recorder:
    """Copies a process's stdout and stderr into one run file, line by line, with the time of each line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._out = path.open("ab")
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def attach(self, stdout: IO[bytes], stderr: IO[bytes]) -> None:
        for stream, name in ((stdout, b"stdout"), (stderr, b"stderr")):
            thread = threading.Thread(target=self._copy, args=(stream, name), name=f"log-{self.path}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _copy(self, stream: IO[bytes], name: bytes) -> None:
        with stream:
            for line in iter(stream.readline, b""):
                text = line[:-1] if line.endswith(b"\n") else line
                with self._lock:
                    self._out.write(b"%s %s F %s\n" % (_stamp(), name, text))
                    self._out.flush()

    def close(self) -> None:
        """Waits until the process's streams are drained, then marks the run as ended."""
        for thread in self._threads:
            thread.join(timeout=10)
        self._out.close()
        self.path.with_suffix(".done").touch()


@dataclass(frozen=True)
class Line:
    time: datetime.datetime
    stamp: bytes
    stream: bytes
    text: bytes

    def render(self, timestamps: bool) -> bytes:
        return (self.stamp + b" " if timestamps else b"") + self.text + b"\n"


def parse(raw: bytes) -> Line | None:
    match = _LINE.match(raw.rstrip(b"\n"))
    if match is None:
        return None
    stamp = match.group(1)
    moment = datetime.datetime.strptime(stamp.decode()[:26] + "Z", "%Y-%m-%dT%H:%M:%S.%fZ")
    return Line(moment.replace(tzinfo=datetime.UTC), stamp, match.group(2), match.group(3))


def tail_text(path: Path, limit: int) -> str:
    """The last `limit` bytes of what the run wrote (a kubelet's FallbackToLogsOnError message)."""
    try:
        lines = [parse(raw) for raw in path.read_bytes().splitlines(keepends=True)]
    except FileNotFoundError:
        return ""
    text = b"".join(line.render(False) for line in lines if line is not None)
    return text[-limit:].decode(errors="replace")


def runs(folder: Path) -> list[Path]:
    """A container's run files, oldest first."""
    return sorted(folder.glob("*.log"), key=lambda p: int(p.stem))


@dataclass(frozen=True)
class Query:
    """The kubelet's log options (the API server passes PodLogOptions through as query parameters)."""

    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since: datetime.datetime | None = None
    limit_bytes: int | None = None


def read(path: Path, query: Query) -> Iterator[bytes]:
    """The run's lines as kubectl logs prints them; with `follow`, new lines until the run ends."""
    with path.open("rb") as f:
        kept = [line for line in map(parse, f.readlines()) if line is not None]
        if query.since is not None:
            kept = [line for line in kept if line.time >= query.since]
        if query.tail_lines is not None:
            kept = kept[-query.tail_lines :] if query.tail_lines > 0 else []
        for line in kept:
            yield line.render(query.timestamps)
        if not query.follow:
            return
        done = path.with_suffix(".done")
        pending = b""
        while True:
            ended = done.exists()
            chunk = f.readline()
            if chunk:
                pending += chunk
                if pending.endswith(b"\n"):
                    parsed = parse(pending)
                    pending = b""
                    if parsed is not None:
                        yield parsed.render(query.timestamps)
                continue
            if ended:
                return
            time.sleep(_FOLLOW_POLL)
