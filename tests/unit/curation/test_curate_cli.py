"""End to end through `main()`: files in, dataset + manifest + termination message + exit code out."""

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import sessioncorpus as corpus
from finetune_trainer.curate import output
from finetune_trainer.curate.cli import main

from .conftest import Curate
from .helpers import REPOSITORY, flat, text, write_jsonl


def test_every_line_is_kept_or_counted_under_one_reason(tmp_path: Path, curate: Curate) -> None:
    original = flat("dup-o")
    records: list[dict[str, Any] | str] = [
        flat("k1"),
        flat("k2", rate=0.91),
        {
            "id": "m1",
            "successRate": 0.97,
            "messages": [{"role": "user", "content": text("m1")}, {"role": "assistant", "content": text("m1-answer")}],
        },
        flat("low", rate=0.9),  # minSuccessRate is a strict lower bound
        flat("low2", rate=0.1),
        original,
        {**original, "id": "dup-exact", "output": original["output"].upper()},
        {**original, "id": "dup-near", "output": original["output"] + " and one more word"},
        flat("long", output="word " * 400),
        flat("empty", output=""),
        "",
        "{not json",
        json.dumps({"id": "x"}),
    ]
    run = curate(
        write_jsonl(tmp_path / "in" / "s.jsonl", records), "--max-tokens", "300", "--max-malformed-fraction", "0.5"
    )
    assert run.code == 0
    assert run.rejected == {"malformed": 2, "empty": 2, "lowSuccess": 2, "tooLong": 1, "duplicate": 2}
    assert run.manifest["counts"]["duplicates"] == {"exact": 1, "near": 1}
    kept = {sample["metadata"]["session_id"] for split in ("train", "eval") for sample in run.samples(split)}
    assert kept == {"k1", "k2", "m1", "dup-o"}
    assert run.termination == {
        "outcome": "Succeeded",
        "dataset": {
            "sourceFiles": 1,
            "sourceRecords": 13,
            "samples": 4,
            "trainSamples": len(run.samples("train")),
            "evalSamples": len(run.samples("eval")),
            "sha256": run.manifest["sha256"],
            "rejected": run.rejected,
            "redactions": 0,
        },
    }
    assert [example["line"] for example in run.manifest["malformedExamples"]] == [12, 13]


def test_samples_are_traceable_to_their_source_line(tmp_path: Path, curate: Curate) -> None:
    source = write_jsonl(tmp_path / "s.jsonl", [flat("a", rate=0.1), flat("b", rate=0.975)])
    (sample,) = curate(source, "--eval-fraction", "0.01").samples() or curate(source).samples("eval")
    assert sample["metadata"] == {"session_id": "b", "success_rate": 0.975, "source": str(source), "line": 2}
    assert set(sample) == {"instruction", "input", "output", "metadata"}


def test_secrets_are_redacted_before_anything_is_written(tmp_path: Path, curate: Curate) -> None:
    key = "AKIAIOSFODNN7EXAMPLE"
    session = flat("s", output=f"{text('s')} export AWS_ACCESS_KEY_ID={key}")
    session["input"] += "\nAuthorization: Bearer abcdefghijklmnopqrstuvwxyz"
    run = curate(write_jsonl(tmp_path / "s.jsonl", [session]))
    written = b"".join(path.read_bytes() for path in run.output_dir.iterdir())
    assert key.encode() not in written and b"abcdefghijklmnop" not in written
    assert run.termination["dataset"]["redactions"] == 2
    assert run.manifest["counts"]["redactionsByRule"] == {"aws_access_key_id": 1, "bearer_token": 1}


def test_same_input_gives_byte_identical_datasets(tmp_path: Path, curate: Curate) -> None:
    lines = list(corpus.generate(600, seed=5))
    source = write_jsonl(tmp_path / "in.jsonl", lines)
    first = curate(source, "--max-samples", "200", output_dir=tmp_path / "one")
    second = curate(source, "--max-samples", "200", output_dir=tmp_path / "two")
    for name in ("train.jsonl", "eval.jsonl"):
        assert (first.output_dir / name).read_bytes() == (second.output_dir / name).read_bytes()
        digest = hashlib.sha256((first.output_dir / name).read_bytes()).hexdigest()
        assert first.manifest["outputs"][name]["sha256"] == digest
    assert first.termination == second.termination
    assert first.termination["dataset"]["samples"] == 200


