"""The shapes of the integration tests' fixtures (tests/integration/conftest.py), for the tests and helpers that
take them as arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Kubectl(Protocol):
    """kubectl as the cluster's admin: its stdout; raises AssertionError carrying stderr if it fails (unless
    check=False)."""

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> str: ...


class WaitFor(Protocol):
    """Polls `probe` until it returns something other than None (or False); fails after `timeout` seconds."""

    def __call__(self, probe: Callable[[], T | None], what: str, timeout: float = 60.0) -> T: ...
