import random

import numpy as np
import pytest
from datasketch import MinHash
from finetune_curate_native import CompactSet, band_keys, exact_digest, normalise, signature

import sessioncorpus as corpus
from finetune_trainer.curate import dedup

from .helpers import text


def shingles(data: bytes) -> set[bytes]:
    return {data[i : i + dedup.SHINGLE_BYTES] for i in range(len(data) - dedup.SHINGLE_BYTES + 1)}


def test_normalisation_ignores_case_and_whitespace_only() -> None:
    assert normalise("Fix  the\nTest", "", "Done.") == normalise("fix the test", "", "done.")
    # Only ASCII is case-folded (bytes.lower, in C); other letters stay as they are.
    assert normalise("Ünïcode Stays", "", "x") == "Ünïcodestays\x00\x00x".encode()
    assert normalise("Fix the test", "", "Done.") != normalise("Fix the test", "", "Done!")
    # Field boundaries count: moving text from instruction to output is a different sample.
    assert normalise("a b", "", "c") != normalise("a", "", "b c")


def seen(deduplicator: dedup.Deduplicator, normalised: bytes, near: bool = True) -> bool:
    keys = band_keys([normalised])[0] if near else []
    return deduplicator.is_duplicate(exact_digest(normalised), keys)


def test_exact_duplicates_are_caught_after_normalisation() -> None:
    deduplicator = dedup.Deduplicator()
    first = normalise("Fix the test", "ctx", "Done")
    again = normalise("FIX  the test", "ctx", "Done ")
    assert not seen(deduplicator, first)
    assert seen(deduplicator, again)
    assert (deduplicator.exact_hits, deduplicator.near_hits) == (1, 0)


def test_signature_estimates_jaccard_like_datasketch_minhash() -> None:
    """Our one-permutation MinHash and datasketch's 256-permutation MinHash agree on similarity."""
    rng = random.Random(1)
    for trial in range(20):
        words = text(f"jaccard-{trial}", 80).split()
        base = " ".join(words).encode()
        for _ in range(rng.randint(0, 30)):
            words[rng.randrange(len(words))] = f"edit{rng.randrange(10**6)}"
        other = " ".join(words).encode()
        ours = np.mean(np.array(signature(base)) == np.array(signature(other)))
        reference_a, reference_b = MinHash(num_perm=256), MinHash(num_perm=256)
        reference_a.update_batch(list(shingles(base)))
        reference_b.update_batch(list(shingles(other)))
        exact = len(shingles(base) & shingles(other)) / len(shingles(base) | shingles(other))
        assert abs(reference_a.jaccard(reference_b) - exact) < 0.12
        assert abs(ours - exact) < 0.2, (trial, ours, exact)


def test_planted_near_duplicates_are_caught_and_distinct_sessions_kept() -> None:
    """The corpus generator's near-duplicates: a re-run whose answer differs in 1-3 words."""
    rng = random.Random(7)
    deduplicator = dedup.Deduplicator()
    originals = [corpus._session(rng, index, 0.95) for index in range(400)]
    flagged_originals = 0
    for session in originals:
        flagged_originals += seen(deduplicator, _normalised(session))
    caught = 0
    for index, session in enumerate(originals):
        caught += seen(deduplicator, _normalised(corpus._near_duplicate(rng, session, 1000 + index)))
    assert flagged_originals <= 2  # distinct sessions sharing a system prompt are not near-duplicates
    assert caught >= 396  # >= 99% of planted near-duplicates
    # An edit may swap a word for itself: then the copy is an exact duplicate.
    assert deduplicator.near_hits + deduplicator.exact_hits == caught + flagged_originals


def test_near_duplicates_are_kept_when_dedup_is_off() -> None:
    deduplicator = dedup.Deduplicator()
    a = normalise(text("same", 80))
    b = a.replace(a[20:28], b"changed!", 1)
    assert not seen(deduplicator, a, near=False)
    assert not seen(deduplicator, b, near=False)
    # The same pair, with near-duplicate keys, is caught.
    with_keys = dedup.Deduplicator()
    assert not seen(with_keys, a)
    assert seen(with_keys, b)


def test_short_texts_get_a_full_signature() -> None:
    assert len(signature(b"ok")) == dedup.BANDS * dedup.ROWS
    assert [len(keys) for keys in band_keys([b"ok", b"", b"a longer text than eight bytes"])] == [dedup.BANDS] * 3


def test_batched_signatures_equal_one_at_a_time() -> None:
    texts = [text(f"batch-{index}", index).encode() for index in range(130)]
    batched = band_keys(texts)
    assert batched == [band_keys([one])[0] for one in texts]
    assert len(set(map(tuple, batched))) == len(texts)


def _normalised(session: dict[str, object]) -> bytes:
    if "messages" in session:
        messages = session["messages"]
        assert isinstance(messages, list)
        return normalise(*(str(message["content"]) for message in messages))
    return normalise(str(session["instruction"]), str(session["input"]), str(session["output"]))


@pytest.mark.parametrize("count", [0, 10, 50_000])
def test_compact_set_holds_exactly_what_was_added_across_growth(count: int) -> None:
    rng = random.Random(count)
    keys = {rng.getrandbits(64) for _ in range(count)} | {0}
    compact = CompactSet(capacity=16)
    for key in keys:
        compact.add(key)
        compact.add(key)
    assert len(compact) == len(keys)
    assert all(key in compact for key in keys)
    assert not any(rng.getrandbits(64) in compact for _ in range(1000))
    assert compact.nbytes <= 8 * 4 * max(len(keys), 16)


def test_compact_set_capacity_must_be_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        CompactSet(capacity=1000)
