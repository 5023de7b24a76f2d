"""A synthetic corpus of agent-session logs with a known, realistic mix of defects.

Every session carries its planted kind in `metadata.synthetic_kind`, so the
benchmark and the tests can check the curator's decisions against ground truth.
Generation is deterministic for a given seed: the same corpus every run.

Full-size sessions (the benchmark's) also carry look-alikes of credentials that
are not credentials (sessionleaks.trap) in a share of their tool output, and
secret-bearing ones leak a credential in one of the contexts of sessionleaks.leak,
its values listed in `metadata.synthetic_secrets`. Compact sessions (the demo's
committed sample, hack/make-sample-sessions.py) are generated as before.
"""

from __future__ import annotations

import random
import string
from collections import deque
from collections.abc import Iterator
from typing import Any

import orjson

import sessionleaks

# Bumped whenever generate()'s output changes, so cached corpora are never stale.
VERSION = 4

# Share of full-size sessions whose tool output holds look-alikes of credentials (sessionleaks.trap).
TRAP_SHARE = 0.5

# Share of each planted kind; roughly what an agent fleet's raw logs look like:
# most sessions fine, a large minority failed, some re-runs and retries.
MIX: dict[str, float] = {
    "good": 0.50,
    "lowSuccess": 0.22,
    "duplicate": 0.07,
    "nearDuplicate": 0.06,
    "secret": 0.05,
    "malformed": 0.04,
    "empty": 0.02,
    "tooLong": 0.01,
    "blank": 0.005,
    "invalidUtf8": 0.005,
}

SYSTEM_PROMPTS = [
    "You are a coding agent working in a git repository. Use the tools to inspect files and run tests. "
    "Keep changes minimal and explain what you changed.",
    "You are an SRE assistant with shell access to a staging cluster. Never run destructive commands "
    "without confirmation.",
    "You are a data analyst agent. You can run SQL against the warehouse and Python in a sandbox.",
]
REPOS = [
    "payments-api",
    "web-frontend",
    "ingest-worker",
    "billing",
    "search-svc",
    "auth-gateway",
    "ml-pipeline",
]
LANGS = ["python", "go", "typescript", "rust", "sql"]
VERBS = ["fix", "add", "refactor", "speed up", "document", "remove", "debug", "migrate", "test", "rename"]
NOUNS = [
    "retry logic",
    "pagination",
    "rate limiter",
    "cache invalidation",
    "config loader",
    "CSV export",
    "webhook handler",
    "login flow",
    "metrics endpoint",
    "schema migration",
    "feature flag",
    "cron job",
    "connection pool",
    "error handling",
    "logging",
    "timeout",
    "serializer",
    "health check",
]
WORDS = [
    "the",
    "a",
    "request",
    "response",
    "handler",
    "function",
    "module",
    "service",
    "client",
    "server",
    "queue",
    "worker",
    "cache",
    "value",
    "key",
    "index",
    "table",
    "column",
    "row",
    "error",
    "exception",
    "timeout",
    "retry",
    "limit",
    "buffer",
    "stream",
    "file",
    "path",
    "config",
    "option",
    "flag",
    "test",
    "case",
    "assertion",
    "fixture",
    "mock",
    "patch",
    "commit",
    "branch",
    "merge",
    "build",
    "deploy",
    "release",
    "version",
    "schema",
    "field",
    "record",
    "event",
    "message",
    "payload",
    "header",
    "token",
    "user",
    "session",
    "account",
    "order",
    "invoice",
    "price",
    "amount",
    "currency",
    "date",
    "time",
    "zone",
    "offset",
    "batch",
    "chunk",
    "page",
    "cursor",
    "query",
    "filter",
    "sort",
    "group",
    "join",
    "count",
    "sum",
    "average",
    "metric",
    "latency",
    "throughput",
    "memory",
    "cpu",
    "disk",
    "network",
    "socket",
    "port",
    "host",
    "cluster",
    "node",
    "pod",
    "container",
    "image",
    "registry",
]
TOOLS = ["read_file", "run_tests", "grep", "shell", "sql", "apply_patch", "list_dir"]


def _identifier(rng: random.Random) -> str:
    return "_".join(rng.choice(WORDS) for _ in range(rng.randint(2, 3)))


def _sentence(rng: random.Random, low: int = 8, high: int = 22) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    if rng.random() < 0.5:
        words.insert(rng.randrange(len(words)), f"`{_identifier(rng)}()`")
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng) for _ in range(sentences))


