"""The champion comparison's loss: token-weighted over batches, equal to the model's own loss on one batch."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config

from finetune_trainer.train import champion


def test_token_loss_is_the_models_own_loss_on_one_unpadded_batch() -> None:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, n_positions=32))
    rows = [{"input_ids": [1, 5, 7, 9, 11, 3], "labels": [1, 5, 7, 9, 11, 3]}]
    [batch] = champion.eval_batches(rows, pad_token_id=0, batch_size=8)
    expected = model.eval()(input_ids=batch["input_ids"], labels=batch["labels"]).loss.item()
    assert champion.token_loss(model, [batch]) == pytest.approx(expected, rel=1e-5)


def test_token_loss_weights_batches_by_their_label_tokens() -> None:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, n_positions=32))
    long, short = [2, 4, 6, 8, 10, 12, 14, 16], [3, 5]
    batches = champion.eval_batches([{"input_ids": long}, {"input_ids": short}], pad_token_id=0, batch_size=1)
    per_batch = [champion.token_loss(model, [batch]) for batch in batches]
    # 7 predicted tokens in the first row, 1 in the second: a mean of batch means would weigh them equally.
    assert champion.token_loss(model, batches) == pytest.approx((7 * per_batch[0] + per_batch[1]) / 8, rel=1e-5)
