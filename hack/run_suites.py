#!/usr/bin/env python3
"""Run test suites as pytest processes side by side: `make test`'s runner.

    hack/run_suites.py unit=tests/unit "cluster=tests/integration tests/e2e" -- --durations=30

Each NAME=PATHS is one pytest process over PATHS (space-separated); the arguments after `--` go to every one.
Why processes and not pytest-xdist: the integration tests share one local cluster and must run one at a time in
one process (tests/integration/conftest.py refuses xdist workers). They mostly wait (controllers, pods, polling)
while the unit tests are CPU-bound trainer runs, so side by side the run takes about the longer suite instead of
the sum of both.

- Output: every line of a suite is printed as it comes, prefixed with `[NAME] `; at the end each suite's exit
  status and pytest's summary line are repeated, since the two suites' summaries are far apart in the log.
- Exit status: 0 when every suite exited 0, else 1. pytest's 5 (nothing collected) is a failure, as is a suite
  killed by a signal.
- SIGINT or SIGTERM: each suite still running gets SIGINT in its process group, as from Ctrl-C: its session's
  fixtures tear down (the integration session stops the cluster it started), and the runner waits for them. The
  suites run in process groups of their own so that a Ctrl-C at the terminal reaches them once, through the
  runner, not twice; and a SIGTERM to the runner alone (make forwards one) still reaches them.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import BinaryIO


@dataclass
class Suite:
    name: str
    paths: list[str]
    process: subprocess.Popen[bytes] | None = None
    last_line: str = ""
    """The last line it printed: pytest's summary (`=== 3 passed in 1.2s ===`) once it is done."""
    seconds: float = 0.0
    printer: threading.Thread | None = field(default=None, repr=False)


def parse_suite(text: str) -> Suite:
    name, separator, paths = text.partition("=")
    if not separator or not name or not paths.split():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=PATHS, e.g. unit=tests/unit")
    return Suite(name, paths.split())


def overall_status(statuses: list[int]) -> int:
    """0 only when every suite exited 0: pytest's 5 (nothing collected) or a signal (negative) fails the run."""
    return 0 if all(status == 0 for status in statuses) else 1


def relay(suite: Suite, stream: BinaryIO, lock: threading.Lock) -> None:
    """Copies the suite's output line by line, prefixed with its name (whole lines: the suites do not interleave
    within a line)."""
    prefix = f"[{suite.name}] ".encode()
    for line in iter(stream.readline, b""):
        if line.strip():
            suite.last_line = line.decode(errors="replace").strip()
        with lock:
            sys.stdout.buffer.write(prefix + line)
            sys.stdout.buffer.flush()


def start(suite: Suite, pytest_args: list[str], lock: threading.Lock) -> None:
    color = ["--color=yes"] if sys.stdout.isatty() else []
    suite.process = subprocess.Popen(
        [sys.executable, "-m", "pytest", *color, *pytest_args, *suite.paths],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        process_group=0,
    )
    assert suite.process.stdout is not None
    suite.printer = threading.Thread(target=relay, args=(suite, suite.process.stdout, lock), daemon=True)
    suite.printer.start()


def interrupt_running(suites: list[Suite]) -> None:
    """SIGINT to each running suite's process group, as a terminal's Ctrl-C: pytest and the processes its tests
    started in its group (a trainer under test, kubectl) get it, not those in sessions of their own (the cluster's
    components, servers), which the session's fixtures stop."""
    for suite in suites:
        if suite.process is not None and suite.process.poll() is None:
            os.killpg(suite.process.pid, signal.SIGINT)


def run(suites: list[Suite], pytest_args: list[str]) -> int:
    lock = threading.Lock()

    def forward(signum: int, frame: FrameType | None) -> None:
        with lock:
            print(f"run_suites: {signal.Signals(signum).name}: interrupting the suites still running", flush=True)
        interrupt_running(suites)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    started = time.monotonic()
    for suite in suites:
        start(suite, pytest_args, lock)
    running = list(suites)
    while running:
        time.sleep(0.5)
        for suite in [suite for suite in running if suite.process is not None and suite.process.poll() is not None]:
            suite.seconds = time.monotonic() - started
            # A process the suite started and left running (a kept cluster's component, say) may hold the pipe
            # open: its end is pytest's end, not the pipe's.
            if suite.printer is not None:
                suite.printer.join(timeout=10)
            running.remove(suite)
    print()
    for suite in suites:
        assert suite.process is not None
        print(f"[{suite.name}] exit {suite.process.returncode} after {suite.seconds:.0f} s: {suite.last_line}")
    return overall_status([suite.process.returncode for suite in suites if suite.process is not None])


def main(argv: list[str]) -> int:
    separator = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suites", nargs="+", type=parse_suite, metavar="NAME=PATHS")
    args = parser.parse_args(argv[:separator])
    return run(args.suites, argv[separator + 1 :])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