def _code(rng: random.Random, lines: int) -> str:
    body = []
    for _ in range(lines):
        name = _identifier(rng)
        body.append(
            f"    {name} = {rng.choice(WORDS)}_{rng.randint(0, 999)}({rng.choice(WORDS)}, {rng.randint(1, 60)})"
        )
    return f"def {_identifier(rng)}({rng.choice(WORDS)}):\n" + "\n".join(body) + "\n    return " + rng.choice(WORDS)


def _tool_result(rng: random.Random, extra_bytes: int = 0, lines: int = 8) -> str:
    tool = rng.choice(TOOLS)
    if tool == "run_tests":
        failed = rng.randint(0, 3)
        text = "\n".join(
            f"tests/test_{_identifier(rng)}.py::test_{_identifier(rng)} {'FAILED' if i < failed else 'PASSED'}"
            for i in range(rng.randint(3, lines))
        )
    elif tool in ("read_file", "apply_patch"):
        text = _code(rng, rng.randint(3, lines + 4))
    else:
        text = "\n".join(
            f"src/{_identifier(rng)}.py:{rng.randint(1, 400)}: {_sentence(rng, 4, 10)}" for _ in range(lines // 2 + 1)
        )
    while len(text) < extra_bytes:
        text += "\n" + _paragraph(rng, 8)
    return f"$ {tool}\n{text}"


def fake_secret(rng: random.Random) -> str:
    """A random credential in one of the shapes the curator must redact (never a real one)."""
    alnum = string.ascii_letters + string.digits

    def pick(chars: str, n: int) -> str:
        return "".join(rng.choice(chars) for _ in range(n))

    shapes = [
        lambda: "AKIA" + pick(string.ascii_uppercase + string.digits, 16),
        lambda: "sk-proj-" + pick(alnum, 48),
        lambda: "sk-ant-api03-" + pick(alnum + "-_", 80),
        lambda: "ghp_" + pick(alnum, 36),
        lambda: "xoxb-" + pick(string.digits, 12) + "-" + pick(string.digits, 12) + "-" + pick(alnum, 24),
        lambda: "sk_live_" + pick(alnum, 24),
        lambda: "AIza" + pick(alnum + "-_", 35),
        lambda: "hf_" + pick(alnum, 34),
        lambda: "glpat-" + pick(alnum + "-_", 20),
        lambda: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI" + pick(alnum, 20) + "." + pick(alnum + "-_", 43),
        lambda: "Authorization: Bearer " + pick(alnum, 40),
        lambda: f"postgres://admin:{pick(alnum, 14)}@db.internal:5432/app",
        lambda: "-----BEGIN RSA PRIVATE KEY-----\n" + pick(alnum + "+/", 64) + "\n-----END RSA PRIVATE KEY-----",
    ]
    return rng.choice(shapes)()


def _session(
    rng: random.Random, index: int, success_rate: float, tool_bytes: int = 0, compact: bool = False
) -> dict[str, object]:
    """One agent session; `compact` halves its length (the demo's ConfigMap must stay small)."""
    repo, lang = rng.choice(REPOS), rng.choice(LANGS)
    details = _paragraph(rng, 1 if compact else 2)
    task = f"{rng.choice(VERBS).capitalize()} the {rng.choice(NOUNS)} in {repo} ({lang}). {details}"
    code = _code(rng, rng.randint(2, 4) if compact else rng.randint(3, 10))
    explanation = _paragraph(rng, rng.randint(1, 2) if compact else rng.randint(2, 5))
    answer = f"{explanation}\n\n```{lang}\n{code}\n```\n{_sentence(rng)}"
    lines = 3 if compact else 8
    metadata = {"agent": f"agent-{rng.randint(1, 40)}", "repo": repo, "turns": rng.randint(2, 30)}
    base: dict[str, object] = {"id": f"sess-{index:08d}-{rng.getrandbits(32):08x}"}
    if rng.random() < 0.5:
        base["success_rate"] = success_rate
        base.update(instruction=task, input=_tool_output(rng, tool_bytes, lines, compact), output=answer)
    else:
        base["successRate"] = success_rate
        base["messages"] = [
            {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)},
            {"role": "user", "content": task},
            {"role": "assistant", "content": _sentence(rng)},
            {"role": "tool", "content": _tool_output(rng, tool_bytes, lines, compact)},
            {"role": "assistant", "content": answer},
        ]
    base["metadata"] = metadata
    return base


def _tool_output(rng: random.Random, extra_bytes: int, lines: int, compact: bool) -> str:
    text = _tool_result(rng, extra_bytes, lines)
    if not compact and rng.random() < TRAP_SHARE:
        text += "".join("\n" + sessionleaks.trap(rng) for _ in range(rng.randint(1, 3)))
    return text


