"""`make test`'s runner (hack/run_suites.py): suites side by side, failures kept, teardown on interruption."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import run_suites

RUNNER = Path(run_suites.__file__)

# Each suite's test says it started, then waits until the other suite's test started too: it passes only when
# both suites run at the same time.
MEETS_THE_OTHER = """
import pathlib, time

def test_meets_the_other():
    here = pathlib.Path(__file__).parent
    (here / "started").write_text("")
    other = here.parent / "{other}" / "started"
    deadline = time.monotonic() + 120
    while not other.exists():
        assert time.monotonic() < deadline, "the other suite did not start while this one ran"
        time.sleep(0.1)
"""

# A test that runs until interrupted; its fixture's teardown is what a cluster-stopping session fixture does.
RUNS_UNTIL_INTERRUPTED = """
import pathlib, subprocess, time
import pytest

@pytest.fixture(scope="session")
def torn_down():
    here = pathlib.Path(__file__).parent
    yield here
    (here / "torn-down").write_text("")

def test_runs_until_interrupted(torn_down):
    # A process the test started, as a trainer under test: a terminal's Ctrl-C reaches it too.
    child = subprocess.Popen(["sleep", "300"])
    (torn_down / "child").write_text(str(child.pid))
    (torn_down / "started").write_text("")
    time.sleep(300)
"""


def suite(root: Path, name: str, source: str) -> str:
    folder = root / name
    folder.mkdir()
    if source:
        (folder / f"test_{name}.py").write_text(textwrap.dedent(source))
    return f"{name}={folder}"


def runner(tmp_path: Path, *suites: str) -> list[str]:
    return [sys.executable, str(RUNNER), *suites, "--", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]


def test_suites_run_side_by_side_and_every_line_says_its_suite(tmp_path: Path) -> None:
    suites = [suite(tmp_path, "one", MEETS_THE_OTHER.format(other="two"))]
    suites.append(suite(tmp_path, "two", MEETS_THE_OTHER.format(other="one")))
    result = subprocess.run(runner(tmp_path, *suites), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ("one", "two"):
        assert any(line.startswith(f"[{name}] ") and f"test_{name}.py ." in line for line in lines), lines
        summary = next(line for line in lines if line.startswith(f"[{name}] exit 0 after"))
        assert "1 passed" in summary, summary


def test_a_suite_that_collects_nothing_fails_the_run(tmp_path: Path) -> None:
    passing = suite(tmp_path, "passing", "def test_passes():\n    pass\n")
    result = subprocess.run(
        runner(tmp_path, passing, suite(tmp_path, "empty", "")), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1, result.stdout
    assert "[passing] exit 0 after" in result.stdout and "[empty] exit 5 after" in result.stdout, result.stdout


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "terminated"])
def test_an_interrupted_run_tears_every_suite_down_before_it_exits(tmp_path: Path, signum: signal.Signals) -> None:
    suites = [suite(tmp_path, name, RUNS_UNTIL_INTERRUPTED) for name in ("one", "two")]
    # A process group of its own, as a shell gives `make test`: the signal goes to the group, as Ctrl-C's does.
    process = subprocess.Popen(runner(tmp_path, *suites), stdout=subprocess.PIPE, text=True, process_group=0)
    deadline = time.monotonic() + 120
    while not all((tmp_path / name / "started").exists() for name in ("one", "two")):
        assert process.poll() is None and time.monotonic() < deadline, "the suites did not start"
        time.sleep(0.1)
    os.killpg(process.pid, signum)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 1, output
    for name in ("one", "two"):
        assert (tmp_path / name / "torn-down").exists(), f"suite {name} was not torn down: {output}"
        assert f"[{name}] exit 2 after" in output, output
        child = int((tmp_path / name / "child").read_text())
        assert not alive(child), f"suite {name}'s child process outlived the interruption"


def alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie, dead but not yet reaped by its orphaned parent, does not)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state == "Z":
            return False
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return True
