"""The curated dataset (workspace/dataset/) turned into prompt/completion records for TRL.

Each JSONL line is a sample `{"instruction", "input", "output", "metadata"}` written by curation.
The prompt is the model's own chat template when its tokenizer has one (a user turn holding the
instruction and input; the output is the assistant turn), otherwise this Alpaca-style template:

    ### Instruction:
    {instruction}

    ### Input:            <- only when input is non-empty
    {input}

    ### Response:
    {output}<eos>

Records are in TRL's prompt/completion shape, so TRL masks the prompt out of the loss
(completion-only loss) for both forms.

A dataset curated in `chat` format (manifest "format": "chat") holds conversations instead
(`conversation`): those are tokenized here with the model's chat template and labelled on the
assistant turns (`chatrender`), and reach TRL already tokenized (`input_ids`, `labels`).
A manifest without "format" was written before chat existed: instruction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed
from finetune_trainer.train import chatrender
from finetune_trainer.train.conversation import Conversation, conversation_text, parse_conversation

TRAIN_FILE = "train.jsonl"
EVAL_FILE = "eval.jsonl"
MANIFEST_FILE = "manifest.json"
INSTRUCTION = "instruction"
CHAT = "chat"


@dataclass(frozen=True)
class Sample:
    instruction: str
    input: str
    output: str


Record = Sample | Conversation


@dataclass(frozen=True)
class Dataset:
    train: Sequence[Record]
    eval: Sequence[Record]
    sha256: str
    """sha256 of `train.jsonl <sha256>\\neval.jsonl <sha256>\\n`, as curation computes it."""
    manifest: dict[str, Any]
    format: str = INSTRUCTION
    """instruction (every record a Sample) or chat (every record a Conversation)."""


def load_dataset(dataset_dir: Path) -> Dataset:
    manifest = read_manifest(dataset_dir / MANIFEST_FILE)
    form = manifest.get("format", INSTRUCTION)
    if form not in (INSTRUCTION, CHAT):
        raise JobFailed(Reason.CURATION_FAILED, f"{dataset_dir / MANIFEST_FILE}: unknown format {form!r}")
    splits = {}
    for name in (TRAIN_FILE, EVAL_FILE):
        path = dataset_dir / name
        if not path.is_file():
            raise JobFailed(Reason.CURATION_FAILED, f"{path} does not exist although the manifest says it was written")
        content = path.read_bytes()
        recorded = manifest.get("outputs", {}).get(name, {}).get("sha256")
        if recorded is not None and recorded != hashlib.sha256(content).hexdigest():
            raise JobFailed(Reason.CURATION_FAILED, f"{path} changed after curation (sha256 differs from the manifest)")
        splits[name] = (path, content)
    train = read_samples(splits[TRAIN_FILE][0], form)
    evaluation = read_samples(splits[EVAL_FILE][0], form)
    if not train:
        raise JobFailed(Reason.NO_SAMPLES_AFTER_CURATION, f"{splits[TRAIN_FILE][0]} holds no samples")
    if not evaluation:
        raise JobFailed(
            Reason.NO_SAMPLES_AFTER_CURATION,
            f"{splits[EVAL_FILE][0]} holds no samples: evaluation needs held-out data (raise curation.evalFraction)",
        )
    return Dataset(
        train=train,
        eval=evaluation,
        sha256=dataset_sha256(splits[TRAIN_FILE][1], splits[EVAL_FILE][1]),
        manifest=manifest,
        format=form,
    )


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest is curation's completion marker: without a successful one there is no dataset."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise JobFailed(Reason.CURATION_FAILED, f"{path} does not exist: curation did not complete") from error
    except (OSError, ValueError) as error:
        raise JobFailed(Reason.CURATION_FAILED, f"{path} is unreadable: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("outcome") != "Succeeded":
        raise JobFailed(Reason.CURATION_FAILED, f"{path} does not record a successful curation")
    return manifest


def dataset_sha256(train: bytes, evaluation: bytes) -> str:
    listing = (
        f"{TRAIN_FILE} {hashlib.sha256(train).hexdigest()}\n{EVAL_FILE} {hashlib.sha256(evaluation).hexdigest()}\n"
    )
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


def read_samples(path: Path, form: str = INSTRUCTION) -> list[Record]:
    samples: list[Record] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            record = parse_json_object(line, where)
            samples.append(parse_conversation(record, where) if form == CHAT else parse_sample(record, where))
    return samples


def parse_json_object(line: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise JobFailed(Reason.CURATION_FAILED, f"{where}: not JSON ({error.msg})") from error
    if not isinstance(record, dict):
        raise JobFailed(Reason.CURATION_FAILED, f"{where}: expected a JSON object")
    return record


def parse_sample(record: dict[str, Any], where: str) -> Sample:
    fields = {}
    for key in ("instruction", "input", "output"):
        value = record.get(key, "")
        if not isinstance(value, str):
            raise JobFailed(Reason.CURATION_FAILED, f"{where}: field {key!r} must be a string")
        fields[key] = value
    if not fields["instruction"].strip() or not fields["output"].strip():
        raise JobFailed(Reason.CURATION_FAILED, f"{where}: instruction and output must be non-empty")
    return Sample(**fields)


def alpaca_prompt(sample: Sample) -> str:
    if sample.input.strip():
        return f"### Instruction:\n{sample.instruction}\n\n### Input:\n{sample.input}\n\n### Response:\n"
    return f"### Instruction:\n{sample.instruction}\n\n### Response:\n"


def user_message(sample: Sample) -> str:
    return f"{sample.instruction}\n\n{sample.input}" if sample.input.strip() else sample.instruction


def to_record(sample: Sample, *, chat: bool) -> dict[str, Any]:
    """One TRL prompt/completion record; TRL appends EOS to plain-text completions itself."""
    if chat:
        return {
            "prompt": [{"role": "user", "content": user_message(sample)}],
            "completion": [{"role": "assistant", "content": sample.output}],
        }
    return {"prompt": alpaca_prompt(sample), "completion": sample.output}


def training_splits(dataset: Dataset, tokenizer: Any, model_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """TRL's records of both splits; a chat dataset needs the model's chat template (ChatTemplateMissing)."""
    if dataset.format == CHAT:
        chatrender.require_template(tokenizer, model_dir)
    chat = bool(tokenizer.chat_template)
    return {
        "train": training_records(dataset.train, tokenizer, chat=chat),
        "eval": training_records(dataset.eval, tokenizer, chat=chat),
    }


def training_records(records: Sequence[Record], tokenizer: Any, *, chat: bool) -> list[dict[str, Any]]:
    """TRL's records: prompt/completion for instruction samples, tokenized and labelled for conversations."""
    return [
        to_record(record, chat=chat) if isinstance(record, Sample) else tokenized(record, tokenizer)
        for record in records
    ]


