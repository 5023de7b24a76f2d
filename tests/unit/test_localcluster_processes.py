"""PID files of the local cluster's components: a reused PID never passes for the component."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster import processes


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = processes.start(tmp_path, "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_started_component_is_running_until_stopped(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    assert processes.running_pid(tmp_path, "sleeper") == sleeper.pid
    processes.stop(tmp_path, "sleeper", grace=5)
    assert processes.running_pid(tmp_path, "sleeper") is None
    assert sleeper.wait(timeout=5) != 0


@pytest.mark.parametrize("recorded", ["{pid} 1", "{pid}"], ids=["another-start-time", "no-start-time"])
def test_a_pid_now_held_by_another_process_is_not_the_component(tmp_path: Path, recorded: str) -> None:
    """As after a cluster died and the PID counter wrapped: `stop` must leave the new holder of the PID alone."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        (tmp_path / "pids").mkdir()
        # The same PID, recorded with the start time of a process that is gone (or none, as files written
        # before start times were recorded).
        (tmp_path / "pids" / "stale.pid").write_text(recorded.format(pid=other.pid) + "\n")
        assert processes.running_pid(tmp_path, "stale") is None
        processes.stop(tmp_path, "stale", grace=1)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
