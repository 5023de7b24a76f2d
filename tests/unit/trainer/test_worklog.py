"""Logs on the workspace (finetune_trainer.worklog): one bounded file per attempt and rank."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from finetune_trainer import worklog


def test_one_file_per_step_pod_and_rank(tmp_path: Path) -> None:
    env = {"HOSTNAME": "job-train-abcde", "RANK": "1"}
    assert worklog.path_for(tmp_path, "train", env) == tmp_path / "logs" / "train-job-train-abcde-rank1.jsonl"


def test_the_files_stay_bounded_and_keep_the_newest_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worklog, "MAX_BYTES", 4096)
    logger = logging.getLogger("test_worklog_bounded")
    logger.propagate, logger.level = False, logging.INFO
    path = worklog.attach(logger, tmp_path / "logs" / "train-p-rank0.jsonl")
    assert path is not None
    for index in range(1000):
        logger.info('{"line": %d}', index)
    files = sorted((tmp_path / "logs").iterdir())
    assert [f.name for f in files] == ["train-p-rank0.jsonl", "train-p-rank0.jsonl.1"]
    assert sum(f.stat().st_size for f in files) <= 4096 + 64
    assert path.read_text().splitlines()[-1] == '{"line": 999}'
    for handler in logger.handlers:
        handler.close()


def test_a_volume_that_refuses_costs_only_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the folder should be")
    assert worklog.attach(logging.getLogger("test_worklog_refused"), blocker / "x.jsonl") is None