def test_split_and_cap_depend_on_the_session_id_only(tmp_path: Path, curate: Curate) -> None:
    sessions = [flat(f"s{index}") for index in range(400)]
    full = curate(write_jsonl(tmp_path / "a.jsonl", sessions), "--eval-fraction", "0.25", output_dir=tmp_path / "a")
    eval_ids = {sample["metadata"]["session_id"] for sample in full.samples("eval")}
    assert 60 < len(eval_ids) < 140
    # Re-curating a larger, reordered log keeps every old session in its split.
    grown = [flat(f"t{index}") for index in range(200)] + sessions[::-1]
    again = curate(write_jsonl(tmp_path / "b.jsonl", grown), "--eval-fraction", "0.25", output_dir=tmp_path / "b")
    assert eval_ids <= {sample["metadata"]["session_id"] for sample in again.samples("eval")}
    capped = curate(tmp_path / "a.jsonl", "--max-samples", "50", output_dir=tmp_path / "c")
    assert capped.termination["dataset"]["samples"] == 50
    assert capped.manifest["counts"]["cappedByMaxSamples"] == 350


def test_gzip_and_glob_inputs(tmp_path: Path, curate: Curate) -> None:
    write_jsonl(tmp_path / "logs" / "a.jsonl.gz", [flat("a")], compress=True)
    write_jsonl(tmp_path / "logs" / "nested" / "b.jsonl", [flat("b"), flat("c")])
    run = curate(f"{tmp_path}/logs/**/*.jsonl*")
    assert run.termination["dataset"]["sourceFiles"] == 2
    assert run.termination["dataset"]["samples"] == 3
    gz = run.manifest["sources"][0]
    assert gz["compression"] == "gzip"
    assert gz["sha256"] == hashlib.sha256((tmp_path / "logs" / "a.jsonl.gz").read_bytes()).hexdigest()
    assert gz["bytes"] == (tmp_path / "logs" / "a.jsonl.gz").stat().st_size


def test_job_config_supplies_source_workspace_and_curation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_jsonl(tmp_path / "src" / "s.jsonl", [flat("a", rate=0.6), flat("b", rate=0.99)])
    config = tmp_path / "job.json"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "finetune.dev/v1alpha1",
                "job": {"name": "demo", "namespace": "ml", "uid": "u-1"},
                "spec": {
                    "baseModel": {"name": "tiny", "builtin": "tiny-gpt"},
                    "dataset": {
                        "source": {"configMap": {"name": "c", "key": "s"}},
                        "curation": {"minSuccessRate": 0.5, "evalFraction": 0.5},
                    },
                    "output": {"modelName": "demo"},
                },
                "paths": {
                    "workspace": str(tmp_path / "ws"),
                    "sourceGlob": str(tmp_path / "src" / "s.jsonl"),
                    "baseModel": None,
                },
            }
        )
    )
    monkeypatch.setenv("FINETUNE_CONFIG", str(config))
    monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(tmp_path / "log"))
    monkeypatch.setenv("HOSTNAME", "demo-curate-x1")
    assert main([]) == 0
    manifest = json.loads((tmp_path / "ws" / "dataset" / "manifest.json").read_text())
    assert manifest["counts"]["kept"] == 2
    # Its lines outlive the pod: the outcome is also in the workspace's log of this attempt.
    kept_log = (tmp_path / "ws" / "logs" / "curate-demo-curate-x1-rank0.jsonl").read_text().splitlines()
    assert json.loads(kept_log[-1])["outcome"] == "Succeeded"
    assert manifest["config"]["minSuccessRate"] == 0.5
    assert manifest["job"]["name"] == "demo"
    # A flag overrides the config.
    assert main(["--min-success-rate", "0.7"]) == 0
    assert json.loads((tmp_path / "log").read_text())["dataset"]["rejected"]["lowSuccess"] == 1
    # An empty source is named as the user wrote it, not by its mount path in the pod.
    (tmp_path / "src" / "s.jsonl").unlink()
    assert main([]) == 10
    message = json.loads((tmp_path / "log").read_text())["message"]
    assert message.startswith(f"no file matches key s of ConfigMap c (mounted as {tmp_path}/src/s.jsonl); ")


