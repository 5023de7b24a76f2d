"""The naive baseline: pandas reads the whole JSONL, filters on success rate, writes JSONL.

It does far less than the curator (no validation, redaction, dedup, split or
manifest) and is fed only the lines it can parse, because one bad line makes
`read_json` raise. Usage: python bench/curation/baseline.py IN.jsonl OUT.jsonl
"""

from __future__ import annotations

import sys

import pandas as pd


def main(source: str, target: str) -> None:
    frame = pd.read_json(source, lines=True)
    rate = frame["success_rate"].fillna(frame["successRate"]) if "successRate" in frame else frame["success_rate"]
    kept = frame[pd.to_numeric(rate, errors="coerce") > 0.9]
    kept.to_json(target, orient="records", lines=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
