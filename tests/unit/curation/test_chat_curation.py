"""The chat format end to end through `main()`: which format a run writes, the manifest, the counts and examples."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import toolcorpus
from finetune_operator.api import DatasetStatus
from finetune_trainer.curate import formats
from finetune_trainer.curate.cli import main

from .conftest import Curate
from .helpers import flat, text, write_jsonl
from .test_chat_sessions import conversation

CHAT_OUTCOMES = {
    "orphanToolResult",
    "unansweredToolCall",
    "invalidToolArguments",
    "unknownTool",
    "notEndingWithAssistant",
}


def chat(session_id: str) -> dict[str, Any]:
    session = copy.deepcopy(conversation(id=session_id))
    session["messages"][-1]["content"] = text(session_id)
    return session


def test_a_source_of_messages_sessions_is_curated_as_chat(tmp_path: Path, curate: Curate) -> None:
    run = curate(write_jsonl(tmp_path / "in" / "s.jsonl", [chat(f"c{i}") for i in range(5)]))
    assert run.code == 0
    assert run.manifest["format"] == "chat"
    assert run.manifest["config"]["format"] == "chat"
    samples = run.samples("train") + run.samples("eval")
    assert len(samples) == 5
    assert all(set(sample) == {"messages", "tools", "metadata"} for sample in samples)
    assert set(run.rejected) >= CHAT_OUTCOMES
    DatasetStatus.model_validate(run.termination["dataset"])  # the status model knows every count


def test_a_mixed_source_stays_instruction_unless_chat_is_asked_for(tmp_path: Path, curate: Curate) -> None:
    source = write_jsonl(tmp_path / "in" / "s.jsonl", [chat("c1"), flat("f1"), chat("c2")])
    run = curate(source)
    assert run.manifest["format"] == "instruction"
    assert not set(run.rejected) & CHAT_OUTCOMES
    assert "rejectedExamples" not in run.manifest
    assert all("instruction" in sample for sample in run.samples("train") + run.samples("eval"))
    run = curate(source, "--format", "chat")
    assert run.manifest["format"] == "chat"
    assert {
        message["role"] for sample in run.samples("train") + run.samples("eval") for message in sample["messages"]
    } >= {
        "user",
        "assistant",
    }


def test_messages_sessions_can_be_flattened_on_request(tmp_path: Path, curate: Curate) -> None:
    run = curate(write_jsonl(tmp_path / "in" / "s.jsonl", [chat("c1"), chat("c2")]), "--format", "instruction")
    assert run.manifest["format"] == "instruction"
    assert {sample["output"] for sample in run.samples("train") + run.samples("eval")} == {text("c1"), text("c2")}


def test_the_format_is_decided_on_the_first_file_and_its_first_lines_only(tmp_path: Path) -> None:
    first = write_jsonl(tmp_path / "a.jsonl", ["", "{not json", "[1]", *([chat("c")] * 3)])
    second = write_jsonl(tmp_path / "b.jsonl", [flat("f")])
    assert formats.decide(None, [first, second], 1 << 20) == "chat"
    assert formats.decide(None, [second, first], 1 << 20) == "instruction"
    late = write_jsonl(tmp_path / "c.gz", [chat(f"c{i}") for i in range(formats.SAMPLED_LINES)] + [flat("f")], True)
    assert formats.decide(None, [late], 1 << 20) == "chat"
    nothing = write_jsonl(tmp_path / "d.jsonl", ["", "{not json"])
    assert formats.decide(None, [nothing], 1 << 20) == "instruction"
    assert formats.decide("instruction", [first], 1 << 20) == "instruction"  # type: ignore[arg-type]


def test_an_over_long_line_is_skipped_when_deciding(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "a.jsonl", [flat("f", output="x" * 5000), chat("c")])
    assert formats.decide(None, [source], 3000) == "chat"


def test_conversation_rejections_are_counted_with_their_first_lines(tmp_path: Path, curate: Curate) -> None:
    orphan = chat("o")
    orphan["messages"][4]["tool_call_id"] = "call_9"
    unanswered = chat("u")
    del unanswered["messages"][4]
    records = [chat("k1"), orphan, chat("k2"), unanswered, orphan | {"id": "o2"}]
    run = curate(write_jsonl(tmp_path / "in" / "s.jsonl", records))
    assert run.code == 0
    assert {key: count for key, count in run.rejected.items() if count} == {
        "orphanToolResult": 2,
        "unansweredToolCall": 1,
    }
    examples = run.manifest["rejectedExamples"]
    assert set(examples) == CHAT_OUTCOMES
    source = str(tmp_path / "in" / "s.jsonl")
    assert [(example["source"], example["line"]) for example in examples["orphanToolResult"]] == [
        (source, 2),
        (source, 5),
    ]
    assert examples["unansweredToolCall"][0]["line"] == 4
    assert "call_1" in examples["unansweredToolCall"][0]["error"]
    assert examples["unknownTool"] == []


def test_only_defective_conversations_fail_with_the_reasons_in_the_message(tmp_path: Path, curate: Curate) -> None:
    orphan = chat("o")
    orphan["messages"][4]["tool_call_id"] = "call_9"
    run = curate(write_jsonl(tmp_path / "in" / "s.jsonl", [orphan, orphan | {"id": "o2"}]))
    assert run.code == 10
    assert run.termination["reason"] == "NoSamplesAfterCuration"
    assert "2 orphanToolResult" in run.termination["message"]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_tool_corpus_curates_to_its_planted_truth(tmp_path: Path, curate: Curate, seed: int) -> None:
    lines = list(toolcorpus.generate(500, seed=seed))
    # Exact duplicates only: the sessions are short and templated, so a few percent are near-duplicates too.
    run = curate(write_jsonl(tmp_path / "in" / "tools.jsonl", lines), "--max-tokens", "2048", "--no-dedup")
    assert run.code == 0
    assert run.manifest["format"] == "chat"
    planted: dict[str, int] = {}
    for line in lines:
        kind = (
            line.split(b'"synthetic_kind":"')[1].split(b'"')[0].decode() if b"synthetic_kind" in line else "malformed"
        )
        planted[kind] = planted.get(kind, 0) + 1
    for outcome in CHAT_OUTCOMES | {"lowSuccess", "duplicate", "malformed"}:
        assert run.rejected[outcome] == planted.get(outcome, 0), outcome
    kept = run.samples("train") + run.samples("eval")
    assert len(kept) == planted["good"] + planted.get("secret", 0)
    assert run.manifest["counts"]["redactions"] >= planted.get("secret", 0)


def test_the_job_config_format_reaches_the_curation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_jsonl(tmp_path / "src" / "s.jsonl", [flat("a"), flat("b")])
    spec = {
        "baseModel": {"name": "tiny", "builtin": "tiny-gpt"},
        "dataset": {"source": {"configMap": {"name": "c", "key": "s"}}, "curation": {"format": "chat"}},
        "output": {"modelName": "demo"},
    }
    paths = {"workspace": str(tmp_path / "ws"), "sourceGlob": str(tmp_path / "src" / "s.jsonl"), "baseModel": None}
    config = {"apiVersion": "finetune.dev/v1alpha1", "job": {"name": "d", "namespace": "ml", "uid": "u"}}
    (tmp_path / "job.json").write_text(json.dumps({**config, "spec": spec, "paths": paths}))
    monkeypatch.setenv("FINETUNE_CONFIG", str(tmp_path / "job.json"))
    monkeypatch.setenv("FINETUNE_TERMINATION_LOG", str(tmp_path / "log"))
    assert main([]) == 0
    dataset = tmp_path / "ws" / "dataset"
    assert json.loads((dataset / "manifest.json").read_text())["format"] == "chat"
    samples = [json.loads(line) for name in ("train", "eval") for line in (dataset / f"{name}.jsonl").open()]
    assert [len(sample["messages"]) for sample in samples] == [2, 2]
