"""Fixtures for curation tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from finetune_trainer.curate.cli import main

from .helpers import Run

Curate = Callable[..., Run]


@pytest.fixture
def curate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Curate:
    """Run `python -m finetune_trainer.curate` in-process on a glob, with flags."""
    termination_log = tmp_path / "termination-log"
    monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(termination_log))
    monkeypatch.delenv("FINETUNE_CONFIG", raising=False)

    def run(source: str | Path, *flags: str, output_dir: Path | None = None) -> Run:
        target = output_dir or tmp_path / "workspace" / "dataset"
        termination_log.unlink(missing_ok=True)
        code = main(["--input", str(source), "--output-dir", str(target), *flags])
        return Run(code, json.loads(termination_log.read_text()), target)

    return run
