"""End-to-end on kind: real images, the dev overlay, the quickstart to Completed (tests/e2e/kind.sh).

Needs a Docker engine and kind; skips with the reason otherwise. Run with `make e2e-kind` or
`pytest -m e2e tests/e2e`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "kind.sh"

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def docker_problem() -> str | None:
    docker = os.environ.get("DOCKER", "docker")
    if shutil.which(docker) is None:
        return f"{docker} is not installed"
    try:
        result = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return f"`{docker} info` did not answer within 30 s"
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return f"no Docker engine: `{docker} info` failed: {lines[-1] if lines else result.returncode}"
    return None


def test_quickstart_completes_on_kind() -> None:
    problem = docker_problem()
    if problem is not None:
        pytest.skip(f"{problem}; the kind e2e test needs a Docker engine")
    if shutil.which("kind") is None:
        pytest.skip("kind is not installed (https://kind.sigs.k8s.io); the kind e2e test needs it")
    # Output goes straight to the terminal (pytest -s) or the captured log: the build and the training are long.
    result = subprocess.run(["bash", str(SCRIPT)], timeout=3600, check=False)
    assert result.returncode == 0, f"{SCRIPT.name} failed with exit code {result.returncode}; see its output"
