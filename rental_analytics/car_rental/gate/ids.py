"""Whether a file's ids are all there and all different, told from a 64-bit hash of each row's id."""

from __future__ import annotations

import functools

import pyarrow as pa
import pyarrow.compute as pc

# Eight bytes a row: 32M rows (256 MiB of hashes) is where the gate stops vouching and the job compares ids.
MAX_HASHED_ROWS = 1 << 25
# Longer ids are vouched for by no one: the job compares them.
MAX_HASHED_ID_BYTES = 1024
# Odd 64-bit constants: the base of the polynomial hash and the multiplier that mixes in an id's length.
_BASE = 0x9E3779B97F4A7C15
_LENGTH_MIX = 0xC2B2AE3D27D4EB4F
_WORD = 1 << 64
# The bytes hashed in one step: the tables of powers below hold this many entries of eight bytes each.
_STEP_BYTES = 1 << 20
# The hashes are kept in this many groups by their top bits, so that the end sorts one group at a time.
_GROUP_BITS = 4
_U64 = pa.uint64()


def _powers(base: int, count: int) -> pa.Array:
    """base ** k modulo 2 ** 64 for k in [0, count); Arrow's unchecked arithmetic wraps at 2 ** 64."""
    return pc.cumulative_prod(pa.concat_arrays([pa.array([1], _U64), pa.repeat(pa.scalar(base, _U64), count - 1)]))


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[pa.Array, pa.Array, pa.Array]:
    """Powers of the base, of its inverse modulo 2 ** 64, and the running sums of the first (one entry ahead)."""
    powers = _powers(_BASE, _STEP_BYTES + 1)
    inverse_powers = _powers(pow(_BASE, -1, _WORD), _STEP_BYTES + 1)
    prefix = pa.concat_arrays([pa.array([0], _U64), pc.cumulative_sum(powers)])
    return powers, inverse_powers, prefix


def _step_hashes(strings: pa.Array) -> pa.Array:
    """The hashes of a slice of strings holding at most _STEP_BYTES bytes (see `string_hashes`)."""
    powers, inverse_powers, prefix = _tables()
    count = len(strings)
    offsets = pa.Array.from_buffers(pa.int32(), count + 1, [None, strings.buffers()[1]], offset=strings.offset)
    first, last = offsets[0].as_py(), offsets[count].as_py()
    data = pa.Array.from_buffers(pa.uint8(), last - first, [None, strings.buffers()[2]], offset=first)
    relative = pc.subtract(offsets, pa.scalar(first, pa.int32()))
    starts, ends = relative.slice(0, count), relative.slice(1, count)
    # Byte k of the slice weighs base ** k; a string's sum, divided by base ** (its first k), is its own
    # polynomial of (byte + 1) ** position, the + 1 being the sum of base ** k over its bytes.
    terms = pc.multiply(data.cast(_U64), powers[: len(data)])
    running = pa.concat_arrays([pa.array([0], _U64), pc.cumulative_sum(terms)])
    weighted = pc.add(
        pc.subtract(pc.take(running, ends), pc.take(running, starts)),
        pc.subtract(pc.take(prefix, ends), pc.take(prefix, starts)),
    )
    lengths = pc.subtract(ends, starts).cast(_U64)
    return pc.bit_wise_xor(
        pc.multiply(weighted, pc.take(inverse_powers, starts)), pc.multiply(lengths, pa.scalar(_LENGTH_MIX, _U64))
    )


def string_hashes(strings: pa.Array, longest: int | None = None) -> pa.Array:
    """A 64-bit polynomial hash of each string of an array without nulls, with Arrow's kernels alone.

    Equal strings hash alike; two different strings hash alike rarely enough that a file of millions of
    distinct ids almost never shows two equal hashes. When one does, the ids are only reported as perhaps
    repeated, and the Spark job compares them itself: a collision costs time, never a wrong count. `longest`
    is the byte length of the longest string, when the caller knows it.
    """
    if pa.types.is_large_string(strings.type):
        strings = strings.cast(pa.string())
    if longest is None:
        longest = pc.max(pc.binary_length(strings)).as_py() or 0
    # Slices of whole strings that fit the tables of powers.
    rows_per_step = max(1, _STEP_BYTES // max(1, longest))
    steps = [_step_hashes(strings.slice(start, rows_per_step)) for start in range(0, len(strings), rows_per_step)]
    return pa.concat_arrays(steps) if steps else pa.array([], _U64)


class IdCheck:
    """Follows a file's ids batch by batch: at the end, whether every row had an id and no two the same.

    Ids are compared as the gate trims them (every kind of white space), more loosely than the Spark job, which
    trims spaces: ids that differ here differ there too. A file the check cannot vouch for (a blank id, an id
    longer than MAX_HASHED_ID_BYTES, more than MAX_HASHED_ROWS rows, a row the reader set aside) is not
    reported unique, and the job compares its rows as it always can.
    """

    def __init__(self, max_rows: int = MAX_HASHED_ROWS) -> None:
        self._max_rows = max_rows
        # Per group of hashes by their top bits, the batches' parts: equal hashes always share a group.
        self._groups: list[list[pa.Array]] = [[] for _ in range(1 << _GROUP_BITS)]
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
        hashes = string_hashes(trimmed, longest)
        group_of = pc.shift_right(hashes, pa.scalar(64 - _GROUP_BITS, _U64))
        for group, parts in enumerate(self._groups):
            parts.append(pc.filter(hashes, pc.equal(group_of, pa.scalar(group, _U64))))

    def give_up(self) -> None:
        """The file's ids cannot be vouched for; forget what was kept."""
        self.vouched = False
        self._groups = [[] for _ in range(1 << _GROUP_BITS)]

    def unique(self) -> bool:
        """Whether every id seen was present, and each one different from every other; asked once, at the end."""
        if not self.vouched:
            return False
        # One group at a time: memory holds the hashes about once, and the sorted copy of a sixteenth of them.
        while self._groups:
            group = pa.chunked_array(self._groups.pop(), _U64).combine_chunks()
            ordered = pc.take(group, pc.sort_indices(group))
            if len(ordered) > 1 and pc.any(pc.equal(ordered[1:], ordered[:-1])).as_py():
                return False
        return True
