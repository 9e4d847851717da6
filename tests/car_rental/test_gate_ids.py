"""The gate's id check: which files it vouches for, as having an id on every row and no id on two."""

from __future__ import annotations

import random

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
    assert whole[1:].to_pylist() == sliced.to_pylist() == string_hashes(pa.array(values)).to_pylist()


def test_a_million_different_ids_hash_differently():
    generator = random.Random(7)
    ids = [f"{generator.getrandbits(32):010x}" for _ in range(1_000_000)]  # about a hundred repeat
    distinct = len(set(ids))
    assert len(set(string_hashes(pa.array(ids)).to_pylist())) == distinct
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


def _reference_hash(value: str) -> int:
    """The hash as the docstring defines it, one Python integer at a time."""
    data = value.encode()
    total = sum((byte + 1) * pow(0x9E3779B97F4A7C15, position, 1 << 64) for position, byte in enumerate(data))
    return (total % (1 << 64)) ^ ((len(data) * 0xC2B2AE3D27D4EB4F) % (1 << 64))


def test_the_hash_is_the_polynomial_of_each_ids_bytes_across_steps():
    # Long strings put step boundaries (_STEP_BYTES) inside the array; the hash of each string is its own.
    generator = random.Random(3)
    values = [
        "".join(generator.choices("ab\u00e9x1", k=generator.randint(1, MAX_HASHED_ID_BYTES))) for _ in range(3000)
    ]
    hashes = string_hashes(pa.array(["pad", *values]).slice(1))
    assert hashes.to_pylist() == [_reference_hash(value) for value in values]


def test_the_gate_imports_without_numpy():
    # The Lambda layer ships pyarrow alone: nothing the gate imports may need NumPy (docs/deployment.md).
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['numpy'] = None; "
        "import rental_analytics.car_rental.gate.admission, rental_analytics.car_rental.gate.files; "
        "from rental_analytics.car_rental.gate.ids import IdCheck; import pyarrow as pa; "
        "c = IdCheck(); c.add(pa.array(['a', 'b'])); assert c.unique()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