def _edit_slightly(rng: random.Random, text: str) -> str:
    """A near-duplicate: a re-run of the same task whose answer differs in a couple of words."""
    words = text.split(" ")
    for _ in range(rng.randint(1, 3)):
        words[rng.randrange(len(words))] = rng.choice(WORDS)
    return " ".join(words)


def _near_duplicate(rng: random.Random, original: dict[str, object], index: int) -> dict[str, object]:
    copy: dict[str, Any] = orjson.loads(orjson.dumps(original))
    copy["id"] = f"sess-{index:08d}-{rng.getrandbits(32):08x}"
    if "messages" in copy:
        copy["messages"][-1]["content"] = _edit_slightly(rng, copy["messages"][-1]["content"])
    else:
        copy["output"] = _edit_slightly(rng, copy["output"])
    return copy


def _malformed(rng: random.Random, session: dict[str, object]) -> bytes:
    line = orjson.dumps(session)
    choice = rng.randrange(5)
    if choice == 0:
        return line[: rng.randint(10, len(line) - 2)]  # truncated write
    if choice == 1:
        session.pop("id")
    elif choice == 2:
        session["success_rate" if "success_rate" in session else "successRate"] = "high"
    elif choice == 3:
        return orjson.dumps([session])
    else:
        session.pop("output", None)
        session.pop("messages", None)
    return orjson.dumps(session)


def _with_kind(session: dict[str, object], kind: str) -> dict[str, object]:
    metadata = dict(session.get("metadata") or {})  # type: ignore[call-overload]
    metadata["synthetic_kind"] = kind
    return {**session, "metadata": metadata}


def generate(count: int, seed: int = 0, mix: dict[str, float] = MIX, compact: bool = False) -> Iterator[bytes]:
    """Yield `count` JSONL lines (without newline), planted kinds drawn with weights `mix`."""
    rng = random.Random(seed)
    kinds, weights = list(mix), list(mix.values())
    recent: deque[dict[str, object]] = deque(maxlen=2000)
    for index in range(count):
        kind = rng.choices(kinds, weights)[0]
        if kind in ("duplicate", "nearDuplicate") and not recent:
            kind = "good"
        if kind == "duplicate":
            session = dict(rng.choice(recent), id=f"sess-{index:08d}-{rng.getrandbits(32):08x}")
        elif kind == "nearDuplicate":
            session = _near_duplicate(rng, rng.choice(recent), index)
        elif kind == "blank":
            yield b"   "
            continue
        elif kind == "invalidUtf8":
            yield orjson.dumps(_session(rng, index, 0.95))[:-20] + b'\xff\xfe caf\xe9"}'
            continue
        else:
            low = kind == "lowSuccess"
            rate = round(rng.uniform(0.0, 0.9) if low else rng.uniform(0.905, 1.0), 3)
            # Over-long: ~5k estimated tokens, ~1.5k when compact; either way over a 1024-token maxTokens.
            long_bytes = 6_000 if compact else 20_000
            session = _session(rng, index, rate, long_bytes if kind == "tooLong" else 0, compact)
            if kind == "good":
                recent.append(session)
            elif kind == "secret":
                _plant_secret(rng, session, compact)
            elif kind == "empty":
                _empty_answer(session)
            elif kind == "malformed":
                yield _malformed(rng, _with_kind(session, kind))
                continue
        yield orjson.dumps(_with_kind(session, kind))


def _plant_secret(rng: random.Random, session: dict[str, object], compact: bool) -> None:
    if compact:
        leak = f"\nexport TOKEN={fake_secret(rng)}\n"
    else:
        text, secrets = sessionleaks.leak(rng)
        leak = f"\n{text}\n"
        session["metadata"] = {**session["metadata"], "synthetic_secrets": secrets}  # type: ignore[dict-item]
    if "messages" in session:
        messages = session["messages"]
        messages[3]["content"] += leak  # type: ignore[index]
    else:
        session["input"] = str(session["input"]) + leak


def _empty_answer(session: dict[str, object]) -> None:
    if "messages" in session:
        # The agent never answered: its turns were tool calls without text, then a timeout.
        for message in session["messages"]:  # type: ignore[attr-defined]
            if message["role"] == "assistant":
                message["content"] = None
        session["messages"][-1] = {"role": "tool", "content": "timeout"}  # type: ignore[index]
    else:
        session["output"] = "  "
