#!/usr/bin/env python3
"""Write the demo's agent-session log: manifests/samples/data/sessions.jsonl.

About 180 sessions in both input shapes (flat instruction/input/output and chat
messages), mixed quality: low success rates, exact and near duplicates,
malformed and empty lines, a few fake credentials for redaction to find, and
a few over-long sessions. The quickstart job feeds it to curation through a
ConfigMap, so every line is valid UTF-8 (ConfigMap data is text) and the file
stays under 240 KiB: `kubectl apply` copies a ConfigMap into its
last-applied-configuration annotation, and annotations are capped at 256 KiB.
Deterministic: re-running it rewrites the same bytes.

    python hack/make-sample-sessions.py [--count 180] [--output PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sessioncorpus import MIX, generate

REPOSITORY = Path(__file__).resolve().parents[1]

# ConfigMap values must be UTF-8 text: no deliberately broken encodings here.
DEMO_MIX = {kind: weight for kind, weight in MIX.items() if kind != "invalidUtf8"}
LIMIT_BYTES = 240 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=180)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--output", type=Path, default=REPOSITORY / "manifests/samples/data/sessions.jsonl")
    args = parser.parse_args()
    data = b"".join(line + b"\n" for line in generate(args.count, args.seed, DEMO_MIX, compact=True))
    data.decode("utf-8")  # fails loudly if a line could not live in a ConfigMap
    if len(data) > LIMIT_BYTES:
        raise SystemExit(f"{len(data)} bytes is over the {LIMIT_BYTES}-byte ConfigMap budget; lower --count")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    print(f"wrote {args.count} sessions, {len(data)} bytes, to {args.output}")


if __name__ == "__main__":
    main()