def tokenized(conversation: Conversation, tokenizer: Any) -> dict[str, Any]:
    rendered = chatrender.render_with_labels(tokenizer, conversation)
    return {"input_ids": rendered.input_ids, "labels": rendered.labels}


def instruction_samples(records: Sequence[Record]) -> list[Sample]:
    return [record for record in records if isinstance(record, Sample)]


def conversations(records: Sequence[Record]) -> list[Conversation]:
    return [record for record in records if isinstance(record, Conversation)]


def sample_text(sample: Record) -> str:
    """Everything the model reads for this sample: the corpus a builtin tokenizer is trained on."""
    if isinstance(sample, Conversation):
        return conversation_text(sample)
    return alpaca_prompt(sample) + sample.output


def provenance(dataset: Dataset) -> dict[str, object]:
    """What metadata.json records about the data: content hash, split sizes, curation counts."""
    summary: dict[str, object] = {
        "sha256": dataset.sha256,
        "trainSamples": len(dataset.train),
        "evalSamples": len(dataset.eval),
        "format": dataset.format,
    }
    counts = dataset.manifest.get("counts")
    if isinstance(counts, dict):
        summary.update({key: counts[key] for key in ("sourceRecords", "rejected", "redactions") if key in counts})
    if "curatorVersion" in dataset.manifest:
        summary["curatorVersion"] = dataset.manifest["curatorVersion"]
    return summary
