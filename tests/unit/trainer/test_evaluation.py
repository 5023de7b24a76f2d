import math

import pytest

from finetune_trainer.train import evaluation


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("lint then build.", "lint then build.", 1.0),
        ("Lint  then BUILD .", "lint then build.", 1.0),
        ("build then lint.", "lint then build.", 0.0),
        ("", "lint", 0.0),
    ],
)
def test_exact_match(prediction: str, reference: str, expected: float) -> None:
    assert evaluation.exact_match(prediction, reference) == expected


def test_token_f1() -> None:
    assert evaluation.token_f1("lint then build", "lint then build") == 1.0
    assert evaluation.token_f1("deploy", "lint then build") == 0.0
    # 2 common of 3 predicted and 4 expected: p=2/3, r=1/2 -> f1 = 4/7
    assert evaluation.token_f1("lint then push", "lint then build now") == pytest.approx(4 / 7)
    assert evaluation.token_f1("", "") == 1.0
    assert evaluation.token_f1("", "x") == 0.0


def test_score_averages_over_samples() -> None:
    scores = evaluation.score(["a b", "c"], ["a b", "d"])
    assert (scores.exact_match, scores.token_f1, scores.samples) == (0.5, 0.5, 2)
    assert evaluation.score([], []).samples == 0
    with pytest.raises(ValueError):
        evaluation.score(["a"], [])


def test_perplexity_saturates_instead_of_overflowing() -> None:
    assert evaluation.perplexity(math.log(8.0)) == pytest.approx(8.0)
    assert math.isfinite(evaluation.perplexity(1e6))


def test_last_epoch_loss_averages_the_final_epoch() -> None:
    history = [
        {"loss": 9.0, "epoch": 0.5, "step": 1},
        {"loss": 7.0, "epoch": 1.0, "step": 2},
        {"eval_loss": 5.0, "epoch": 1.0, "step": 2},
        {"loss": 4.0, "epoch": 1.5, "step": 3},
        {"loss": 2.0, "epoch": 2.0, "step": 4},
    ]
    assert evaluation.last_epoch_loss(history) == 3.0
    assert evaluation.last_epoch_loss([]) is None
