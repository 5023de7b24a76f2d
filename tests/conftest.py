"""Nothing is skipped by accident: the run fails when its skips differ from tests/skips.allowed.

A skip hides a test that did not run behind a passing run; each one allowed is listed with the reason it may
give and the condition under which it is expected (the kind test, where no Docker engine exists).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ALLOWED = Path(__file__).with_name("skips.allowed")


def _no_docker_engine() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode != 0
    except (OSError, subprocess.TimeoutExpired):
        return True


CONDITIONS: dict[str, Callable[[], bool]] = {"always": lambda: True, "no-docker": _no_docker_engine}


@dataclass(frozen=True)
class AllowedSkip:
    test: str
    reason: re.Pattern[str]
    expected: Callable[[], bool]
    """Whether the skip is expected on this machine (asked only when the test ran and did not skip)."""


def allowed_skips(text: str) -> dict[str, AllowedSkip]:
    entries = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            test, reason, condition = (part.strip() for part in line.split(" | "))
            entries[test] = AllowedSkip(test, re.compile(reason), CONDITIONS[condition])
    return entries


def skip_problems(allowed: dict[str, AllowedSkip], collected: set[str], skipped: dict[str, str]) -> list[str]:
    """What differs between this run's skips (test id -> reason) and the allowed ones."""
    problems = [
        f"{test} skipped ({reason}): not in {ALLOWED.name}"
        for test, reason in skipped.items()
        if test not in allowed or not allowed[test].reason.search(reason)
    ]
    problems += [
        f"{test} did not skip although {ALLOWED.name} expects it to here"
        for test, entry in allowed.items()
        if test in collected and test not in skipped and entry.expected()
    ]
    return problems


def plain_id(nodeid: str) -> str:
    """The id without the `@group` pytest-xdist's loadgroup appends (tests/integration/conftest.py)."""
    return re.sub(r"@[^\]:@]*$", "", nodeid)


class SkipLedger:
    def __init__(self) -> None:
        self.collected: set[str] = set()
        self.skipped: dict[str, str] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.collected = {plain_id(item.nodeid) for item in items}

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        """Under pytest-xdist (`make test`) the controller collects nothing itself: every worker collects all."""
        self.collected = {plain_id(nodeid) for nodeid in ids}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and isinstance(report.longrepr, tuple):
            self.skipped[plain_id(report.nodeid)] = str(report.longrepr[2]).removeprefix("Skipped: ")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if session.config.option.collectonly or session.exitstatus not in (0, 1):
            return
        problems = skip_problems(allowed_skips(ALLOWED.read_text()), self.collected, self.skipped)
        if problems:
            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.section("skips that differ from tests/skips.allowed", red=True)
                for problem in problems:
                    reporter.line(problem)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    # Under pytest-xdist only the controller keeps the ledger: it sees every worker's reports, a worker only its own.
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(SkipLedger(), "skip-ledger")
