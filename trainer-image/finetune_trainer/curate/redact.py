"""Secret redaction: a compiled regex per credential shape, each behind a substring prefilter.

Measured on the benchmark corpus (bench/curation/secrets_probe.py), Yelp's
detect-secrets scans about two orders of magnitude slower than this and only
*detects* (it does not say where to cut), so it cannot meet the curation step's
throughput goal. Python's `re` has no multi-pattern automaton: one big
alternation is tried at every position. Most texts hold no secret at all, so
each rule first checks for a literal marker with `str.__contains__` (a C
substring search) and runs its regex only when a marker is present.

Each pattern has a `keep` group (context such as `Bearer ` or `user:`) that
survives, followed by the secret, which becomes `[REDACTED:<rule>]`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    markers: tuple[str, ...]
    """Literal substrings one of which every match contains; checked on lowercased text if `fold`."""
    pattern: re.Pattern[str]
    fold: bool = False


def _rule(name: str, markers: tuple[str, ...], pattern: str, fold: bool = False) -> Rule:
    flags = re.DOTALL | (re.IGNORECASE if fold else 0)
    return Rule(name, markers, re.compile(pattern, flags), fold)


_NOT_REDACTED = r"(?!\[REDACTED)"

# Order matters: specific shapes first, so a generic rule never re-counts a redacted value.
RULES: tuple[Rule, ...] = (
    _rule(
        "private_key",
        ("-----BEGIN",),
        r"(?P<keep>)-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----.*?"
        r"(?:-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\Z)",
    ),
    _rule(
        "aws_access_key_id",
        ("AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "APKA", "AROA"),
        r"(?P<keep>)\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA)[0-9A-Z]{16}\b",
    ),
    _rule(
        "github_token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        r"(?P<keep>)\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})",
    ),
    _rule("gitlab_token", ("glpat-",), r"(?P<keep>)\bglpat-[A-Za-z0-9_-]{20,}"),
    _rule("slack_token", ("xox",), r"(?P<keep>)\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    _rule("slack_webhook", ("hooks.slack.com",), r"(?P<keep>)https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+"),
    # OpenAI (sk-, sk-proj-, sk-svcacct-) and Anthropic (sk-ant-api03-) keys share the prefix.
    _rule("sk_api_key", ("sk-",), r"(?P<keep>)\bsk-[A-Za-z0-9_-]{20,}"),
    _rule("stripe_key", ("k_live_", "k_test_"), r"(?P<keep>)\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    _rule("google_api_key", ("AIza",), r"(?P<keep>)\bAIza[0-9A-Za-z_-]{35}"),
    _rule("huggingface_token", ("hf_",), r"(?P<keep>)\bhf_[A-Za-z0-9]{30,}"),
    _rule("jwt", ("eyJ",), r"(?P<keep>)\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    _rule(
        "bearer_token",
        ("bearer",),
        rf"(?P<keep>\bbearer\s+){_NOT_REDACTED}[A-Za-z0-9._~+/-]{{16,}}=*",
        fold=True,
    ),
    _rule(
        "url_password",
        ("://",),
        rf"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:){_NOT_REDACTED}[^\s@/]+(?=@)",
    ),
    _rule(
        "password_assignment",
        ("pass", "pwd", "secret", "api_key", "apikey", "api-key", "_token", "-token", "ctoken", "htoken"),
        # A keyword anywhere in a snake/kebab-case name: DB_PASSWORD, client_secret, aws_secret_access_key.
        r"(?P<keep>(?<![a-z0-9])(?:[a-z0-9]+[_-])*(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token"
        r"|auth[_-]?token|refresh[_-]?token)(?:[_-][a-z0-9]+)*[\"']?\s*[:=]\s*[\"']?)"
        rf"{_NOT_REDACTED}[^\s\"',;]{{8,}}",
        fold=True,
    ),
)


def redact(text: str, counts: Counter[str]) -> str:
    """Return `text` with every secret replaced; add one to `counts[rule]` per replacement."""
    folded: str | None = None
    for rule in RULES:
        if rule.fold:
            if folded is None:
                folded = text.lower()
            haystack = folded
        else:
            haystack = text
        if not any(marker in haystack for marker in rule.markers):
            continue
        text, replaced = rule.pattern.subn(rf"\g<keep>[REDACTED:{rule.name}]", text)
        if replaced:
            counts[rule.name] += replaced
            folded = None
    return text
