"""The operator as a local process against the local cluster: how the demo, the integration tests and the scale
benchmark run it.

`python -m finetune_operator` with this Python (the project's venv), logging plain text to a file, metrics off,
/healthz on the given port, in a session of its own: a test can SIGKILL its process group like a dying node,
and Ctrl-C in a terminal reaches the caller, which stops it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def start_operator(
    kubeconfig: Path, log: Path, health_port: int, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The started operator, appending to `log`; `env` adds to (or overrides) its environment."""
    environment = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "FTO_METRICS_PORT": "0",
        "FTO_HEALTH_PORT": str(health_port),
        "FTO_LOG_FORMAT": "plain",
        **(env or {}),
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "finetune_operator"],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
