"""Deterministic, re-curation-stable assignment of samples, keyed by session id.

A session's split depends on its id alone, so re-curating a grown log never
moves an old session from train to eval (which would leak it into evaluation).
The cap (`maxSamples`) uses an independent hash: keeping the smallest split
hashes would otherwise keep the eval sessions first.
"""

from __future__ import annotations

import hashlib

_SPACE = 1 << 64


def _hash(session_id: str, purpose: bytes) -> int:
    digest = hashlib.blake2b(session_id.encode(), digest_size=8, person=purpose).digest()
    return int.from_bytes(digest, "little")


def is_eval(session_id: str, eval_fraction: float) -> bool:
    return _hash(session_id, b"finetune-split") < eval_fraction * _SPACE


def cap_key(session_id: str) -> int:
    return _hash(session_id, b"finetune-cap")
