"""`python -m finetune_trainer.curate`: flags and job config in, dataset + termination message out.

Exit codes and the termination message follow docs/runtime-contract.md:
0 with `{"outcome": "Succeeded", "dataset": ...}`; 10 with a user-data reason
(SourceNotFound, NoSamplesAfterCuration, CurationFailed); 13 StorageFull when the
workspace volume fills up (no dataset files are left behind); 20 for anything
unexpected. One JSON summary line goes to stdout in every case.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from finetune_operator.api import CurationFormat, CurationSpec, JobConfig, TerminationMessage
from finetune_operator.api.contract import ExitCode, Reason, exit_code_for
from finetune_trainer import termination, worklog
from finetune_trainer.curate import formats, summary, workers
from finetune_trainer.curate.assess import Rules
from finetune_trainer.curate.output import DatasetWriter
from finetune_trainer.curate.pipeline import Curator
from finetune_trainer.curate.progress import CurationProgress
from finetune_trainer.curate.settings import (
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_MAX_MALFORMED_FRACTION,
    Settings,
    describe_source,
    model_tokenizer,
)
from finetune_trainer.curate.sources import SourceStats, resolve
from finetune_trainer.failures import JobFailed, human_bytes, is_storage_full, storage_full_fix, volume_usage
from finetune_trainer.stageprogress import job_reporter


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m finetune_trainer.curate", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="job config (default: $FINETUNE_CONFIG)")
    parser.add_argument("--input", help="glob or file of session JSONL (.jsonl or .jsonl.gz)")
    parser.add_argument("--output-dir", type=Path, help="where train/eval/manifest go (default: <workspace>/dataset)")
    parser.add_argument("--min-success-rate", type=float)
    parser.add_argument("--max-samples", type=int)
    parser.add_argument("--eval-fraction", type=float)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--dedup", action=argparse.BooleanOptionalAction, default=None, help="near-duplicates")
    parser.add_argument("--format", choices=[str(choice) for choice in CurationFormat], help="default: by the source")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer.json for --max-tokens (default: estimate)")
    parser.add_argument("--max-malformed-fraction", type=float, default=DEFAULT_MAX_MALFORMED_FRACTION)
    parser.add_argument("--max-line-bytes", type=int, default=DEFAULT_MAX_LINE_BYTES)
    parser.add_argument("--workers", type=int, default=0, help="assessment threads (default: by CPUs and input size)")
    return parser


def resolve_settings(args: argparse.Namespace) -> tuple[Settings, dict[str, Any]]:
    """Flags override the job config; without a config, --input and --output-dir are required."""
    config_path = args.config or (Path(os.environ["FINETUNE_CONFIG"]) if os.environ.get("FINETUNE_CONFIG") else None)
    job = JobConfig.load(config_path) if config_path else None
    source_glob = args.input or (job.paths.source_glob if job else None)
    output_dir = args.output_dir or (job.workspace / "dataset" if job else None)
    if source_glob is None or output_dir is None:
        _parser().error("give --config (or $FINETUNE_CONFIG), or both --input and --output-dir")
    overrides = {
        "min_success_rate": args.min_success_rate,
        "max_samples": args.max_samples,
        "eval_fraction": args.eval_fraction,
        "max_tokens": args.max_tokens,
        "dedup": args.dedup,
        "format": args.format,
    }
    base = job.spec.dataset.curation.model_dump() if job else {}
    # Validated by the same model the CRD schema comes from: a flag cannot escape the API's bounds.
    try:
        curation = CurationSpec.model_validate(
            {**base, **{key: value for key, value in overrides.items() if value is not None}}
        )
    except ValidationError as error:
        _parser().error(f"invalid curation flags: {error}")
    settings = Settings(
        source_glob=source_glob,
        output_dir=output_dir,
        curation=curation,
        tokenizer=args.tokenizer or (model_tokenizer(job.paths.base_model) if job else None),
        max_malformed_fraction=args.max_malformed_fraction,
        max_line_bytes=args.max_line_bytes,
        workers=args.workers,
        source_description=describe_source(job.spec.dataset.source) if job and not args.input else "",
    )
    s3 = job.spec.dataset.source.s3 if job and not args.input else None  # --input replaces the job's source
    if job and s3 is not None and job.paths.source_staging:
        settings = replace(settings, source_s3=s3.to_wire(), source_staging=Path(job.paths.source_staging))
    return settings, job.job.to_wire() if job else {}


def stage_sources(settings: Settings, job: dict[str, Any]) -> None:
    """Download the sessions of an S3 source into the workspace (resuming a retried pod's partial files), with the
    download's progress in the job's status."""
    if settings.source_s3 is None or settings.source_staging is None:
        return
    # Imported here: the S3 client is only paid for by jobs whose sessions are in a bucket.
    from finetune_trainer.objectstore.jobio import stage_sessions

    reporter = job_reporter(str(job["name"]), str(job["namespace"]), os.environ) if job else None
    try:
        stage_sessions(settings.source_s3, settings.source_staging, os.environ, reporter)
    except OSError as error:
        if is_storage_full(error):
            raise _storage_failure(settings.source_staging, error, volume_usage(settings.source_staging)) from error
        raise


def run(settings: Settings, job: dict[str, Any]) -> dict[str, Any]:
    """Curate; returns status.dataset on success, raises JobFailed on a user-data failure."""
    started = datetime.now(UTC)
    stage_sources(settings, job)
    # A broad glob (e.g. /workspace/**/*.jsonl) must not read back an earlier run's output.
    output = settings.output_dir.resolve()
    paths = [path for path in resolve(settings.source_glob) if output not in path.resolve().parents]
    if not paths:
        where = (
            f"{settings.source_description} (mounted as {settings.source_glob})"
            if settings.source_description
            else settings.source_glob
        )
        raise JobFailed(
            Reason.SOURCE_NOT_FOUND,
            f"no file matches {where}; list the claim's files with a pod that mounts it (docs/bring-your-own.md)",
        )
    sources = [SourceStats(path) for path in paths]
    chosen = formats.decide(settings.curation.format, paths, settings.max_line_bytes)
    settings = replace(settings, curation=settings.curation.model_copy(update={"format": chosen}))
    spec = settings.curation
    chat = chosen is CurationFormat.CHAT
    rules = Rules(spec.min_success_rate, spec.eval_fraction, spec.dedup, spec.max_tokens, settings.tokenizer, chat)
    input_bytes = sum(path.stat().st_size for path in paths)
    threads = workers.choose(settings.workers, input_bytes, workers.available_cpus())
    try:
        writer = DatasetWriter(settings.output_dir)
    except OSError as error:
        if is_storage_full(error):
            raise _storage_failure(settings.output_dir, error, volume_usage(settings.output_dir)) from error
        raise
    progress = curation_progress(job, sources, input_bytes)
    try:
        tally = Curator(rules, writer, settings.max_line_bytes, threads, progress).run(sources)
        if progress is not None:
            progress.finish(tally.records)
        failure = summary.verdict(tally, settings)
        if failure:
            writer.abort()
            writer.write_manifest(summary.manifest(settings, sources, tally, None, failure, started, job))
            raise failure
        outputs = writer.commit(settings.curation.max_samples)
        # Inside the try: splits without their manifest must not stay behind either.
        writer.write_manifest(summary.manifest(settings, sources, tally, outputs, None, started, job))
    except BaseException as error:
        at_failure = volume_usage(settings.output_dir)
        writer.abort()
        if is_storage_full(error):
            raise _storage_failure(settings.output_dir, error, at_failure) from error
        raise
    return summary.dataset_summary(sources, tally, outputs, chat)


def curation_progress(job: dict[str, Any], sources: list[SourceStats], input_bytes: int) -> CurationProgress | None:
    """A job's curation pod reports its progress in the job's status; a CLI run without a job config does not."""
    if not job:
        return None
    return CurationProgress(job_reporter(str(job["name"]), str(job["namespace"])), sources, input_bytes)


def _storage_failure(directory: Path, error: BaseException, at_failure: tuple[int, int] | None) -> JobFailed:
    """StorageFull (exit 13): a retry would fill the same volume again, so the message says what to change."""
    usage = ""
    if at_failure is not None:
        usage = f": {human_bytes(at_failure[0])} free of {human_bytes(at_failure[1])} when the write failed"
    return JobFailed(
        Reason.STORAGE_FULL,
        f"the workspace volume is full ({error}) while writing the dataset to {directory}{usage}; "
        f"the partial dataset was removed; {storage_full_fix()}",
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings, job = resolve_settings(args)
        if job:  # a job's curation pod: its lines also go to the workspace (beside the dataset folder)
            worklog.attach(worklog.LINES, worklog.path_for(settings.output_dir.parent, "curate"))
        dataset = run(settings, job)
    except JobFailed as failure:
        return _finish(TerminationMessage.failure(failure.reason, failure.message), exit_code_for(failure.reason))
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        message = f"{type(error).__name__}: {error}"
        return _finish(TerminationMessage.failure(Reason.INTERNAL_ERROR, message), ExitCode.INTERNAL_ERROR)
    return _finish(TerminationMessage.model_validate({"outcome": "Succeeded", "dataset": dataset}), ExitCode.SUCCEEDED)


def _finish(message: TerminationMessage, code: ExitCode) -> int:
    termination.write(message)
    line = message.model_dump_json(by_alias=True, exclude_none=True)
    print(line, flush=True)
    worklog.LINES.info(line)
    return int(code)
