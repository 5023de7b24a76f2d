import hashlib
import json
from pathlib import Path

import pytest

from finetune_operator.api.contract import ExitCode, Reason, exit_code_for
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import data

from .conftest import write_dataset


def test_loads_both_splits_and_hashes_them_like_curation(tmp_path: Path) -> None:
    write_dataset(tmp_path, train=5, evaluation=2)
    dataset = data.load_dataset(tmp_path / "dataset")
    assert (len(dataset.train), len(dataset.eval)) == (5, 2)
    train = hashlib.sha256((tmp_path / "dataset" / "train.jsonl").read_bytes()).hexdigest()
    evaluation = hashlib.sha256((tmp_path / "dataset" / "eval.jsonl").read_bytes()).hexdigest()
    listing = f"train.jsonl {train}\neval.jsonl {evaluation}\n"
    assert dataset.sha256 == hashlib.sha256(listing.encode()).hexdigest()
    assert data.provenance(dataset) == {
        "sha256": dataset.sha256,
        "trainSamples": 5,
        "evalSamples": 2,
        "format": "instruction",  # a manifest without "format" was curated before chat existed
        "sourceRecords": 10,
    }


@pytest.mark.parametrize(
    ("train", "evaluation", "reason", "text"),
    [
        (None, "", Reason.CURATION_FAILED, "train.jsonl does not exist"),
        ("", "", Reason.NO_SAMPLES_AFTER_CURATION, "train.jsonl holds no samples"),
        ('{"instruction": "a", "output": "b"}\n', "\n", Reason.NO_SAMPLES_AFTER_CURATION, "evalFraction"),
        ("{oops\n", "", Reason.CURATION_FAILED, "train.jsonl:1: not JSON"),
        ('{"instruction": "a", "output": 3}\n', "", Reason.CURATION_FAILED, "'output' must be a string"),
        ('{"instruction": " ", "output": "b"}\n', "", Reason.CURATION_FAILED, "must be non-empty"),
        ("[1]\n", "", Reason.CURATION_FAILED, "expected a JSON object"),
    ],
)
def test_bad_datasets_are_user_data_errors(
    tmp_path: Path, train: str | None, evaluation: str, reason: Reason, text: str
) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"outcome": "Succeeded"}))
    (tmp_path / "eval.jsonl").write_text(evaluation)
    if train is not None:
        (tmp_path / "train.jsonl").write_text(train)
    assert_data_error(tmp_path, reason, text)


@pytest.mark.parametrize(
    ("manifest", "text"),
    [
        (None, "manifest.json does not exist: curation did not complete"),
        ("{broken", "manifest.json is unreadable"),
        ('{"outcome": "Failed"}', "does not record a successful curation"),
    ],
)
def test_without_a_successful_manifest_there_is_no_dataset(tmp_path: Path, manifest: str | None, text: str) -> None:
    write_dataset(tmp_path, train=3, evaluation=1)
    folder = tmp_path / "dataset"
    if manifest is None:
        (folder / "manifest.json").unlink()
    else:
        (folder / "manifest.json").write_text(manifest)
    assert_data_error(folder, Reason.CURATION_FAILED, text)


def test_a_split_changed_after_curation_is_refused(tmp_path: Path) -> None:
    write_dataset(tmp_path, train=3, evaluation=1)
    with (tmp_path / "dataset" / "eval.jsonl").open("a") as split:
        split.write('{"instruction": "injected", "output": "x"}\n')
    assert_data_error(tmp_path / "dataset", Reason.CURATION_FAILED, "eval.jsonl changed after curation")


def assert_data_error(folder: Path, reason: Reason, text: str) -> None:
    with pytest.raises(JobFailed) as failure:
        data.load_dataset(folder)
    assert failure.value.reason is reason
    assert exit_code_for(reason) is ExitCode.USER_DATA_ERROR
    assert text in failure.value.message


def test_alpaca_prompt_with_and_without_input() -> None:
    with_input = data.Sample(instruction="Do X", input="context", output="done")
    assert data.alpaca_prompt(with_input) == "### Instruction:\nDo X\n\n### Input:\ncontext\n\n### Response:\n"
    assert data.alpaca_prompt(data.Sample("Do X", "", "done")) == "### Instruction:\nDo X\n\n### Response:\n"


def test_records_are_prompt_completion_pairs() -> None:
    sample = data.Sample(instruction="Do X", input="ctx", output="done")
    assert data.to_record(sample, chat=False) == {"prompt": data.alpaca_prompt(sample), "completion": "done"}
    assert data.to_record(sample, chat=True) == {
        "prompt": [{"role": "user", "content": "Do X\n\nctx"}],
        "completion": [{"role": "assistant", "content": "done"}],
    }


def test_metadata_and_missing_input_are_accepted(tmp_path: Path) -> None:
    line = json.dumps({"instruction": "a", "output": "b", "metadata": {"x": 1}})
    (tmp_path / "s.jsonl").write_text(line + "\n\n")
    assert data.read_samples(tmp_path / "s.jsonl") == [data.Sample("a", "", "b")]
