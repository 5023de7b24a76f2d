"""Differential tests: the native assessment against the pure-Python implementation it replaced (oracle.py).

Every line of generated corpora (both session shapes, secrets, near and exact
duplicates, malformed and invalid UTF-8 lines) and of a fuzzed set of edge
cases (Unicode whitespace and case folding, odd numbers, deep nesting, content
parts, surrogates) must get the same outcome and detail, the same output line
byte for byte, the same split, cap key, exact digest, band keys and redaction
counts.
"""

from __future__ import annotations

import json
import random
from typing import Any

import finetune_curate_native as native
import orjson
import pytest

import sessioncorpus as corpus
from finetune_trainer.curate import pipeline
from finetune_trainer.curate.assess import Rules
from finetune_trainer.curate.outcomes import Rejection

from . import oracle
from .helpers import text

RULES = [
    Rules(0.9, 0.1, True, 2048),
    Rules(0.0, 0.5, False, None),
    Rules(0.5, 0.0, True, 40),
    Rules(0.99, 1.0, True, 1),
]


def _check(rules: Rules, lines: list[bytes], source: str = "/data/sessions.jsonl") -> None:
    assessor = native.Assessor(
        rules.min_success_rate, rules.eval_fraction, rules.near_duplicates, rules.max_tokens, False
    )
    assert not any(b"\n" in line for line in lines)
    block = b"".join(line + b"\n" for line in lines)
    assessed = assessor.assess_block(source, 1, block, 0, len(block), 8 << 20)
    assert len(assessed) == len(lines)
    for index, raw in enumerate(lines):
        expected = oracle.assess(rules, source, index + 1, raw)
        if isinstance(expected, Rejection):
            outcome = assessed.outcome(index)
            assert outcome is not None, raw
            assert outcome[0] == expected.outcome.value, raw
            if expected.detail.startswith("invalid JSON: "):
                # The extension only says "not JSON"; the pipeline words it as orjson does.
                [(_, detail, invalid_json)] = [item for item in assessed.malformed() if item[0] == index]
                assert invalid_json, raw
                assert pipeline.json_error(raw, detail) == expected.detail
            else:
                assert outcome[1] == expected.detail, raw
        else:
            candidate = assessed.candidate(index)
            assert candidate is not None, (raw, assessed.outcome(index))
            line, evaluation, cap_key, digest, keys, redactions = candidate
            assert line == expected.line, raw
            assert (evaluation, cap_key, digest, keys) == (
                expected.evaluation,
                expected.cap_key,
                expected.digest,
                expected.band_keys,
            ), raw
            assert redactions == (expected.redactions or {}), raw


@pytest.mark.parametrize("rules", RULES)
def test_bench_corpus_matches_the_oracle(rules: Rules) -> None:
    _check(rules, list(corpus.generate(3000, seed=11)))


def test_compact_bench_corpus_matches_the_oracle() -> None:
    _check(RULES[0], list(corpus.generate(1000, seed=5, compact=True)))


