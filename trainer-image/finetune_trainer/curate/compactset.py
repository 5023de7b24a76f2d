"""A set of 64-bit hashes stored in one flat array: 8 bytes a slot instead of ~60 for a Python set.

Deduplication state is the only part of curation that grows with the input;
at a million sessions a Python `set` of ints would cost several hundred MB
with the near-duplicate band keys. Open addressing with linear probing over
`array('Q')` keeps it at 8-16 bytes a key. Keys are already uniformly mixed
hashes, so their low bits index the table directly.
"""

from __future__ import annotations

from array import array

import numpy as np

# Up to 3/4 full: misses (most lookups) then probe ~3 slots on average between doublings.
_MAX_LOAD = 0.75
# Keys re-inserted per vectorised pass when the table grows: bounds the temporaries to ~10 MB.
_REBUILD_CHUNK = 1 << 18


class CompactSet:
    def __init__(self, capacity: int = 1 << 16) -> None:
        if capacity & (capacity - 1):
            raise ValueError("capacity must be a power of two")
        self._slots = _zeros(capacity)
        self._mask = capacity - 1
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        return len(self._slots) * 8

    def __contains__(self, key: int) -> bool:
        key = key or 1  # 0 marks an empty slot
        slots, mask = self._slots, self._mask
        index = key & mask
        while True:
            value = slots[index]
            if value == key:
                return True
            if value == 0:
                return False
            index = (index + 1) & mask

    def add(self, key: int) -> None:
        key = key or 1
        slots, mask = self._slots, self._mask
        index = key & mask
        while True:
            value = slots[index]
            if value == key:
                return
            if value == 0:
                break
            index = (index + 1) & mask
        slots[index] = key
        self._size += 1
        if self._size > _MAX_LOAD * len(slots):
            self._grow()

    def _grow(self) -> None:
        old = np.frombuffer(self._slots, dtype=np.uint64)
        keys = old[old != 0]
        del old  # release the view, so the old table can be freed
        slots = _zeros(2 * len(self._slots))
        # numpy writes straight into the new array's buffer: no copy of the table at any point.
        _build_table(keys, np.frombuffer(slots, dtype=np.uint64))
        self._slots = slots
        self._mask = len(slots) - 1


def _zeros(capacity: int) -> array[int]:
    # Repetition allocates the array once; array("Q", bytes(n)) would hold two copies for a moment.
    return array("Q", [0]) * capacity


def _build_table(keys: np.ndarray, table: np.ndarray) -> None:
    """Insert distinct non-zero `keys` into the empty `table` with linear probing, vectorised in rounds.

    A Python loop over millions of slots would stall curation for seconds at
    each doubling. Each round every pending key tries its next slot; one key
    wins each free slot, the rest probe on. A key only ever moves past occupied
    slots, so the result is exactly a valid linear-probing table.
    """
    for first in range(0, keys.size, _REBUILD_CHUNK):
        _insert(table, keys[first : first + _REBUILD_CHUNK])


def _insert(table: np.ndarray, keys: np.ndarray) -> None:
    mask = np.uint64(table.size - 1)
    pending = keys
    position = pending & mask
    while pending.size:
        free = table[position] == 0
        _, first = np.unique(position[free], return_index=True)
        winners = np.flatnonzero(free)[first]
        table[position[winners]] = pending[winners]
        placed = np.zeros(pending.size, dtype=bool)
        placed[winners] = True
        pending = pending[~placed]
        position = (position[~placed] + np.uint64(1)) & mask
