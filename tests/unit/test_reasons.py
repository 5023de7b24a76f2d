"""Every reason the operator can write is in the catalogue that docs/reasons.md is generated from."""

from __future__ import annotations

import ast
from pathlib import Path

from finetune_operator.api.contract import REASONS, Reason
from finetune_operator.api.reasons import OPERATOR_REASONS, catalogue
from finetune_operator.api.status import Phase

OPERATOR = Path(__file__).resolve().parents[2] / "operator" / "finetune_operator"
# Where the operator decides a job's reason: Decision(phase, reason, ...), the reconciler's own failures, and
# refused creations (creation.Refusal(reason, ...)).
DECIDERS = ("lifecycle.py", "reconciler.py", "creation.py")


def decided_reasons(source: str) -> set[str]:
    """The string literal reasons passed to Decision(...) (second positional argument) and Refusal(...) (first)
    in `source`."""
    found = set()
    position = {"Decision": 1, "Refusal": 0}
    for node in ast.walk(ast.parse(source)):
        called = getattr(node, "func", None)
        index = position.get(getattr(called, "id", ""), -1)
        if isinstance(node, ast.Call) and 0 <= index < len(node.args):
            reason = node.args[index]
            if isinstance(reason, ast.Constant) and isinstance(reason.value, str) and reason.value:
                found.add(reason.value)
    return found


def test_every_reason_the_operator_decides_is_catalogued() -> None:
    decided = set().union(*(decided_reasons((OPERATOR / name).read_text()) for name in DECIDERS))
    assert len(decided) > 15, "the lifecycle moved? this test would check nothing"
    listed = {entry.reason for entry in catalogue()}
    assert decided - listed == set(), "add these reasons to finetune_operator/api/reasons.py"


def test_the_scan_reads_decisions() -> None:
    source = 'Decision(Phase.FAILED, "A", "m")\nDecision(current, decision.reason, "")\nOther(x, "B")\n'
    source += 'Refusal("C", m)\n'
    assert decided_reasons(source) == {"A", "C"}


def test_catalogue_has_each_reason_once_and_every_trainer_reason() -> None:
    names = [entry.reason for entry in catalogue()]
    assert len(names) == len(set(names))
    assert {reason.value for reason in Reason} <= set(names)


def test_failed_reasons_say_who_acts_and_others_do_not() -> None:
    for entry in catalogue():
        assert entry.meaning and entry.action, entry.reason
        if entry.phases == (Phase.FAILED,):
            assert entry.failure_kind is not None, entry.reason
        if Phase.FAILED not in entry.phases:
            assert entry.failure_kind is None, entry.reason


def test_operator_reasons_agree_with_the_contract_on_shared_names() -> None:
    for entry in OPERATOR_REASONS:
        if entry.reason in {reason.value for reason in REASONS}:
            assert entry.failure_kind is REASONS[Reason(entry.reason)].failure_kind, entry.reason
