"""Varlen flash attention for packed batches: when it is chosen, and the exact metadata it is given.

The kernel itself needs an Ampere+ GPU; on CPU the attention function's plumbing (layouts, causality,
GQA, scaling) is checked with a reference kernel that runs SDPA sample by sample.
"""

import itertools
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from finetune_trainer.train import attention
from finetune_trainer.train.collate import IGNORE_INDEX, REAL_TOKENS, FlattenedSamplesCollator, PackedRowsCollator
from finetune_trainer.train.modelio import load_model

from .test_model_inputs import _config


@pytest.mark.parametrize(
    ("cuda", "capability", "precision", "available", "expected"),
    [
        (True, (9, 0), "bf16", True, attention.VARLEN),  # H100
        (True, (8, 0), "fp16", True, attention.VARLEN),  # A100 in fp16
        (True, (8, 9), "bf16", False, attention.SDPA),  # a torch build without varlen
        (True, (7, 5), "fp16", True, attention.SDPA),  # T4: no flash kernel
        (True, (9, 0), "fp32", True, attention.SDPA),  # flash needs half precision
        (False, None, "fp32", True, attention.SDPA),  # CPU
    ],
)
def test_varlen_only_where_the_flash_kernel_runs(
    cuda: bool, capability: tuple[int, int] | None, precision: str, available: bool, expected: str
) -> None:
    chosen = attention.choose(cuda=cuda, capability=capability, precision=precision, varlen_available=available)
    assert chosen == expected


def test_this_torch_ships_the_varlen_kernel_and_cpu_keeps_sdpa() -> None:
    assert attention.varlen_kernel() is not None
    assert attention.detect("bf16") == attention.SDPA  # no CUDA here


def test_flattened_batch_metadata_is_exact() -> None:
    batch = FlattenedSamplesCollator()(
        [
            {
                "input_ids": [5, 6, 7, 8, 9, 10, 11, 12],
                "labels": [-100, 6, 7, 8, -100, 10, 11, 12],
                "seq_lengths": [5, 3],
            },
            {"input_ids": [20, 21], "labels": [20, 21], "seq_lengths": [2]},
            {"input_ids": [30, 31, 32, 33, 34, 35], "seq_lengths": [1, 4, 1]},
        ]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 10, 11, 12, 20, 21, 30, 31, 32, 33, 34, 35]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 0, 0, 1, 2, 3, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7, 8, -100, -100, 11, 12, -100, 21, -100, -100, 32, 33, 34, -100]]
    assert batch["cu_seq_lens_q"].tolist() == [0, 5, 8, 10, 11, 15, 16]
    assert batch["cu_seq_lens_q"].dtype == torch.int32  # what flash kernels take
    assert batch["cu_seq_lens_k"] is batch["cu_seq_lens_q"]
    assert (batch["max_length_q"], batch["max_length_k"]) == (5, 5)
    assert isinstance(batch["max_length_q"], int)  # known on the host: no GPU sync to find it
    assert IGNORE_INDEX not in batch["input_ids"]  # no padding at all
    assert batch[REAL_TOKENS] == 16


def test_inconsistent_sample_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="do not add up"):
        FlattenedSamplesCollator()([{"input_ids": [1, 2, 3], "seq_lengths": [2]}])


def reference_kernel(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    cu_q: torch.Tensor,
    cu_k: torch.Tensor,
    max_q: int,
    max_k: int,
    *,
    scale: float | None = None,
    window_size: tuple[int, int] = (-1, -1),
    enable_gqa: bool = False,
) -> torch.Tensor:
    """varlen_attn's contract ([tokens, heads, dim] in and out), computed by SDPA one sample at a time."""
    assert torch.equal(cu_q, cu_k) and max_q == max_k == int((cu_q[1:] - cu_q[:-1]).max())
    outputs = []
    for start, end in itertools.pairwise(cu_q.tolist()):
        q, k, v = (tensor[start:end].transpose(0, 1) for tensor in (query, key, value))
        causal = window_size == (-1, 0)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale, enable_gqa=enable_gqa)
        outputs.append(out.transpose(0, 1))
    return torch.cat(outputs)


def grouped_query_model(folder: Path) -> Path:
    """A Llama with 2 key/value heads for 4 query heads (GQA, as Llama 3 has), random weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("grouped", [False, True], ids=["tiny-gpt", "gqa"])
def test_varlen_attention_trains_on_what_sdpa_rows_compute(tiny_model_dir: Path, tmp_path: Path, grouped: bool) -> None:
    """Same logits from the flattened batch through the varlen function as from separate rows with SDPA."""
    attention.register(reference_kernel)
    config = _config(tiny_model_dir)
    folder = grouped_query_model(tmp_path / "gqa") if grouped else tiny_model_dir
    rows_model = load_model(folder, config).eval()
    varlen_model = load_model(folder, config, attention.VARLEN).eval()
    examples: list[dict[str, Any]] = [
        {"input_ids": list(range(5, 17)), "seq_lengths": [7, 5]},
        {"input_ids": list(range(30, 39)), "seq_lengths": [9]},
    ]
    rows = PackedRowsCollator(pad_token_id=0)(examples)
    flat = FlattenedSamplesCollator()(examples)
    with torch.no_grad():
        expected = rows_model(input_ids=rows["input_ids"], position_ids=rows["position_ids"], use_cache=False).logits
        metadata = {key: value for key, value in flat.items() if key not in ("labels", REAL_TOKENS)}
        got = varlen_model(**metadata, use_cache=False).logits[0]
        real = torch.cat([expected[0, :12], expected[1, :9]])
        torch.testing.assert_close(got, real, rtol=1e-5, atol=1e-5)
        # Generation passes no sample boundaries: one causal sequence, as SDPA computes it.
        prompt = torch.tensor([[5, 6, 7, 8]])
        torch.testing.assert_close(
            varlen_model(input_ids=prompt).logits, rows_model(input_ids=prompt).logits, rtol=1e-5, atol=1e-5
        )


def test_the_trainer_trains_through_varlen_attention(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The Trainer, TRL's loss and PEFT carry the flattened batch's metadata down to the attention function."""
    from finetune_trainer.train import data, run
    from finetune_trainer.train.modelio import load_tokenizer

    from .conftest import write_dataset

    calls: list[int] = []

    def counting_kernel(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(len(args[3]) - 1)
        return reference_kernel(*args, **kwargs)

    attention.register(counting_kernel)
    write_dataset(tmp_path, train=16, evaluation=4)
    dataset = data.load_dataset(tmp_path / "dataset")
    config = _config(tiny_model_dir)
    trainer = run.build_trainer(
        model=load_model(tiny_model_dir, config, attention.VARLEN),
        tokenizer=load_tokenizer(tiny_model_dir),
        config=config,
        train=[data.to_record(sample, chat=False) for sample in dataset.train],
        evaluation_records=[data.to_record(sample, chat=False) for sample in dataset.eval],
        output_dir=tmp_path / "out",
        callbacks=[],
        attention_kernel=attention.VARLEN,
    )
    result = trainer.train()
    assert torch.isfinite(torch.tensor(result.training_loss))
    # Every sample went through the kernel as its own sequence (2 layers x forward passes).
    assert sum(calls) >= 2 * len(dataset.train)
