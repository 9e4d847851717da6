"""The gate's id check: which files it vouches for, as having an id on every row and no id on two."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from rental_analytics.car_rental.gate.ids import MAX_HASHED_ID_BYTES, IdCheck, string_hashes


def _check(*batches: list[str | None], max_rows: int = 1 << 20) -> bool:
    check = IdCheck(max_rows)
    for batch in batches:
        check.add(pa.array(batch, pa.string()))
    return check.unique()


def test_equal_strings_hash_alike_wherever_they_sit_in_an_array():
    values = ["04bbfa06f1", "0e672a709e", "5144945047", "é日本", "x" * 300]
    whole = string_hashes(pa.array(["pad", *values]))
    sliced = string_hashes(pa.array(["pad", *values]).slice(1))  # an array that starts inside its buffers
    assert list(whole[1:]) == list(sliced) == list(string_hashes(pa.array(values)))


def test_a_million_different_ids_hash_differently():
    generator = random.Random(7)
    ids = [f"{generator.getrandbits(32):010x}" for _ in range(1_000_000)]  # about a hundred repeat
    distinct = len(set(ids))
    assert len(np.unique(string_hashes(pa.array(ids)))) == distinct
    assert distinct < len(ids)
    assert _check(ids[: len(ids) // 2], ids[len(ids) // 2 :]) is False
    assert _check(sorted(set(ids))) is True


@pytest.mark.parametrize(
    ("batches", "unique"),
    [
        ([["a", "b"], ["c"]], True),
        ([["a", "b"], ["b"]], False),  # repeated across batches
        ([["a", " a\t"]], False),  # the same id once trimmed
        ([["a", "  "]], False),  # a blank id
        ([["a", None]], False),  # an absent one
        ([["ab", "ba"]], True),  # the same bytes in another order
        ([["a"], ["x" * (MAX_HASHED_ID_BYTES + 1)]], False),  # too long to be vouched for
        ([], True),  # no rows
    ],
)
def test_which_files_the_check_vouches_for(batches, unique):
    assert _check(*batches) is unique


def test_more_rows_than_the_check_keeps_are_not_vouched_for():
    assert _check(["a", "b"], ["c"], max_rows=3) is True
    assert _check(["a", "b"], ["c", "d"], max_rows=3) is False


def test_a_check_that_gave_up_stays_so():
    check = IdCheck()
    check.add(pa.array(["a"]))
    check.give_up()
    check.add(pa.array(["b"]))
    assert check.unique() is False