_SPACES = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2028", "\u3000", "\u200b"]
_SPACES += ["\ufeff"]
_PIECES = [
    *_SPACES,
    *("a", "Z", "é", "日本", "😀", "\x00", "\x01", "\x7f", '"', "\\", "/", "[", "]", "@", ":", "=", "'"),
    *(
        "K",
        "\u212a",
        "\u017f",
        "İ",
        "ß",
        "password",
        "PASSWORD",
        "pa\u017f\u017fword",
        "api_\u212aey",
        "Bearer",
        "bearer",
    ),
    *("sk-" + "a" * 24, "AKIA" + "B" * 16, "ghp_" + "c" * 36, "hf_" + "d" * 30, "glpat-" + "e" * 20),
    *("https://user:pa55word@host/x", "postgres://u:[REDACTED:x]@h", "eyJabcdefghij.eyJabcdefghij.abcdefghij"),
    *("-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "DB_PASSWORD=", "secret: "),
    *("xoxb-1234567890ab", "sk_live_" + "f" * 16, "AIza" + "g" * 35, "https://hooks.slack.com/services/T/B/x"),
    *("[REDACTED:jwt]", "token", "\v=\v", " = ", ":\t'", "Bearer\x0bxyzxyzxyzxyzxyzxyz"),
    # The context rules' keys, flags and schemes (rules.rs), and values that read as code (code_values.rs).
    *('"SecretAccessKey": "', "aws_session_token=", "AccountKey=", "?sig=", "&X-Amz-Signature=", "Q~", ":AA"),
    *("machine h ", "login u ", "password ", "mysql -p", "MySQL -p", " --password ", "curl -u a:", "sshpass -p ", "@"),
    *("Authorization: Basic ", 'authorization": "token ', '"auth": "', "token: ", "PGPASSWORD=", "redis://:"),
    *("self.password", "os.environ[", "getpass(", "none", ")", "_password", "x" * 16, "token :", "token\t="),
    *(".run('", "MTA" + "b" * 22 + ".cdefgh.", "\u017f", "\u212a", "\u0130", "\u0131", "Pa\u017f\u017fword: x"),
    *("LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVkt", "eyJhdXRocyI6", "\r\n", "npm_" + "h" * 36, "ya29." + "i" * 20),
    # What the scan's tests after an anchor look at (follows.rs): quotes, key parts, word boundaries, spaces.
    *('token"', "token' =", "_x-2 =", "-", "_", "Bearer\t", "default\n", "xdefault ", "machine\t", "authorization'"),
]


def _fuzz_text(rng: random.Random) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(rng.randrange(0, 16)))


def _fuzz_value(rng: random.Random) -> Any:
    return rng.choice(
        [None, True, False, 0, 1, -1, 0.5, 1.0, 2**64, 2**63 - 1, -(2**63), 1e-7, "", "x", [], {}, [1], {"a": 1}]
    )


def _fuzz_session(rng: random.Random) -> dict[str, Any]:
    session: dict[str, Any] = {}
    if rng.random() < 0.95:
        session["id"] = rng.choice(["s", "", 7, 0, -3, 2**64 - 1, 1.5, True, None, ["x"], _fuzz_text(rng) or "z"])
    rate_key = rng.choice(["success_rate", "successRate", "success_rate"])
    rate = rng.choice([0.95, 1, 0, 0.5, 0.9, 0.91, 1.0, -0.0, 1e-7, 0.999999999999, 1.5, -1, True, "0.95", None])
    session[rate_key] = rate
    if rng.random() < 0.2:
        session["successRate"] = rng.choice([0.97, None, "x"])
    if rng.random() < 0.3:
        session["metadata"] = rng.choice([{"k": _fuzz_text(rng)}, None, [], "m", 3])
    if rng.random() < 0.5:
        session["messages"] = _fuzz_messages(rng)
    else:
        for name in ("instruction", "input", "output"):
            if rng.random() < 0.9:
                session[name] = _fuzz_text(rng) if rng.random() < 0.85 else _fuzz_value(rng)
    return session


def _fuzz_messages(rng: random.Random) -> Any:
    if rng.random() < 0.05:
        return _fuzz_value(rng)
    messages: list[Any] = []
    for _ in range(rng.randrange(0, 7)):
        if rng.random() < 0.03:
            messages.append(_fuzz_value(rng))
            continue
        message: dict[str, Any] = {"role": rng.choice(["system", "user", "assistant", "tool", "user", "bot", 3])}
        choice = rng.random()
        if choice < 0.6:
            message["content"] = _fuzz_text(rng)
        elif choice < 0.75:
            message["content"] = [
                rng.choice([{"type": "text", "text": _fuzz_text(rng)}, {"type": "image"}, {"text": 5}])
                for _ in range(rng.randrange(0, 3))
            ]
        elif choice < 0.85:
            message["content"] = None
        elif choice < 0.9:
            message["content"] = rng.choice([5, {"text": "x"}, ["x"]])
        messages.append(message)
    return messages


