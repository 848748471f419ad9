"""A Bloom filter of ids: two bytes per id, so a million-line input stays small.

It answers "new" or "maybe seen"; the planner settles each "maybe" exactly with a
second pass over the input (`PromptReader.settle`, called by `Planner.jobs`).
Blocked: the bits of one id all fall in one 64-bit word, one hash per id (Python's own
string hash: the filter lives and dies in one process, so its per-process salt does no
harm). Pure, no I/O.
"""

from __future__ import annotations

from array import array

BITS_PER_ID = 16  # about one false "maybe" per 1,000 ids at capacity
BITS_SET_PER_ID = 6  # three 12-bit slices of the hash, each naming two bits of the word
MIN_WORDS = 1024
_64_BITS = (1 << 64) - 1
# 12 bits of hash -> a word with the two bits they name (6 bits each) set.
_TWO_BITS = tuple((1 << (n & 63)) | (1 << (n >> 6)) for n in range(4096))


class BloomFilter:
    """A fixed-size Bloom filter sized for `capacity` ids (more still work, less well)."""

    __slots__ = ("_words",)

    def __init__(self, capacity: int) -> None:
        words = max(MIN_WORDS, capacity * BITS_PER_ID // 64)
        self._words = array("Q", bytes(8 * words))

    def add(self, key: str) -> bool:
        """Add `key`; True when it was surely not added before, False when it may have been."""
        value = hash(key) & _64_BITS  # per-process salted, which is all a filter needs
        words = self._words
        index = value % len(words)
        mask = (
            _TWO_BITS[(value >> 20) & 4095]
            | _TWO_BITS[(value >> 32) & 4095]
            | _TWO_BITS[(value >> 44) & 4095]
        )
        word = words[index]
        if word & mask == mask:
            return False
        words[index] = word | mask
        return True

    @property
    def size_bytes(self) -> int:
        """Memory the bits take."""
        return len(self._words) * 8
