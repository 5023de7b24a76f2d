"""Curated chat datasets for the trainer tests, written directly in the curation contract's chat format.

A small tool-calling task a 2-layer model can learn within seconds: the user's request names the tool's
subject (weather, issues, tests) and spells every argument, so the right call is readable from the request.
Sessions are multi-turn: 1-2 rounds of request -> assistant tool call -> tool result -> assistant answer.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {"type": "object", "properties": {key: {"type": "string"} for key in arguments}},
        },
    }
    # Short definitions: they are rendered into every conversation, and CPU training time follows the tokens.
    for name, arguments in (("get_weather", ["city"]), ("search_issues", ["repo", "query"]), ("run_tests", ["path"]))
]
CITIES = ["Paris", "Oslo", "Lima", "Cairo", "Tokyo", "Quito"]
REPOS = ["api", "web", "cli", "docs"]
TOPICS = ["login", "cache", "crash", "upload"]
PATHS = ["tests/unit", "tests/api", "tests/ui", "tests/db"]


def request(rng: random.Random) -> tuple[str, str, dict[str, Any], str, str]:
    """(user text, tool name, arguments, tool result, final answer)."""
    kind = rng.randrange(3)
    if kind == 0:
        city = rng.choice(CITIES)
        return f"What is the weather in {city}?", "get_weather", {"city": city}, "sunny, 21 C", f"{city}: sunny."
    if kind == 1:
        repo, topic = rng.choice(REPOS), rng.choice(TOPICS)
        found = f"2 issues about {topic}"
        return f"Find {topic} issues in {repo}.", "search_issues", {"repo": repo, "query": topic}, found, found + "."
    path = rng.choice(PATHS)
    return f"Please run the tests in {path}.", "run_tests", {"path": path}, "12 passed", "All 12 tests passed."


def conversation(rng: random.Random, index: int) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a coding agent."}]
    for round_ in range(rng.randint(1, 2)):
        text, name, arguments, result, answer = request(rng)
        call_id = f"call_{index}_{round_}"
        call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        messages += [
            {"role": "user", "content": text},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "content": result, "tool_call_id": call_id},
            {"role": "assistant", "content": answer},
        ]
    metadata = {"session_id": f"s{index}", "success_rate": 1.0, "source": "sessions.jsonl", "line": index + 1}
    return {"messages": messages, "tools": TOOLS, "metadata": metadata}


def write_chat_dataset(workspace: Path, train: int, evaluation: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    rows = [conversation(rng, index) for index in range(train + evaluation)]
    write_records(workspace, rows[:train], rows[train:], "chat")


def write_records(workspace: Path, train: list[dict[str, Any]], evaluation: list[dict[str, Any]], form: str) -> None:
    folder = workspace / "dataset"
    folder.mkdir(parents=True, exist_ok=True)
    outputs = {}
    for name, part in (("train.jsonl", train), ("eval.jsonl", evaluation)):
        content = "".join(json.dumps(row) + "\n" for row in part).encode("utf-8")
        (folder / name).write_bytes(content)
        outputs[name] = {"records": len(part), "sha256": hashlib.sha256(content).hexdigest()}
    manifest = {"outcome": "Succeeded", "format": form, "samples": len(train) + len(evaluation), "outputs": outputs}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
