import json
from pathlib import Path

import pytest

from finetune_operator.api import TerminationMessage
from finetune_operator.api.contract import Reason
from finetune_trainer.train import outcome
from finetune_trainer.train.outcome import Outcome


def test_the_first_rank_to_claim_wins(tmp_path: Path) -> None:
    target = tmp_path / "outcome.json"
    first = Outcome(11, TerminationMessage.failure(Reason.INVALID_MODEL, "no config.json"), rank=1)
    assert outcome.claim(target, first)
    assert not outcome.claim(
        target, Outcome(20, TerminationMessage.failure(Reason.INTERNAL_ERROR, "peer gone"), rank=0)
    )
    assert outcome.read(target) == first
    assert [path.name for path in tmp_path.iterdir()] == ["outcome.json"]


def test_single_process_writes_the_termination_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(tmp_path / "log"))
    outcome.record(Outcome(0, TerminationMessage(outcome="Succeeded"), rank=0), {})
    assert json.loads((tmp_path / "log").read_text()) == {"outcome": "Succeeded"}


def test_under_the_supervisor_ranks_claim_failures_and_rank_zero_success(tmp_path: Path) -> None:
    environ = {"FINETUNE_RANK_OUTCOME": str(tmp_path / "claim.json")}
    outcome.record(Outcome(0, None, rank=1), environ)  # a rank that finished: nothing to say
    assert outcome.read(tmp_path / "claim.json") is None
    outcome.record(Outcome(143, None, rank=1), environ)  # stopped: a consequence, claimed on the side
    assert outcome.read(tmp_path / "claim.json") is None
    assert outcome.read(outcome.secondary(tmp_path / "claim.json")) == Outcome(143, None, rank=1)
