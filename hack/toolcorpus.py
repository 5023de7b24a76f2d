"""A synthetic corpus of tool-calling agent sessions (the chat shape), with planted defects.

Every session is a `messages` session with the same three tools (TOOLS): a system prompt, then one to
three rounds of a user request, an assistant call, the tool's result and the assistant's answer. The
request names the tool's subject and spells out every argument (the city and unit, the repository,
query and limit, the test path), so the right call is learnable from the text alone: a tiny model
trained on these conversations can learn which function to call and with what, far above the one in
three a guess gets. Arguments are JSON strings (as OpenAI's API writes them) in about half the
sessions, objects in the others.

As in sessioncorpus.py, each session carries its planted kind in `metadata.synthetic_kind` (the
defects of MIX are the chat format's rejection reasons, docs/session-schema.md) and secret-bearing
sessions list their planted values in `metadata.synthetic_secrets`. Generation is deterministic
for a given seed, and prefix-stable: the first n sessions of a larger corpus are the n-session corpus.
"""

from __future__ import annotations

import random
import string
from collections import deque
from collections.abc import Iterator
from typing import Any

import orjson

import sessioncorpus
import sessionleaks

# Bumped whenever generate()'s output changes, so cached corpora are never stale.
VERSION = 2

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city", "unit"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_issues",
            "description": "Search a repository's issues.",
            "parameters": {
                "type": "object",
                "properties": {
                    "repo": {"type": "string"},
                    "query": {"type": "string"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 50},
                },
                "required": ["repo", "query", "limit"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "run_tests",
            "description": "Run a test file or folder and report the results.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    },
]

CLEAN: dict[str, float] = {"good": 1.0}
"""Only sessions curation keeps (what a training run wants)."""

MIX: dict[str, float] = {
    "good": 0.66,
    "lowSuccess": 0.12,
    "duplicate": 0.04,
    "secret": 0.03,
    "orphanToolResult": 0.03,
    "unansweredToolCall": 0.03,
    "invalidToolArguments": 0.03,
    "unknownTool": 0.02,
    "notEndingWithAssistant": 0.03,
    "malformed": 0.01,
}
"""Good sessions and planted defects, each kind named after the outcome curation gives it."""

SYSTEM_PROMPT = "You are an assistant with tools. Call a tool when the request needs one, then answer briefly."
CITIES = ["Paris", "Berlin", "Tokyo", "Lagos", "Lima", "Oslo", "Cairo", "Denver", "Mumbai", "Sydney", "Quebec"]
UNITS = ["celsius", "fahrenheit"]
CONDITIONS = ["sunny", "cloudy", "raining", "snowing", "windy", "foggy"]
REPOS = ["payments-api", "web-frontend", "ingest-worker", "billing", "search-svc", "auth-gateway"]
QUERIES = ["timeout", "memory leak", "flaky test", "login error", "slow query", "crash on start", "retry storm"]
TEST_PATHS = [
    "tests/test_retry.py",
    "tests/test_auth.py",
    "tests/unit/test_cache.py",
    "tests/integration",
    "tests/test_export.py",
    "tests/unit/test_parser.py",
]
ASKS = {
    "get_weather": [
        "What's the weather in {city}? Use {unit}.",
        "How warm is it in {city} right now, in {unit}?",
        "Weather for {city} please, degrees {unit}.",
    ],
    "search_issues": [
        "Find up to {limit} issues in {repo} about {query}.",
        "Search the {repo} issues for '{query}' and show {limit}.",
        "List {limit} issues mentioning {query} in {repo}.",
    ],
    "run_tests": [
        "Run the tests in {path}.",
        "Please run {path} and tell me if it passes.",
        "Can you check whether {path} passes?",
    ],
}


def _arguments(rng: random.Random, name: str) -> dict[str, Any]:
    if name == "get_weather":
        return {"city": rng.choice(CITIES), "unit": rng.choice(UNITS)}
    if name == "search_issues":
        return {"repo": rng.choice(REPOS), "query": rng.choice(QUERIES), "limit": rng.choice([3, 5, 10, 20])}
    return {"path": rng.choice(TEST_PATHS)}


SYLLABLES = ["ka", "to", "ri", "mel", "san", "dor", "vi", "pe", "lu", "qua", "zen", "bo", "tir", "nam", "fel"]
SYLLABLES += ["go", "ash", "ur", "plo", "di", "wen", "mar", "cus", "tes", "ob", "lin", "era", "sto"]


def _words(rng: random.Random, low: int, high: int) -> str:
    """Words and made-up names: near-duplicate detection compares byte 8-grams, which a small vocabulary
    repeats from session to session (sessions of 90 words in common read as near copies)."""
    return " ".join(
        rng.choice(sessioncorpus.WORDS) if rng.random() < 0.5 else "".join(rng.choices(SYLLABLES, k=rng.randint(2, 3)))
        for _ in range(rng.randint(low, high))
    )


def _weather(rng: random.Random, arguments: dict[str, Any]) -> tuple[str, str]:
    degrees = rng.randint(-5, 35) if arguments["unit"] == "celsius" else rng.randint(20, 95)
    condition = rng.choice(CONDITIONS)
    result = {
        "city": arguments["city"],
        "temperature": degrees,
        "unit": arguments["unit"],
        "conditions": condition,
        "humidity": rng.randint(5, 100),
        "wind_kph": rng.randint(0, 60),
        "station": f"{arguments['city'][:3].upper()}-{rng.randint(100, 999)}",
        "notes": _words(rng, 6, 12),
    }
    answer = f"It is {degrees} degrees {arguments['unit']} and {condition} in {arguments['city']}"
    return orjson.dumps(result).decode(), f"{answer}, humidity {result['humidity']}%."


def _issues(rng: random.Random, arguments: dict[str, Any]) -> tuple[str, str]:
    found = rng.randint(2, arguments["limit"])
    issues = [
        {"number": rng.randint(10, 9999), "title": f"{arguments['query']}: {_words(rng, 4, 9)}"} for _ in range(found)
    ]
    numbers = ", ".join(f"#{issue['number']} ({issue['title']})" for issue in issues[:3])
    return orjson.dumps(
        issues
    ).decode(), f"{found} issues about {arguments['query']} in {arguments['repo']}: {numbers}."


def _tests(rng: random.Random, arguments: dict[str, Any]) -> tuple[str, str]:
    names = [f"test_{_words(rng, 2, 3).replace(' ', '_')}" for _ in range(rng.randint(4, 10))]
    failed = names[: rng.choice([0, 0, 1, 2])]
    lines = [f"{arguments['path']}::{name} {'FAILED' if name in failed else 'PASSED'}" for name in names]
    result = (
        f"$ pytest {arguments['path']}\n"
        + "\n".join(lines)
        + f"\n{len(names) - len(failed)} passed, {len(failed)} failed"
    )
    verdict = "all tests pass" if not failed else f"{', '.join(failed)} failed"
    return result, f"In {arguments['path']} {verdict}."


RESULTS = {"get_weather": _weather, "search_issues": _issues, "run_tests": _tests}


def _round(rng: random.Random, call_id: str, as_string: bool) -> list[dict[str, Any]]:
    """One request, its call, the tool's result and the answer."""
    name = rng.choice(list(ASKS))
    arguments = _arguments(rng, name)
    result, answer = RESULTS[name](rng, arguments)
    call = {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(arguments).decode() if as_string else arguments},
    }
    return [
        # Context before the request, as users give it; it never names a tool or an argument.
        {"role": "user", "content": f"{_words(rng, 6, 16).capitalize()}. {rng.choice(ASKS[name]).format(**arguments)}"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": result},
        {"role": "assistant", "content": answer},
    ]


def session(rng: random.Random, index: int, success_rate: float) -> dict[str, Any]:
    """A valid tool-calling session."""
    as_string = rng.random() < 0.5
    # Who and when, as agent harnesses write it: without it every session's system prompt would be the same text.
    context = f"Today is day {rng.randint(1, 365)}; you help {_words(rng, 2, 4)} (ticket {rng.getrandbits(24):06x})."
    messages: list[dict[str, Any]] = [{"role": "system", "content": f"{SYSTEM_PROMPT} {context}"}]
    for turn in range(rng.randint(1, 3)):
        messages += _round(rng, f"call_{index}_{turn}", as_string)
    return {
        "id": f"tool-{index:08d}-{rng.getrandbits(32):08x}",
        "success_rate": success_rate,
        "messages": messages,
        "tools": TOOLS,
        "metadata": {"agent": f"agent-{rng.randint(1, 40)}"},
    }


def _calls(session: dict[str, Any]) -> list[dict[str, Any]]:
    return [call for message in session["messages"] for call in message.get("tool_calls") or []]


def _plant(rng: random.Random, kind: str, session: dict[str, Any]) -> None:
    """Turn a valid session into one with the defect `kind` names."""
    messages = session["messages"]
    call = rng.choice(_calls(session))
    if kind == "orphanToolResult":
        answer = next(message for message in messages if message.get("tool_call_id") == call["id"])
        answer["tool_call_id"] = "call_unknown"
    elif kind == "unansweredToolCall":
        session["messages"] = [message for message in messages if message.get("tool_call_id") != call["id"]]
    elif kind == "invalidToolArguments":
        arguments = call["function"]["arguments"]
        text = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
        call["function"]["arguments"] = text[:-1]  # its closing brace cut off
    elif kind == "unknownTool":
        call["function"]["name"] = "delete_repository"
    elif kind == "notEndingWithAssistant":
        messages.append({"role": "user", "content": "Thanks! One more thing: what about tomorrow?"})
    elif kind == "secret":
        text, secrets = sessionleaks.leak(rng)
        results = [message for message in messages if message["role"] == "tool"]
        rng.choice(results)["content"] += f"\n{text}"
        token = "ghp_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(36))
        arguments = call["function"]["arguments"]
        parsed = orjson.loads(arguments) if isinstance(arguments, str) else arguments
        parsed["auth"] = f"token {token}"  # an argument the agent pasted a credential into
        call["function"]["arguments"] = orjson.dumps(parsed).decode() if isinstance(arguments, str) else parsed
        session["metadata"]["synthetic_secrets"] = [*secrets, token]


def generate(count: int, seed: int = 0, mix: dict[str, float] = MIX) -> Iterator[bytes]:
    """Yield `count` JSONL lines (without newline), planted kinds drawn with weights `mix`."""
    rng = random.Random(seed)
    kinds, weights = list(mix), list(mix.values())
    recent: deque[dict[str, Any]] = deque(maxlen=2000)
    for index in range(count):
        kind = rng.choices(kinds, weights)[0]
        if kind == "duplicate" and not recent:
            kind = "good"
        if kind == "duplicate":
            record = dict(rng.choice(recent), id=f"tool-{index:08d}-{rng.getrandbits(32):08x}")
        else:
            low = kind == "lowSuccess"
            record = session(rng, index, round(rng.uniform(0.0, 0.9) if low else rng.uniform(0.905, 1.0), 3))
            if kind == "good":
                recent.append(record)
            elif kind == "malformed":
                yield orjson.dumps(record)[: rng.randint(10, 200)]  # a truncated write
                continue
            elif kind != "lowSuccess":
                _plant(rng, kind, record)
        record = {**record, "metadata": {**record["metadata"], "synthetic_kind": kind}}
        yield orjson.dumps(record)
