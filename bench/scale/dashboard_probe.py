"""The dashboard under the scale benchmark's load: its jobs page timed every few seconds, its RSS sampled.

Started beside the operator by bench/scale/run.py (`--dashboard`), as the cluster admin, watching the bench
namespace. Server time is the dashboard's own Server-Timing header (rendering from its cache); wall time
adds the HTTP round trip on this loaded machine.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

SERVER_TIMING = re.compile(r"render;dur=([0-9.]+)")


class DashboardProbe:
    def __init__(self, kubeconfig: Path, namespace: str, port: int, log: Path, every: float = 5.0) -> None:
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "finetune_dashboard", "--kubeconfig", str(kubeconfig),
                 "--namespace", namespace, "--port", str(port)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.url = f"http://127.0.0.1:{port}/"
        self.every = every
        self.ps = psutil.Process(self.process.pid)
        self.peak_rss = 0
        self.samples: list[tuple[float, float, int]] = []  # (server ms, wall ms, rows shown)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._rss, daemon=True),
            threading.Thread(target=self._pages, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _rss(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak_rss = max(self.peak_rss, self.ps.memory_info().rss)
            self._stop.wait(0.25)

    def _pages(self) -> None:
        while not self._stop.wait(self.every):
            started = time.perf_counter()
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url, timeout=30) as response:
                body = response.read().decode()
                wall = (time.perf_counter() - started) * 1000
                match = SERVER_TIMING.search(response.headers.get("Server-Timing", ""))
                if response.status == 200 and match:
                    self.samples.append((float(match.group(1)), wall, body.count("<tr>") - 1))

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=35)
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        server = sorted(s for s, _, _ in self.samples)
        wall = sorted(w for _, w, _ in self.samples)

        def p(values: list[float], q: float) -> float | None:
            return values[max(0, int(q * len(values) + 0.999999) - 1)] if values else None

        return {
            "page_views": len(self.samples),
            "max_rows": max((rows for _, _, rows in self.samples), default=0),
            "server_ms": {"p50": p(server, 0.5), "p95": p(server, 0.95), "max": max(server, default=None)},
            "wall_ms": {"p50": p(wall, 0.5), "p95": p(wall, 0.95), "max": max(wall, default=None)},
            "peak_rss_mb": self.peak_rss / 2**20,
        }
