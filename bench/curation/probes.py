"""Why the curator has its own redaction rules and compact MinHash-LSH: the alternatives, measured.

    python bench/curation/probes.py [--sessions 5000]

On sessions from the benchmark corpus that reach the redaction and dedup
steps, compares:
- secret redaction: the curator's rules (finetune_curate_native.redact) vs Yelp's
  detect-secrets (detection only, line by line, its default plugins);
- near-duplicate detection: the curator's one-permutation MinHash + compact
  band set vs datasketch MinHash(num_perm=60) + MinHashLSH, same band layout;
  sessions/s and bytes of index per session (the curator's table size; tracemalloc
  for datasketch).
Sessions are the corpus's flat-shape ones above the default success rate.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
from datasketch import MinHash, MinHashLSH
from detect_secrets.core.scan import scan_line
from detect_secrets.settings import default_settings
from finetune_curate_native import band_keys, exact_digest, normalise, redact

from finetune_trainer.curate import dedup

REPOSITORY = Path(__file__).resolve().parents[2]
# Run as a script, only bench/curation/ is on sys.path: add the repository (the bench package) and hack/ (the
# session corpus generator, shared with hack/make-sample-sessions.py).
sys.path[:0] = [str(REPOSITORY), str(REPOSITORY / "hack")]

from bench.curation import cache  # noqa: E402

Session = tuple[str, str, str]
"""instruction, input, output"""


def sample_sessions(count: int) -> list[Session]:
    sessions: list[Session] = []
    with cache.corpus(200_000).open("rb") as handle:
        for line in handle:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(record, dict) or not isinstance(record.get("success_rate"), float):
                continue
            fields = (record.get("instruction"), record.get("input") or "", record.get("output"))
            if record["success_rate"] > 0.9 and all(isinstance(field, str) for field in fields):
                sessions.append(fields)  # type: ignore[arg-type]
                if len(sessions) == count:
                    break
    return sessions


def rate(work: Callable[[], object], items: int) -> float:
    started = time.perf_counter()
    work()
    return items / (time.perf_counter() - started)


def indexed_bytes(work: Callable[[], object], items: int) -> float:
    tracemalloc.start()
    keep = work()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del keep
    return peak / items


def ours(texts: list[bytes]) -> dedup.Deduplicator:
    deduplicator = dedup.Deduplicator()
    for text, keys in zip(texts, band_keys(texts), strict=True):
        deduplicator.is_duplicate(exact_digest(text), keys)
    return deduplicator


def datasketch_lsh(texts: list[bytes]) -> MinHashLSH:
    lsh = MinHashLSH(num_perm=dedup.BANDS * dedup.ROWS, params=(dedup.BANDS, dedup.ROWS))
    for index, data in enumerate(texts):
        minhash = MinHash(num_perm=dedup.BANDS * dedup.ROWS)
        minhash.update_batch([data[i : i + dedup.SHINGLE_BYTES] for i in range(len(data) - 7)])
        if not lsh.query(minhash):
            lsh.insert(str(index), minhash)
    return lsh


def detect_secrets_scan(sessions: list[Session]) -> int:
    found = 0
    with default_settings():
        for session in sessions:
            for field in session:
                for line in field.splitlines():
                    found += sum(1 for _ in scan_line(line))
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=5000)
    args = parser.parse_args()
    sessions = sample_sessions(args.sessions)
    count = len(sessions)
    counts: Counter[str] = Counter()

    def our_redaction() -> None:
        for session in sessions:
            for field in session:
                counts.update(redact(field)[1])

    texts = [normalise(*session) for session in sessions]
    results = {
        "sessions": count,
        "redaction": {
            "curatorSessionsPerSecond": round(rate(our_redaction, count)),
            "detectSecretsSessionsPerSecond": round(rate(lambda: detect_secrets_scan(sessions), count)),
        },
        "nearDuplicates": {
            "curatorSessionsPerSecond": round(rate(lambda: ours(texts), count)),
            "datasketchSessionsPerSecond": round(rate(lambda: datasketch_lsh(texts), count)),
            # The extension's tables live outside Python's allocator: tracemalloc cannot see them.
            "curatorIndexBytesPerSession": round(ours(texts).nbytes / count),
            "datasketchIndexBytesPerSession": round(indexed_bytes(lambda: datasketch_lsh(texts), count)),
        },
    }
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
