"""What the model is trained on: packed rows that keep samples apart, and loss on outputs only."""

import itertools
from collections import Counter
from pathlib import Path

import pytest
import torch

from finetune_operator.api import JobConfig
from finetune_trainer.train import data, evaluation, run
from finetune_trainer.train.collate import IGNORE_INDEX, REAL_TOKENS, PackedRowsCollator
from finetune_trainer.train.config import Device, TrainConfig, resolve
from finetune_trainer.train.modelio import load_model, load_tokenizer

from .conftest import write_dataset, write_job


def test_packed_samples_do_not_see_each_other(tiny_model_dir: Path) -> None:
    model = load_model(tiny_model_dir, config=_config(tiny_model_dir)).eval()
    first, second = [5, 6, 7, 8, 9], [10, 11, 12]
    row = PackedRowsCollator(pad_token_id=0)([{"input_ids": first + second, "seq_lengths": [5, 3]}])
    assert row["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2]]
    # As in training (TRL passes use_cache=False): transformers only detects packed rows without a KV cache.
    with torch.no_grad():
        packed = model(input_ids=row["input_ids"], position_ids=row["position_ids"], use_cache=False).logits[0]
        alone = model(input_ids=torch.tensor([second]), use_cache=False).logits[0]
        leaky = model(input_ids=row["input_ids"], use_cache=False).logits[0]  # no positions: plain causal
    torch.testing.assert_close(packed[5:], alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(leaky[5:], alone, atol=1e-3)


def test_collator_pads_rows_and_masks_sample_starts() -> None:
    batch = PackedRowsCollator(pad_token_id=1)(
        [
            {"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "seq_lengths": [3]},
            {"input_ids": [8, 9, 10, 11, 12], "labels": [8, 9, -100, 11, 12], "seq_lengths": [2, 3]},
        ]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7, 1, 1], [8, 9, 10, 11, 12]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, -100], [-100, 9, -100, 11, 12]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 0], [0, 1, 0, 1, 2]]
    assert "attention_mask" not in batch
    assert batch[REAL_TOKENS] == 8  # padding not counted


# A ChatML-style template, as instruction-tuned models ship: the chat path must mask the prompt too.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|pad|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|pad|>assistant\n{% endif %}"
)


@pytest.mark.parametrize("chat", [False, True], ids=["alpaca", "chat-template"])
def test_loss_is_on_outputs_only(tmp_path: Path, tiny_model_dir: Path, chat: bool) -> None:
    write_dataset(tmp_path, train=24, evaluation=4)
    dataset = data.load_dataset(tmp_path / "dataset")
    tokenizer = load_tokenizer(tiny_model_dir)
    # The builtin model ships a template; each case sets the one it tests (none: the Alpaca form).
    tokenizer.chat_template = CHAT_TEMPLATE if chat else None
    config = _config(tiny_model_dir)
    trainer = run.build_trainer(
        model=load_model(tiny_model_dir, config),
        tokenizer=tokenizer,
        config=config,
        train=[data.to_record(sample, chat=chat) for sample in dataset.train],
        evaluation_records=[data.to_record(sample, chat=chat) for sample in dataset.eval],
        output_dir=tmp_path / "out",
        callbacks=[],
    )
    trained_on: Counter[str] = Counter()
    prompts_seen = 0
    for batch in trainer.get_train_dataloader():
        for ids, labels, positions in zip(batch["input_ids"], batch["labels"], batch["position_ids"], strict=True):
            starts = [*(positions == 0).nonzero().flatten().tolist(), len(ids)]
            for start, end in itertools.pairwise(starts):
                segment, target = ids[start:end], labels[start:end]
                if (segment == tokenizer.pad_token_id).all():
                    continue
                learned = (target != IGNORE_INDEX).nonzero().flatten()
                # The labelled tokens are one contiguous tail of the sample: the completion.
                assert learned.tolist() == list(range(int(learned[0]), len(segment)))
                torch.testing.assert_close(target[learned], segment[learned])
                trained_on[tokenizer.decode(segment[learned])] += 1
                prompt = tokenizer.decode(segment[: int(learned[0])])
                if chat:
                    assert prompt.startswith("<|pad|>user\n") and prompt.endswith("<|pad|>assistant\n")
                else:
                    assert prompt.startswith("### Instruction:\n") and prompt.endswith("### Response:\n")
                prompts_seen += 1
    assert prompts_seen == len(dataset.train)
    # The template closes the assistant turn with <|im_end|>\n (EOS); plain prompts get EOS appended by TRL.
    ending = tokenizer.eos_token + ("\n" if chat else "")
    assert trained_on == Counter(sample.output + ending for sample in dataset.train)


def _config(model_dir: Path) -> TrainConfig:
    job = JobConfig.load(write_job(model_dir.parent, {"maxSeqLength": 128, "batchSize": 4}))
    return resolve(
        job.spec, base_model_path=None, dataset_sha256="0" * 64, device=Device(cuda_devices=0, bf16_supported=False)
    )


def test_generation_prompts_match_the_training_prompts(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir)
    tokenizer.chat_template = None  # a base model without a template
    sample = data.Sample(instruction="Do X", input="ctx", output="done")
    assert tokenizer.decode(evaluation.prompt_ids(sample, tokenizer)) == data.alpaca_prompt(sample)
    tokenizer.chat_template = CHAT_TEMPLATE
    assert (
        tokenizer.decode(evaluation.prompt_ids(sample, tokenizer))
        == "<|pad|>user\nDo X\n\nctx<|im_end|>\n<|pad|>assistant\n"
    )


def test_lora_layers_see_bf16_inputs_under_bf16_autocast(tmp_path: Path, tiny_model_dir: Path) -> None:
    """PEFT's per-layer cast of the input to the fp32 adapter dtype is off while training under autocast."""
    write_dataset(tmp_path, train=16, evaluation=4)
    dataset = data.load_dataset(tmp_path / "dataset")
    job = JobConfig.load(write_job(tmp_path, {"maxSeqLength": 128, "batchSize": 4, "epochs": 1, "precision": "bf16"}))
    device = Device(cuda_devices=0, bf16_supported=False)  # CPU honours an explicit bf16
    config = resolve(job.spec, base_model_path=None, dataset_sha256="0" * 64, device=device)
    trainer = run.build_trainer(
        model=load_model(tiny_model_dir, config),
        tokenizer=load_tokenizer(tiny_model_dir),
        config=config,
        train=[data.to_record(sample, chat=False) for sample in dataset.train],
        evaluation_records=[data.to_record(sample, chat=False) for sample in dataset.eval],
        output_dir=tmp_path / "out",
        callbacks=[],
    )
    adapter = next(module for name, module in trainer.model.named_modules() if name.endswith("lora_A.default"))
    assert adapter.weight.dtype == torch.float32  # PEFT keeps the adapter in fp32
    seen: set[torch.dtype] = set()
    adapter.register_forward_pre_hook(lambda module, inputs: seen.add(inputs[0].dtype))
    run.fit(trainer, config, None)
    assert seen == {torch.bfloat16}