def test_max_tokens_with_a_real_tokenizer(tmp_path: Path, curate: Curate) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    sessions = [flat("short", output="one two three"), flat("long", output="word " * 100)]
    run = curate(
        write_jsonl(tmp_path / "s.jsonl", sessions),
        "--max-tokens",
        "90",
        "--tokenizer",
        str(tmp_path / "tokenizer.json"),
    )
    assert run.rejected["tooLong"] == 1
    assert run.manifest["config"]["tokenCounter"] == f"tokenizer:{tmp_path / 'tokenizer.json'}"


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40,  # binary garbage
        b'{"id": "a", "success_rate": 1, "instruction": "caf\xe9", "output": "x"}\n',  # invalid UTF-8
        b"",  # empty file
    ],
)
def test_corrupt_files_are_reported_not_fatal(tmp_path: Path, curate: Curate, content: bytes) -> None:
    write_jsonl(tmp_path / "in" / "good.jsonl", [flat(f"g{index}") for index in range(30)])
    (tmp_path / "in" / "bad.jsonl").write_bytes(content)
    run = curate(f"{tmp_path}/in/*.jsonl", "--max-malformed-fraction", "1")
    assert run.code == 0
    assert run.termination["dataset"]["samples"] == 30
    assert run.termination["dataset"]["sourceRecords"] == 30 + run.rejected["malformed"] + run.rejected["empty"]


