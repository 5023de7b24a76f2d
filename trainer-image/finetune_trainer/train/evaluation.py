"""Held-out evaluation beyond the loss: greedy generation scored against the curated outputs.

Eval loss is computed by the Trainer on the same completion-only labels as training. On top of
it, a small fixed sample of eval sessions (the first `GENERATION_SAMPLES`, in file order, so runs
are comparable) is answered greedily and scored with exact match and SQuAD-style token F1 —
cheap signals that catch a model whose loss looks fine but that never stops or answers off-topic.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from finetune_trainer.train.data import Sample, alpaca_prompt, user_message

GENERATION_SAMPLES = 8
MAX_NEW_TOKENS = 128
# exp(80) ~ 5.5e34: beyond this the perplexity says nothing more, and inf is not valid JSON.
MAX_LOG_PERPLEXITY = 80.0


@dataclass(frozen=True)
class GenerationScores:
    exact_match: float
    token_f1: float
    samples: int


def last_epoch_loss(log_history: Sequence[Mapping[str, Any]]) -> float | None:
    """Mean logged training loss over the final epoch.

    Read from the Trainer's log history, which a resumed run inherits from its checkpoint, so
    it covers the whole last epoch even when this attempt trained only part of it (or none).
    """
    logged = [(float(entry["epoch"]), float(entry["loss"])) for entry in log_history if "loss" in entry]
    if not logged:
        return None
    final_epoch = logged[-1][0]
    recent = [loss for epoch, loss in logged if epoch > final_epoch - 1.0]
    return sum(recent) / len(recent)


def perplexity(eval_loss: float) -> float:
    return math.exp(min(eval_loss, MAX_LOG_PERPLEXITY))


def normalize(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


def exact_match(prediction: str, reference: str) -> float:
    return 1.0 if normalize(prediction) == normalize(reference) else 0.0


def token_f1(prediction: str, reference: str) -> float:
    predicted, expected = normalize(prediction), normalize(reference)
    if not predicted or not expected:
        return 1.0 if predicted == expected else 0.0
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def score(predictions: Sequence[str], references: Sequence[str]) -> GenerationScores:
    pairs = list(zip(predictions, references, strict=True))
    if not pairs:
        return GenerationScores(exact_match=0.0, token_f1=0.0, samples=0)
    return GenerationScores(
        exact_match=sum(exact_match(p, r) for p, r in pairs) / len(pairs),
        token_f1=sum(token_f1(p, r) for p, r in pairs) / len(pairs),
        samples=len(pairs),
    )


def prompt_ids(sample: Sample, tokenizer: Any) -> list[int]:
    if tokenizer.chat_template:
        messages = [{"role": "user", "content": user_message(sample)}]
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
        return list(ids["input_ids"])
    return list(tokenizer(alpaca_prompt(sample))["input_ids"])


def generate(model: Any, tokenizer: Any, samples: Sequence[Sample], max_prompt_tokens: int) -> list[str]:
    """Greedy answers, one sample at a time: a handful of samples does not justify padding logic."""
    answers = []
    for sample in samples:
        ids = prompt_ids(sample, tokenizer)[-max_prompt_tokens:]
        # Room for the reference answer and some slack: an untrained model that never emits EOS
        # must not spend MAX_NEW_TOKENS per sample.
        budget = min(MAX_NEW_TOKENS, 2 * len(tokenizer(sample.output)["input_ids"]) + 8)
        continuation = greedy_continuation(model, tokenizer, ids, budget, tokenizer.eos_token_id)
        answers.append(tokenizer.decode(continuation, skip_special_tokens=True).strip())
    return answers


def greedy_continuation(model: Any, tokenizer: Any, ids: list[int], budget: int, eos: int | list[int]) -> torch.Tensor:
    """The token ids the model generates greedily after `ids`: at most `budget`, ending at any of `eos`."""
    model.eval()
    inputs = torch.tensor([ids], device=next(model.parameters()).device)
    with torch.no_grad():
        output = model.generate(
            input_ids=inputs,
            attention_mask=torch.ones_like(inputs),
            max_new_tokens=budget,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=eos,
        )
    return output[0, len(ids) :]
