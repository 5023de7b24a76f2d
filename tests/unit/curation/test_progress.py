"""Curation progress: records read and the share of source bytes read, reported when due and once at the end."""

from datetime import UTC, datetime
from pathlib import Path

from finetune_trainer import report
from finetune_trainer.curate.assess import Rules
from finetune_trainer.curate.output import DatasetWriter
from finetune_trainer.curate.pipeline import Curator
from finetune_trainer.curate.progress import CurationProgress, status_patch
from finetune_trainer.curate.sources import SourceStats

from .helpers import flat, write_jsonl

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_the_patch_gives_the_byte_share_and_the_time_left_at_the_pace_so_far() -> None:
    patch = status_patch(records=1200, bytes_read=250, total_bytes=1000, elapsed=30.0, now=NOW)
    assert patch == {
        "status": {
            "progress": {
                "stage": "Curating",
                "recordsRead": 1200,
                "sourceBytesRead": 250,
                "sourceBytes": 1000,
                "percent": 25,
                "estimatedSecondsRemaining": 90,
                "updatedAt": "2026-01-02T03:04:05Z",
            }
        }
    }
    assert status_patch(records=0, bytes_read=0, total_bytes=0, elapsed=0.0, now=NOW)["status"] == {
        "progress": {
            "stage": "Curating",
            "recordsRead": 0,
            "sourceBytesRead": 0,
            "sourceBytes": 0,
            "percent": 0,
            "estimatedSecondsRemaining": None,
            "updatedAt": "2026-01-02T03:04:05Z",
        }
    }


def test_a_curation_reports_as_it_reads_at_most_once_per_interval_and_its_final_figures(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in" / "s.jsonl", [flat(f"s{index}") for index in range(3000)])
    sent: list[dict[str, object]] = []
    clock = iter(float(tick) for tick in range(1_000_000))  # one second per look at the clock
    reporter = report.Reporter(send=sent.append, interval=10.0)
    sources = [SourceStats(path)]
    total = path.stat().st_size
    progress = CurationProgress(reporter, sources, total, clock=lambda: next(clock))
    rules = Rules(0.5, 0.1, False)
    tally = Curator(rules, DatasetWriter(tmp_path / "out"), 1 << 20, workers=1, progress=progress).run(sources)
    progress.finish(tally.records)
    figures = [patch["status"]["progress"] for patch in sent]  # type: ignore[index]
    assert len(figures) >= 2, "a ~1.5 MB file is read in blocks: reports while reading and the final one"
    assert [figure["stage"] for figure in figures] == ["Curating"] * len(figures)
    read = [figure["sourceBytesRead"] for figure in figures]
    assert read == sorted(read) and read[0] < total
    assert figures[-1] | {"updatedAt": None} == {
        "stage": "Curating",
        "recordsRead": 3000,
        "sourceBytesRead": total,
        "sourceBytes": total,
        "percent": 100,
        "estimatedSecondsRemaining": 0,
        "updatedAt": None,
    }