def test_truncated_gzip_keeps_what_was_readable_and_reports_the_rest(tmp_path: Path, curate: Curate) -> None:
    data = gzip.compress(b"".join(json.dumps(flat(f"s{index}")).encode() + b"\n" for index in range(2000)))
    (tmp_path / "s.jsonl.gz").write_bytes(data[: len(data) // 2])
    run = curate(tmp_path / "s.jsonl.gz")
    assert run.code == 0
    assert 0 < run.termination["dataset"]["samples"] < 2000
    assert run.rejected["malformed"] <= 2  # the cut line and the unreadable rest
    assert "gzip stream error" in run.manifest["sources"][0]["error"]
    assert any("unreadable" in example["error"] for example in run.manifest["malformedExamples"])


def test_a_100_mb_line_is_skipped_without_loading_it(tmp_path: Path, curate: Curate) -> None:
    source = tmp_path / "s.jsonl"
    with source.open("wb") as handle:
        handle.write(json.dumps(flat("before")).encode() + b"\n")
        handle.write(b'{"id": "huge", "output": "' + b"x" * (100 << 20) + b'"}\n')
        handle.write(json.dumps(flat("after")).encode() + b"\n")
    run = curate(source, "--max-malformed-fraction", "0.5")
    assert run.termination["dataset"]["samples"] == 2
    (example,) = run.manifest["malformedExamples"]
    assert example["line"] == 2 and "too long" in example["error"]


def test_missing_source_fails_with_source_not_found(tmp_path: Path, curate: Curate) -> None:
    run = curate(f"{tmp_path}/nothing/*.jsonl")
    assert run.code == 10
    assert run.termination == {
        "outcome": "Failed",
        "reason": "SourceNotFound",
        "failureKind": "User",
        "message": f"no file matches {tmp_path}/nothing/*.jsonl; list the claim's files with a pod that mounts it "
        "(docs/bring-your-own.md)",
    }
    assert not run.output_dir.exists()


def test_zero_survivors_fail_with_counts_per_reason(tmp_path: Path, curate: Curate) -> None:
    run = curate(write_jsonl(tmp_path / "s.jsonl", [flat(f"l{i}", rate=0.2) for i in range(9)] + ["{"]))
    assert run.code == 10
    assert run.termination["reason"] == "NoSamplesAfterCuration"
    assert run.termination["message"] == (
        "0 of 10 sessions survived curation: 9 lowSuccess, 1 malformed (see dataset/manifest.json)"
    )
    assert run.manifest["outcome"] == "Failed"
    assert sorted(path.name for path in run.output_dir.iterdir()) == ["manifest.json"]


def test_too_many_malformed_lines_fail_the_run(tmp_path: Path, curate: Curate) -> None:
    run = curate(write_jsonl(tmp_path / "s.jsonl", [flat(f"g{i}") for i in range(8)] + ["{", "[1]"]))
    assert run.code == 10
    assert run.termination["reason"] == "CurationFailed"
    assert run.termination["message"].startswith("2 of 10 lines (20.0%) are malformed, above the 10% limit")
    assert not (run.output_dir / "train.jsonl").exists()


def test_internal_errors_exit_20(tmp_path: Path, curate: Curate) -> None:
    (tmp_path / "occupied").write_text("a file where the output directory should go")
    run = curate(write_jsonl(tmp_path / "s.jsonl", [flat("a")]), output_dir=tmp_path / "occupied")
    assert run.code == 20
    assert run.termination["reason"] == "InternalError"
    assert run.termination["failureKind"] == "System"


def test_a_crash_mid_write_leaves_nothing_complete_looking(
    tmp_path: Path, curate: Curate, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_jsonl(tmp_path / "s.jsonl", [flat(f"s{index}") for index in range(50)])
    assert curate(source).code == 0  # a previous, complete dataset
    original = output.DatasetWriter.write
    calls = 0

    def crash_after_20(self: output.DatasetWriter, split: str, line: bytes, cap_key: int) -> None:
        nonlocal calls
        calls += 1
        if calls > 20:
            raise OSError("disk went away")
        original(self, split, line, cap_key)

    monkeypatch.setattr(output.DatasetWriter, "write", crash_after_20)
    run = curate(source)
    assert run.code == 20
    assert list(run.output_dir.iterdir()) == []


def test_a_killed_run_never_leaves_a_manifest_beside_new_files(tmp_path: Path) -> None:
    """Simulates SIGKILL: the writer is abandoned without abort(); no manifest, only hidden partials."""
    directory = tmp_path / "dataset"
    directory.mkdir()
    (directory / "manifest.json").write_text("{}")  # from an earlier run
    writer = output.DatasetWriter(directory)
    writer.write("train", b"{}\n", 1)
    assert not (directory / "manifest.json").exists()
    assert all(path.name.startswith(".") for path in directory.iterdir())


def test_worker_processes_give_the_same_bytes_as_one_process(tmp_path: Path, curate: Curate) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", list(corpus.generate(1500, seed=9)))
    single = curate(source, "--workers", "1", output_dir=tmp_path / "one")
    parallel = curate(source, "--workers", "2", output_dir=tmp_path / "two")
    for name in ("train.jsonl", "eval.jsonl"):
        assert (single.output_dir / name).read_bytes() == (parallel.output_dir / name).read_bytes()
    assert single.termination == parallel.termination
    assert single.manifest["malformedExamples"] == parallel.manifest["malformedExamples"]


def test_a_broad_glob_never_reads_back_the_dataset(tmp_path: Path, curate: Curate) -> None:
    write_jsonl(tmp_path / "ws" / "logs" / "s.jsonl", [flat("a"), flat("b")])
    first = curate(f"{tmp_path}/ws/**/*.jsonl", output_dir=tmp_path / "ws" / "dataset")
    again = curate(f"{tmp_path}/ws/**/*.jsonl", output_dir=tmp_path / "ws" / "dataset")
    assert first.termination == again.termination
    assert again.termination["dataset"]["sourceFiles"] == 1


def test_flags_outside_the_api_bounds_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "s.jsonl", [flat("a")])
    with pytest.raises(SystemExit) as exit_info:
        main(["--input", str(source), "--output-dir", str(tmp_path / "out"), "--eval-fraction", "0.9"])
    assert exit_info.value.code == 2
    assert "eval_fraction" in capsys.readouterr().err


def test_the_entrypoint_imports_neither_torch_nor_transformers() -> None:
    """Curation runs in a CPU step that must start fast: no deep-learning stack on its import path, and the S3
    client only for jobs whose sessions are in a bucket."""
    probe = (
        "import sys, finetune_trainer.curate.cli, finetune_trainer.curate.assess; "
        "heavy = {'torch', 'transformers', 'trl', 'peft', 'minio'}; "
        "print(sorted({name.split('.')[0] for name in sys.modules} & heavy))"
    )
    path = os.pathsep.join(str(REPOSITORY / part) for part in ("trainer-image", "operator"))
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"