def _encode(rng: random.Random, session: dict[str, Any]) -> bytes:
    # orjson's compact form, or the json module's spaced form with or without \u escapes.
    if rng.random() < 0.3:
        return json.dumps(session, separators=(",", ":"), ensure_ascii=False).encode()
    return json.dumps(session, ensure_ascii=rng.random() < 0.5).encode()


@pytest.mark.parametrize("seed", range(4))
def test_fuzzed_sessions_match_the_oracle(seed: int) -> None:
    rng = random.Random(seed)
    lines = [_encode(rng, _fuzz_session(rng)) for _ in range(3000)]
    for rules in RULES:
        _check(rules, lines)


RAW_LINES = [
    b"",
    b"   \t",
    b"\x0b\x0c",
    b"{",
    b"[1,2",
    b"nan",
    b'{"a":1}x',
    b"123456789012345678901234567890",
    b"1.5",
    b"true",
    b"null",
    b'"text"',
    b'"\\ud800"',
    b'"\\udc00"',
    b'{"id":"a\\ud83d\\ude00","success_rate":1,"instruction":"x","output":"y"}',
    b"\xff",
    b"\xef\xbb\xbf{}",
    b"1e400",
    b"[" * 1024 + b"]" * 1024,
    b"[" * 1025 + b"]" * 1025,
    b'{"metadata":' + b"[" * 1023 + b"]" * 1023 + b',"id":"d","success_rate":1,"instruction":"x","output":"y"}',
    b'{"metadata":' + b"[" * 1030 + b"]" * 1030 + b',"id":"d","success_rate":1,"instruction":"x","output":"y"}',
    b'{"id":"a","success_rate":1,"instruction":"x","output":"y","id":"b"}',
    b'{"id":"a","success_rate":0.95,"instruction":"x\\u0000","output":"y\\u001f\\u007f"}',
    b'{"id":"a","success_rate":1E0,"instruction":"x","output":"y"}',
    b'{"id":"a","success_rate":95e-2,"instruction":"x","output":"y"}',
    b'{"id":18446744073709551615,"success_rate":1,"instruction":"x","output":"y"}',
    b'{"id":18446744073709551616,"success_rate":1,"instruction":"x","output":"y"}',
    b'{"id":-9223372036854775808,"success_rate":1,"instruction":"x","output":"y"}',
    b'{"id":"a","success_rate":0.95,"instruction":"x","output":"y"}\r',
    b' {"id":"a","success_rate":0.95,"instruction":"x","output":"y"} ',
    b'{"id":"a","success_rate":0.95,"instruction":"x","output":"y"}\x00',
    b'{"id":"a","success_rate":0.95,"instruction":"\xe2\x80\xa8","output":"y"}',
    b'{"id":"a","success_rate":0.95,"instruction":"x","output":"\xc3"}',
    b'{"id":"a","success_rate":0.95,"instruction":"x","output":"y",}',
    b'{"id":"a","success_rate":0.95,"instruction":"\t","output":"y"}',
    # Values that end their field (`$` in a rule) followed by a field that starts with `[`.
    b'{"id":"a","success_rate":1,"messages":[{"role":"user","content":"password: admin"},'
    b'{"role":"tool","content":"token: abcdef.0123456789abcdef"},{"role":"assistant","content":"ok"}]}',
    # Repeated keys in messages and content parts (the last wins); JSON that orjson refuses in any value.
    b'{"id":"a","success_rate":1,"messages":[{"role":"bot","content":"x","role":"user"},{"role":"assistant",'
    b'"content":[{"text":"a","text":"b"},{"type":"image"}],"content":[{"text":"c"},{"text":5}]}]}',
    b'{"id":"a","success_rate":1,"messages":[{"role":"user","content":"x","extra":["\\ud800"]},'
    b'{"role":"assistant","content":"y"}]}',
    b'{"id":"a","success_rate":1,"messages":[{"role":"user","content":"x","x":{"y":1e400}},{"role":"assistant"}]}',
    b'{"id":"a","success_rate":1,"messages":[{"role":"user","content":[{"x":"\xff"}]},{"role":"assistant"}]}',
    b'{"id":"a","success_rate":1,"metadata":{"x":1e400},"instruction":"x","output":"y"}',
    b'{"id":"a","success_rate":1,"metadata":{"x":"\\ud800"},"instruction":"x","output":"y"}',
    b'{"id":"a","success_rate":1,"other":["\\udc00", "\xff"],"instruction":"x","output":"y"}',
]


