"""Whole-file verdicts of the gate: each contract reason for rejecting a file, and what is accepted."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest

from rental_analytics.gate import validate_folder, validate_stream
from tests import sample_batch

TX = sample_batch.TRANSACTIONS
TX_HEADER = TX.splitlines()[0]


def zipped(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("rental_transactions.csv", text)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "code", "line"),
    [
        ("rental_transactions.csv", b"", "empty", 1),
        ("rental_transactions.csv", b"\xef\xbb\xbf\r\n", "empty", 1),
        ("rental_transactions.csv", TX.replace("total_amount", "amount").encode(), "missing_column", 1),
        ("rental_transactions.csv", TX.replace(",", ";").encode(), "missing_column", 1),
        ("rental_transactions.csv", TX.replace("dropoff_location", "rental_id").encode(), "repeated_column", 1),
        (
            "rental_transactions.csv",
            TX.replace("rental_id", "transaction_id,rental_id", 1).encode(),
            "repeated_column",
            1,
        ),
        ("vehicles.csv", b"vehicle_id,vehicle_type,active,status\nV1,SUV,1,1\n", "repeated_column", 1),
        ("rental_transactions.csv", (TX + "R9,U1,V\xe9").encode("latin-1"), "not_utf8", 7),
        ("rental_transactions.csv", b"PK\x03\x04\x00\x00binary", "binary", 1),
        ("rental_transactions.csv.gz", zipped(TX), "not_gzip", 1),
        ("rental_transactions.csv.gz", TX.encode(), "not_gzip", 1),
        ("rental_transactions.csv.gz", gzip.compress(TX.encode())[:-12], "truncated_gzip", None),
        ("rental_transactions.csv", gzip.compress(TX.encode()), "compressed_but_named_csv", 1),
        ("payments.csv", TX.encode(), "unknown_dataset", None),
    ],
)
def test_rejected_files_name_their_reason_and_line(name, content, code, line):
    verdict = validate_stream(name, io.BytesIO(content))
    assert not verdict.accepted
    assert (verdict.code, verdict.line) == (code, line)
    assert verdict.reason


def test_semicolon_header_gets_a_hint():
    verdict = validate_stream("rental_transactions.csv", io.BytesIO(TX.replace(",", ";").encode()))
    assert "semicolons" in (verdict.reason or "")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("rental_transactions.csv", TX.encode()),
        ("rental_transactions.csv", ("\ufeff" + TX.replace("\n", "\r\n")).encode()),
        ("rental_transactions.csv", TX.rstrip("\n").encode()),
        ("rental_transactions.csv.gz", gzip.compress(TX.encode()) + gzip.compress(b"R8,U1,V1,x,y,L1,,1\n")),
        ("rental_transactions.csv", TX.replace("rental_id", " Transaction_ID ").encode()),
        ("locations.csv", b'location_id,location_name\nL1,"Airport\nTerminal ""A"""\n'),
        ("rental_transactions.csv", (TX_HEADER + ",notes\n" + "R1,U1,V1,a,b,L1,,1," + "x" * 1_100_000 + "\n").encode()),
    ],
)
def test_accepted_files(name, content):
    verdict = validate_stream(name, io.BytesIO(content))
    assert verdict.accepted, verdict.reason


def test_header_only_is_accepted_with_a_warning():
    verdict = validate_stream("users.csv", io.BytesIO(b"user_id,first_name\n"))
    assert verdict.accepted and not verdict.has_data_rows
    assert "no data rows" in " ".join(verdict.warnings)


def test_unknown_columns_are_a_warning():
    verdict = validate_stream("users.csv", io.BytesIO(b"user_id,shoe_size\nU1,42\n"))
    assert verdict.accepted
    assert verdict.warnings == ("unknown column 'shoe_size' is ignored",)


def test_folder_reports_missing_and_doubled_datasets(write_batch):
    files = sample_batch.files()
    del files["users"]
    files["vehicles.csv.gz"] = gzip.compress(files["vehicles"].encode())
    verdict = validate_folder(write_batch(files))
    assert not verdict.accepted
    assert verdict.missing == ("users",)
    assert [v.code for v in verdict.files if not v.accepted] == ["duplicate_dataset"]
