"""Whether a file's ids are all there and all different, told from a 64-bit hash of each row's id."""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Eight bytes a row: 32M rows (256 MiB of hashes) is where the gate stops vouching and the job compares ids.
MAX_HASHED_ROWS = 1 << 25
# Longer ids are vouched for by no one: the job compares them.
MAX_HASHED_ID_BYTES = 1024
# Odd 64-bit constants: the base of the polynomial hash and the multiplier that mixes in an id's length.
_BASE = np.uint64(0x9E3779B97F4A7C15)
_LENGTH_MIX = np.uint64(0xC2B2AE3D27D4EB4F)


@functools.lru_cache(maxsize=1)
def _powers() -> np.ndarray:
    """_BASE ** i modulo 2 ** 64 for every byte position an id may have."""
    powers = np.full(MAX_HASHED_ID_BYTES, _BASE, dtype=np.uint64)
    powers[0] = 1
    return np.cumprod(powers, dtype=np.uint64)


def string_hashes(strings: pa.Array) -> np.ndarray:
    """A 64-bit polynomial hash of each string of an array without nulls or empty strings, all vectorised.

    Equal strings hash alike; two different strings hash alike rarely enough that a file of millions of
    distinct ids almost never shows two equal hashes. When one does, the ids are only reported as perhaps
    repeated, and the Spark job compares them itself: a collision costs time, never a wrong count.
    """
    count = len(strings)
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32, count=count + 1, offset=strings.offset * 4)
    data = np.frombuffer(strings.buffers()[2], dtype=np.uint8)
    first, lengths = offsets[0], np.diff(offsets)
    values = data[first : offsets[-1]].astype(np.uint64) + np.uint64(1)
    starts = offsets[:-1] - first
    position = np.arange(len(values)) - np.repeat(starts, lengths)
    sums = np.add.reduceat(values * _powers()[position], starts)
    hashes: np.ndarray = sums ^ (lengths.astype(np.uint64) * _LENGTH_MIX)
    return hashes


class IdCheck:
    """Follows a file's ids batch by batch: at the end, whether every row had an id and no two the same.

    Ids are compared as the gate trims them (every kind of white space), more loosely than the Spark job, which
    trims spaces: ids that differ here differ there too. A file the check cannot vouch for (a blank id, an id
    longer than MAX_HASHED_ID_BYTES, more than MAX_HASHED_ROWS rows, a row the reader set aside) is not
    reported unique, and the job compares its rows as it always can.
    """

    def __init__(self, max_rows: int = MAX_HASHED_ROWS) -> None:
        self._max_rows = max_rows
        self._hashes: list[np.ndarray] = []
        self._rows = 0
        self.vouched = True

    def add(self, ids: pa.Array) -> None:
        """Take the ids of the next batch of rows."""
        if not self.vouched or not len(ids):
            return
        trimmed = pc.utf8_trim_whitespace(ids)
        shortest, longest = (value.as_py() for value in pc.min_max(pc.binary_length(trimmed)).values())
        self._rows += len(ids)
        blank = trimmed.null_count > 0 or shortest == 0
        if blank or longest > MAX_HASHED_ID_BYTES or self._rows > self._max_rows:
            self.give_up()
            return
        self._hashes.append(string_hashes(trimmed))

    def give_up(self) -> None:
        """The file's ids cannot be vouched for; forget what was kept."""
        self.vouched = False
        self._hashes = []

    def unique(self) -> bool:
        """Whether every id seen was present, and each one different from every other; asked once, at the end."""
        if not self.vouched:
            return False
        hashes = np.empty(self._rows, dtype=np.uint64)
        filled = 0
        while self._hashes:  # copied part by part, so that memory holds the hashes about once, not twice
            part = self._hashes.pop(0)
            hashes[filled : filled + len(part)] = part
            filled += len(part)
        hashes.sort()
        return not bool(np.any(hashes[1:] == hashes[:-1]))
