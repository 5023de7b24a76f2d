"""The curator's decisions checked against the corpus's planted ground truth (sessioncorpus labels every session)."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import orjson

MARKER = b"[REDACTED:"


def _planted(source: Path) -> tuple[dict[int, str], dict[int, list[str]]]:
    """Per line number: the planted kind, and the secrets planted in it (secret-bearing sessions only)."""
    kinds: dict[int, str] = {}
    secrets: dict[int, list[str]] = {}
    with source.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                metadata = orjson.loads(line)["metadata"]
                kinds[number] = metadata["synthetic_kind"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                kinds[number] = "unparseable"
                continue
            if "synthetic_secrets" in metadata:
                secrets[number] = metadata["synthetic_secrets"]
    return kinds, secrets


def ground_truth(source: Path, dataset: Path) -> dict[str, dict[str, int]]:
    """For each planted kind: how many sessions, how many the curator kept, how many of those redaction changed.

    Secret-bearing kept sessions also count `leaked`: those in which a planted secret survived (compared on the
    output's JSON string escaping, which the planted values never need).
    """
    kinds, secrets = _planted(source)
    kept: collections.Counter[str] = collections.Counter()
    changed: collections.Counter[str] = collections.Counter()
    leaked = 0
    for split in ("train", "eval"):
        with (dataset / f"{split}.jsonl").open("rb") as handle:
            for line in handle:
                number = orjson.loads(line)["metadata"]["line"]
                kind = kinds[number]
                kept[kind] += 1
                changed[kind] += MARKER in line
                leaked += any(secret.encode() in line for secret in secrets.get(number, ()))
    total = collections.Counter(kinds.values())
    truth = {kind: {"sessions": total[kind], "kept": kept[kind], "redacted": changed[kind]} for kind in sorted(total)}
    if "secret" in truth:
        truth["secret"]["leaked"] = leaked
    return truth


def redaction_summary(truth: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Clean kept sessions that redaction changed (false positives), and secret-bearing ones it missed."""
    clean_kept = sum(row["kept"] for kind, row in truth.items() if kind != "secret")
    clean_changed = sum(row["redacted"] for kind, row in truth.items() if kind != "secret")
    secret = truth.get("secret", {"kept": 0, "leaked": 0})
    return {
        "cleanKept": clean_kept,
        "cleanChanged": clean_changed,
        "cleanChangedPercent": round(100 * clean_changed / max(clean_kept, 1), 3),
        "secretKept": secret["kept"],
        "secretLeaked": secret.get("leaked", 0),
        "secretRecallPercent": round(100 * (1 - secret.get("leaked", 0) / max(secret["kept"], 1)), 2),
    }