def test_edge_case_lines_match_the_oracle() -> None:
    for rules in RULES:
        _check(rules, RAW_LINES)


NEGATIVE_ZEROS = b'-0\n{"id":-0,"success_rate":1,"instruction":"x","output":"y"}\n'


def test_negative_zero_is_read_as_a_float() -> None:
    """The one known difference: serde_json reads the integer -0 as the float -0.0 (orjson: the int 0).

    It shows only where an integer and a float differ: a line that is just `-0`
    (named "float", not "int"), and an `id` of -0 (malformed, where orjson made it "0").
    A success rate of -0 is 0 either way, never above minSuccessRate (>= 0).
    """
    assessed = native.Assessor(0.0, 0.1, True, None, False).assess_block(
        "s", 1, NEGATIVE_ZEROS, 0, len(NEGATIVE_ZEROS), 1 << 20
    )
    assert assessed.outcome(0) == ("malformed", "a line must be a JSON object, not float")
    assert assessed.outcome(1) == ("malformed", "'id' must be a non-empty string or an integer")


def test_unhashable_role_is_malformed_not_a_crash() -> None:
    """The Python version raised TypeError (an internal error) on a list as a role; now it is malformed."""
    raw = b'{"id":"a","success_rate":1,"messages":[{"role":[],"content":"x"}]}'
    assessed = native.Assessor(0.9, 0.1, True, None, False).assess_block("s", 1, raw, 0, len(raw), 1 << 20)
    roles = "['assistant', 'system', 'tool', 'user']"
    assert assessed.outcome(0) == ("malformed", f"messages[0].role must be one of {roles}")


def test_success_rates_are_written_as_orjson_writes_them() -> None:
    rng = random.Random(3)
    rates = [rng.random() for _ in range(2000)] + [1e-5, 1e-6, 1e-7, 0.1, 1.0, 5e-324, 0.30000000000000004]
    lines = [
        orjson.dumps({"id": str(i), "success_rate": rate, "instruction": "x", "output": text(str(i), 3)})
        for i, rate in enumerate(rates)
    ]
    _check(Rules(0.0, 0.1, True, None), lines)


def test_blocks_split_into_lines_with_numbers_and_length_limits() -> None:
    good = b'{"id":"a","success_rate":1,"instruction":"x","output":"y"}'
    block = good + b"\n" + b"x" * 100 + b"\n\n" + good.replace(b'"a"', b'"b"')  # the last line has no newline
    assessed = native.Assessor(0.5, 0.1, True, None, False).assess_block(
        "f", 41, b"skipped\n" + block, 8, 8 + len(block), 99
    )
    assert len(assessed) == 4
    assert assessed.outcome(1) == ("malformed", "line of 100 bytes is too long")
    assert assessed.outcome(2) == ("empty", "blank line")
    assert assessed.raw(1) == b"x" * 100
    first, last = assessed.candidate(0), assessed.candidate(3)
    assert first is not None and last is not None
    assert orjson.loads(first[0])["metadata"]["line"] == 41
    assert orjson.loads(last[0])["metadata"]["line"] == 44
