"""Exact and near-duplicate detection with compact, streaming state (computed in finetune_curate_native).

Exact: 8 bytes of the SHA-256 of the normalised text (ASCII-lowercased UTF-8
with all ASCII whitespace removed, fields NUL-separated: "a bc" equals "ab c",
harmless for agent transcripts); 1M sessions give a collision chance around 3e-8.

Near: MinHash-LSH over byte 8-gram shingles of the same normalised text.
The signature is a one-permutation MinHash (one hash per shingle, the minimum
kept in each of 64 equal ranges of the hash space, empty ranges filled from
the next one; the first BANDS*ROWS are used), O(shingles) a text. Classic
MinHash with k permutations costs O(shingles * k): datasketch's MinHash +
MinHashLSH ran at 193 sessions/s with ~12 kB of index per session, the numpy
version of this scheme at ~14,000/s with ~120 B (bench/curation/probes.py);
the compiled one computes the same keys several times faster. Its Jaccard
estimates agree with datasketch's MinHash (tested). Each band of ROWS values
is folded into one 64-bit key; a session is a near duplicate when any of its
band keys was seen in a kept session. Only band keys are stored, never signatures.

The Deduplicator keeps digests and band keys in flat open-addressing tables
(8-16 bytes a key, against ~60 for a Python set of ints): at a million
sessions the state stays under ~100 MB.

Tuning (tests/unit/curation/test_dedup.py, bench corpus with planted
near-duplicates of 1-3 edited words): 8-byte shingles, 10 bands of 6 rows
puts the 50% detection point near Jaccard 0.64; pairs above 0.85 are caught
with probability > 0.99, pairs below 0.3 flagged with probability < 0.01.
"""

from __future__ import annotations

from finetune_curate_native import BANDS, ROWS, SHINGLE_BYTES, Deduplicator

__all__ = ["BANDS", "ROWS", "SHINGLE_BYTES", "Deduplicator"]
