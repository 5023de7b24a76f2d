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
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune_operator.api.contract import Reason
from finetune_trainer.failures import JobFailed

TRAIN_FILE = "train.jsonl"
EVAL_FILE = "eval.jsonl"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class Sample:
    instruction: str
    input: str
    output: str


@dataclass(frozen=True)
class Dataset:
    train: list[Sample]
    eval: list[Sample]
    sha256: str
    """sha256 of `train.jsonl <sha256>\\neval.jsonl <sha256>\\n`, as curation computes it."""
    manifest: dict[str, Any]


def load_dataset(dataset_dir: Path) -> Dataset:
    manifest = read_manifest(dataset_dir / MANIFEST_FILE)
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
    train = read_samples(splits[TRAIN_FILE][0])
    evaluation = read_samples(splits[EVAL_FILE][0])
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


def read_samples(path: Path) -> list[Sample]:
    samples = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            samples.append(parse_sample(line, f"{path.name}:{number}"))
    return samples


def parse_sample(line: str, where: str) -> Sample:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise JobFailed(Reason.CURATION_FAILED, f"{where}: not JSON ({error.msg})") from error
    if not isinstance(record, dict):
        raise JobFailed(Reason.CURATION_FAILED, f"{where}: expected a JSON object")
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


def sample_text(sample: Sample) -> str:
    """Everything the model reads for this sample: the corpus a builtin tokenizer is trained on."""
    return alpaca_prompt(sample) + sample.output


def provenance(dataset: Dataset) -> dict[str, object]:
    """What metadata.json records about the data: content hash, split sizes, curation counts."""
    summary: dict[str, object] = {
        "sha256": dataset.sha256,
        "trainSamples": len(dataset.train),
        "evalSamples": len(dataset.eval),
    }
    counts = dataset.manifest.get("counts")
    if isinstance(counts, dict):
        summary.update({key: counts[key] for key in ("sourceRecords", "rejected", "redactions") if key in counts})
    if "curatorVersion" in dataset.manifest:
        summary["curatorVersion"] = dataset.manifest["curatorVersion"]
    return summary
