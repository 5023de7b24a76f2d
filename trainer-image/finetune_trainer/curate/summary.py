"""What a run produced, in the three shapes readers need.

- `dataset_summary`: status.dataset of the FineTuningJob (termination message).
- `manifest`: dataset/manifest.json, the full provenance record.
- `verdict`: whether the run fails, and with which reason and message.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from finetune_operator.api import CurationFormat
from finetune_operator.api.contract import Reason
from finetune_trainer.curate import CURATOR_VERSION, dedup, tokens
from finetune_trainer.curate.outcomes import CONVERSATION_REJECTIONS, REJECTIONS, Outcome
from finetune_trainer.curate.output import MANIFEST, WrittenFile
from finetune_trainer.curate.pipeline import Tally
from finetune_trainer.curate.settings import Settings
from finetune_trainer.curate.sources import SourceStats
from finetune_trainer.failures import JobFailed


def combined_sha256(outputs: dict[str, WrittenFile]) -> str:
    listing = f"train.jsonl {outputs['train'].sha256}\neval.jsonl {outputs['eval'].sha256}\n"
    return hashlib.sha256(listing.encode()).hexdigest()


def rejected_counts(tally: Tally, chat: bool) -> dict[str, int]:
    """Counts per outcome; a conversation's defects only in chat format (the instruction format has none)."""
    outcomes = REJECTIONS if chat else [outcome for outcome in REJECTIONS if outcome not in CONVERSATION_REJECTIONS]
    return {str(outcome): tally.rejected[outcome] for outcome in outcomes}


def dataset_summary(
    sources: list[SourceStats], tally: Tally, outputs: dict[str, WrittenFile], chat: bool
) -> dict[str, Any]:
    return {
        "sourceFiles": len(sources),
        "sourceRecords": tally.records,
        "samples": outputs["train"].records + outputs["eval"].records,
        "trainSamples": outputs["train"].records,
        "evalSamples": outputs["eval"].records,
        "sha256": combined_sha256(outputs),
        "rejected": rejected_counts(tally, chat),
        "redactions": tally.redactions.total(),
    }


def verdict(tally: Tally, settings: Settings) -> JobFailed | None:
    malformed = tally.rejected[Outcome.MALFORMED]
    if tally.records and malformed / tally.records > settings.max_malformed_fraction:
        first = tally.malformed_examples[0]
        share = malformed / tally.records
        return JobFailed(
            Reason.CURATION_FAILED,
            f"{malformed} of {tally.records} lines ({share:.1%}) are malformed, above the "
            f"{settings.max_malformed_fraction:.0%} limit; first at {first['source']}:{first['line']}: "
            f"{first['error']} (see dataset/{MANIFEST})",
        )
    if tally.kept == 0:
        reasons = ", ".join(f"{count} {outcome}" for outcome, count in tally.rejected.most_common() if count)
        return JobFailed(
            Reason.NO_SAMPLES_AFTER_CURATION,
            f"0 of {tally.records} sessions survived curation: {reasons or 'the source files are empty'} "
            f"(see dataset/{MANIFEST})",
        )
    return None


def manifest(
    settings: Settings,
    sources: list[SourceStats],
    tally: Tally,
    outputs: dict[str, WrittenFile] | None,
    failure: JobFailed | None,
    started: datetime,
    job: dict[str, Any],
) -> dict[str, Any]:
    finished = datetime.now(UTC)
    chat = settings.curation.format is CurationFormat.CHAT
    document: dict[str, Any] = {
        "curatorVersion": CURATOR_VERSION,
        "outcome": "Failed" if failure else "Succeeded",
        "format": str(settings.curation.format or CurationFormat.INSTRUCTION),
        "job": job,
        "startedAt": _timestamp(started),
        "finishedAt": _timestamp(finished),
        "durationSeconds": round((finished - started).total_seconds(), 3),
        "config": {
            **settings.curation.model_dump(by_alias=True),
            "sourceGlob": settings.source_glob,
            "tokenCounter": tokens.describe(settings.tokenizer),
            "maxMalformedFraction": settings.max_malformed_fraction,
            "maxLineBytes": settings.max_line_bytes,
            "nearDuplicates": {
                "method": "one-permutation MinHash-LSH",
                "shingleBytes": dedup.SHINGLE_BYTES,
                "bands": dedup.BANDS,
                "rows": dedup.ROWS,
            },
        },
        "sources": [_source(stats) for stats in sources],
        "counts": {
            "sourceRecords": tally.records,
            "kept": tally.kept,
            "cappedByMaxSamples": tally.kept - _samples(outputs) if outputs else 0,
            "rejected": rejected_counts(tally, chat),
            "duplicates": {"exact": tally.exact_duplicates, "near": tally.near_duplicates},
            "redactions": tally.redactions.total(),
            "redactionsByRule": dict(sorted(tally.redactions.items())),
        },
        "malformedExamples": tally.malformed_examples,
    }
    if chat:
        document["rejectedExamples"] = {
            str(outcome): tally.rejected_examples.get(outcome, []) for outcome in CONVERSATION_REJECTIONS
        }
    if failure:
        document["reason"] = str(failure.reason)
        document["message"] = failure.message
    if outputs:
        document["outputs"] = {
            written.name: {"records": written.records, "bytes": written.bytes, "sha256": written.sha256}
            for written in outputs.values()
        }
        document["samples"] = _samples(outputs)
        document["sha256"] = combined_sha256(outputs)
    return document


def _samples(outputs: dict[str, WrittenFile]) -> int:
    return sum(written.records for written in outputs.values())


def _source(stats: SourceStats) -> dict[str, Any]:
    source: dict[str, Any] = {
        "path": str(stats.path),
        "bytes": stats.bytes,
        "sha256": stats.sha256,
        "compression": "gzip" if stats.compressed else None,
        "lines": stats.lines,
    }
    if stats.error:
        source["error"] = stats.error
    return source


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
