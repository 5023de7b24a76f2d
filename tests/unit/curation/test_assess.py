"""How the curator builds the extension's Assessor: builds from before the chat format stay usable as a baseline."""

from __future__ import annotations

import pytest

from finetune_trainer.curate import assess
from finetune_trainer.curate.assess import Rules


def test_instruction_records_build_the_assessor_with_the_five_arguments_of_builds_before_the_chat_format(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[tuple[object, ...]] = []

    def before_the_chat_format(
        min_success_rate: float, eval_fraction: float, near_duplicates: bool, max_tokens: int | None, keep_texts: bool
    ) -> None:
        built.append((min_success_rate, eval_fraction, near_duplicates, max_tokens, keep_texts))

    monkeypatch.setattr(assess, "Assessor", before_the_chat_format)
    assess.Assess(Rules(0.5, 0.1, True, None))
    assert built == [(0.5, 0.1, True, None, False)]


def test_chat_records_ask_the_assessor_for_chat(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[bool] = []

    def with_chat(*arguments: object, chat: bool = False) -> None:
        asked.append(chat)

    monkeypatch.setattr(assess, "Assessor", with_chat)
    assess.Assess(Rules(0.5, 0.1, True, None, chat=True))
    assert asked == [True]
