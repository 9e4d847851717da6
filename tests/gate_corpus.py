"""The upload gate's corpus: files that each earn a known verdict, used on local paths and through S3."""

from __future__ import annotations

import gzip
import io
import zipfile
from dataclasses import dataclass, field

from tests import sample_batch

TX = sample_batch.TRANSACTIONS
TX_HEADER = TX.splitlines()[0]


@dataclass(frozen=True)
class Case:
    """One file and the gate's expected verdict: `code` None means accepted."""

    label: str
    name: str
    content: bytes
    code: str | None = None
    line: int | None = None
    issues: dict[str, int] = field(default_factory=dict)
    rows: int | None = None


def zipped(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("rental_transactions.csv", text)
    return buffer.getvalue()


def tx_rows(*rows: str) -> bytes:
    return (TX_HEADER + "\n" + "\n".join(rows) + "\n").encode()


REJECTED = [
    Case("empty", "rental_transactions.csv", b"", "empty", 1),
    Case("only a BOM and a line end", "rental_transactions.csv", b"\xef\xbb\xbf\r\n", "empty", 1),
    Case("missing column", "rental_transactions.csv", TX.replace(",total_amount", "").encode(), "missing_column", 1),
    Case(
        "renamed column", "rental_transactions.csv", TX.replace("total_amount", "amount").encode(), "missing_column", 1
    ),
    Case("semicolons", "rental_transactions.csv", TX.replace(",", ";").encode(), "missing_column", 1),
    Case("tabs", "users.csv", b"user_id\tfirst_name\nU1\tAma\n", "missing_column", 1),
    Case(
        "repeated column",
        "rental_transactions.csv",
        TX.replace("dropoff_location", "rental_id").encode(),
        "repeated_column",
        1,
    ),
    Case(
        "repeated through an alias",
        "rental_transactions.csv",
        TX.replace("rental_id", "transaction_id,rental_id", 1).encode(),
        "repeated_column",
        1,
    ),
    Case(
        "status beside active",
        "vehicles.csv",
        b"vehicle_id,vehicle_type,active,status\nV1,SUV,1,1\n",
        "repeated_column",
        1,
    ),
    Case("invalid UTF-8", "rental_transactions.csv", (TX + "R9,U1,V\xe9").encode("latin-1"), "not_utf8", 7),
    Case("Latin-1 in the header", "users.csv", "user_id,prénom\nU1,Zoé\n".encode("latin-1"), "not_utf8", 1),
    Case("binary", "rental_transactions.csv", b"PK\x03\x04\x00\x00binary", "binary", 1),
    Case("NUL bytes after the header", "users.csv", b"user_id\nU1\x00\x00\n", "binary", 2),
    Case("zip named .gz", "rental_transactions.csv.gz", zipped(TX), "not_gzip", 1),
    Case("plain text named .gz", "rental_transactions.csv.gz", TX.encode(), "not_gzip", 1),
    Case("truncated gzip", "rental_transactions.csv.gz", gzip.compress(TX.encode())[:-12], "truncated_gzip"),
    Case("gzip named .csv", "rental_transactions.csv", gzip.compress(TX.encode()), "compressed_but_named_csv", 1),
    Case("unknown dataset", "payments.csv", TX.encode(), "unknown_dataset"),
    Case(
        "quote never closed in a row",
        "rental_transactions.csv",
        tx_rows('R1,U1,"V1,a,b', "R2,U1,V1"),
        "unreadable_rows",
        2,
    ),
    Case(
        "quote never closed in the header",
        "users.csv",
        b'user_id,"first_name\n' + b"U1,Ama\n" * 200_000,
        "header_too_long",
        1,
    ),
]

ACCEPTED = [
    Case("plain", "rental_transactions.csv", TX.encode(), rows=5),
    Case("BOM and CRLF", "rental_transactions.csv", ("\ufeff" + TX.replace("\n", "\r\n")).encode(), rows=5),
    Case("no newline at the end", "rental_transactions.csv", TX.rstrip("\n").encode(), rows=5),
    Case(
        "multi-member gzip",
        "rental_transactions.csv.gz",
        gzip.compress(TX.encode()) + gzip.compress(b"R8,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,1\n"),
        rows=6,
    ),
    Case("alias and odd case", "rental_transactions.csv", TX.replace("rental_id", " Transaction_ID ").encode(), rows=5),
    Case(
        "quoted newlines", "locations.csv", b'location_id,location_name\nL1,"Airport\nTerminal ""A"""\nL2,x\n', rows=2
    ),
    Case(
        "a 1 MB line",
        "rental_transactions.csv",
        (
            TX_HEADER + ",notes\n" + "R1,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,1," + "x" * 1_100_000 + "\n"
        ).encode(),
        rows=1,
    ),
    Case("extra columns", "users.csv", b"user_id,shoe_size\nU1,42\n", rows=1),
    Case(
        "ids that look like numbers",
        "vehicles.csv",
        b"vehicle_id,vehicle_type\n0e672a709e,SUV\n5144945047,Sedan\n",
        rows=2,
    ),
    Case("header only", "users.csv", b"user_id,first_name\n", rows=0),
    Case(
        "bad timestamps",
        "rental_transactions.csv",
        tx_rows(
            "R1,U1,V1,2024-02-30 08:00:00,2024-03-01 08:00:00,L1,,1",
            "R2,U1,V1,2024-06-01 08:00:60,2024-06-01 09:00:00,L1,,1",
            "R3,U1,V1,01/06/2024 08:00,2024-06-01 09:00:00,L1,,1",
            "R4,U1,V1,2024-06-01 08:00:00+02:00,2024-06-01 09:00:00,L1,,1",
            "R5,U1,V1,2024-02-29T23:59,2024-03-01 00:00,L1,,1",
        ),
        issues={"bad_timestamp": 4},
        rows=5,
    ),
    Case(
        "negative and malformed amounts",
        "rental_transactions.csv",
        tx_rows(
            "R1,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,-5",
            "R2,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,-0.004",
            "R3,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,1e3",
            'R4,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,"1,000.00"',
            "R5,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,+.5",
        ),
        issues={"bad_amount": 3},
        rows=5,
    ),
    Case(
        "rows with missing fields, and the first reason wins",
        "rental_transactions.csv",
        tx_rows(
            "R1,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,",
            "R2,U1,V1,2024-06-01 08:00",
            "R3,U1,V1,2024-06-01 09:00,2024-06-01 08:00,L1,,-1",
            " ,U1,V1,bad,bad,L1,,-1",
            "R5,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,1,surplus",
        ),
        issues={"missing_required": 3, "end_before_start": 1, "long_rows": 1},
        rows=5,
    ),
]

CORPUS = REJECTED + ACCEPTED
