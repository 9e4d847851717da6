"""The upload gate's corpus: files that each earn a known verdict, used on local paths and through S3."""

from __future__ import annotations

import csv
import gzip
import io
import re
import zipfile
from dataclasses import dataclass, field

from tests.car_rental import sample_batch

TX = sample_batch.TRANSACTIONS
TX_HEADER = TX.splitlines()[0]
QUOTE = '"'


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
    Case("a repeated unknown column", "users.csv", b"user_id,notes,notes\nU1,a,b\n", "repeated_column", 1),
    Case(
        "an unknown column again in other case", "users.csv", b"user_id,Notes, notes \nU1,a,b\n", "repeated_column", 1
    ),
    Case("invalid UTF-8", "rental_transactions.csv", (TX + "R9,U1,V\xe9").encode("latin-1"), "not_utf8", 7),
    Case("Latin-1 in the header", "users.csv", "user_id,prénom\nU1,Zoé\n".encode("latin-1"), "not_utf8", 1),
    Case("binary", "rental_transactions.csv", b"PK\x03\x04\x00\x00binary", "binary", 1),
    Case("an LF header over CRLF rows", "users.csv", b"user_id,x\nU1,a\r\nU2,b\r\n", "mixed_line_ends", 2),
    Case("a CRLF header over LF rows", "users.csv", b"user_id,x\r\nU1,a\nU2,b\n", "mixed_line_ends", 2),
    Case(
        "a CRLF row after LF rows with a quoted CRLF",
        "users.csv",
        b'user_id,x\nU1,"a\r\nb"\nU2,b\r\n',
        "mixed_line_ends",
        4,
    ),
    Case("a white line ending in CRLF among LF lines", "users.csv", b"user_id\nU1\n  \r\nU2\n", "mixed_line_ends", 3),
    Case("UTF-16 with its BOM", "rental_transactions.csv", ("\ufeff" + TX).encode("utf-16-le"), "not_utf8", 1),
    Case("UTF-16 big-endian", "users.csv", "\ufeffuser_id\nU1\n".encode("utf-16-be"), "not_utf8", 1),
    Case("UTF-16 without a BOM", "users.csv", "user_id\nU1\n".encode("utf-16-le"), "not_utf8", 1),
    Case("a BOM of UTF-16 alone", "users.csv", b"\xff\xfe", "not_utf8", 1),
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
        "unterminated_quote",
        2,
    ),
    Case(
        "quote never closed in the last column",
        "rental_transactions.csv",
        tx_rows(*[f"R{i},U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,{QUOTE * (i == 4)}1" for i in range(100)]),
        "unterminated_quote",
        6,
    ),
    Case(
        "text after a closing quote",
        "rental_transactions.csv",
        tx_rows('R1,U1,V1,2024-06-01 08:00,2024-06-01 09:00,"L1"x,,1'),
        "text_after_quote",
        2,
    ),
    Case("CR line ends", "users.csv", b"user_id,first_name\rU1,Ama\rU2,Kofi\r", "bare_carriage_return", 1),
    Case("a CR inside the header", "users.csv", b"user_id\r,first_name\nU1,Ama\n", "bare_carriage_return", 1),
    Case("a bare CR in a row", "users.csv", b"user_id,first_name\nU1,Ama\nU2,Ko\rfi\n", "bare_carriage_return", 3),
    Case("a CR at the very end", "users.csv", b"user_id,first_name\r\nU1,Ama\r", "bare_carriage_return", 2),
    # RFC 4180's unquoted text holds no control character; inside quotes they are data (ACCEPTED below).
    Case("a tab after an id", "users.csv", b"user_id,first_name\nU1\t,Ama\n", "control_character", 2),
    Case(
        "an escape sequence in an unquoted vehicle_type",
        "vehicles.csv",
        b"vehicle_id,vehicle_type\nV1,SUV\nV2,SU\x1b[2JV\n",
        "control_character",
        3,
    ),
    Case(
        "a bell before a quote, which is text then", "users.csv", b'user_id,x\nU1,\x07"Ama"\n', "control_character", 2
    ),
    Case("a DEL after a stray quote", "users.csv", b'user_id,x\nU1,A"m\x7fa\n', "control_character", 2),
    Case("a line of one form feed", "users.csv", b"user_id\nU1\n\x0c\nU2\n", "control_character", 3),
    Case("a control character in a header name", "users.csv", b"user_id,first\x01name\nU1,a\n", "control_character", 1),
    Case(
        "a control character after a quoted line break",
        "users.csv",
        b'user_id,x,y\nU1,"a\nb",c\x1b\n',
        "control_character",
        3,
    ),
    Case(
        "a control character and mixed line ends: the line ends decide",
        "users.csv",
        b"user_id,x\nU1,\x1b\r\nU2,b\n",
        "mixed_line_ends",
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
    Case("CRLF with a line break in a quoted header name", "users.csv", b'"user\nid",user_id\r\nx,U1\r\n', rows=1),
    Case("CRLF rows with quoted LF and CRLF", "users.csv", b'user_id,x\r\nU1,"a\nb"\r\nU2,"c\r\n"\r\n', rows=2),
    Case("two BOMs before the header", "users.csv", "\ufeff\ufeffuser_id\nU1\n".encode(), rows=1),
    Case("a BOM before a quoted header", "users.csv", '\ufeff"user_id","first_name"\nU1,a\n'.encode(), rows=1),
    Case("no newline at the end", "rental_transactions.csv", TX.rstrip("\n").encode(), rows=5),
    Case(
        "multi-member gzip",
        "rental_transactions.csv.gz",
        gzip.compress(TX.encode()) + gzip.compress(b"R8,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,1\n"),
        rows=6,
    ),
    Case("CR and CRLF inside quotes", "users.csv", b'user_id,first_name\r\nU1,"A\rm\r\na"\r\nU2,Kofi', rows=2),
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
    Case(
        "control characters inside quotes",
        "users.csv",
        b'user_id,first_name\nU1,"A\tm\x1b[2Ja\x7f"\n"U2\x0c",Kofi\n',
        rows=2,
    ),
    Case("extra columns", "users.csv", b"user_id,shoe_size\nU1,42\n", rows=1),
    Case("blank column names, which name nothing", "users.csv", b"user_id,, \nU1,,\n", rows=1),
    Case("a quote inside an unquoted header name", "users.csv", b'user_id,na"me\n' + b"U1,x\n" * 300_000, rows=300_000),
    Case(
        "a short row with a quoted line break",
        "rental_transactions.csv",
        tx_rows('R1,U1,"V\n1"', "R2,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,1"),
        issues={"missing_required": 1},
        rows=2,
    ),
    Case(
        "ids that look like numbers",
        "vehicles.csv",
        b"vehicle_id,vehicle_type\n0e672a709e,SUV\n5144945047,Sedan\n",
        rows=2,
    ),
    Case("header only", "users.csv", b"user_id,first_name\n", rows=0),
    Case("header only, without a line end", "users.csv", b"user_id,first_name", rows=0),
    Case("header only, quoted, without a line end", "users.csv", b'"user_id","first\nname"', rows=0),
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
        issues={"missing_required": 3, "end_before_start": 1},
        rows=5,
    ),
    Case(
        "rows with a field more are judged on their values, as the job judges them",
        "rental_transactions.csv",
        tx_rows(
            "R1,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,-1,surplus",
            'R2,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,"12.5\n",a,b',
            "R3,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,3,surplus",
        ),
        issues={"bad_amount": 2},
        rows=3,
    ),
]

CORPUS = REJECTED + ACCEPTED


def reference_rows(content: bytes) -> int:
    """The data rows Python's csv module reads, strictly, after the gate's own gunzip and BOM handling."""
    if content.startswith(b"\x1f\x8b"):
        content = gzip.decompress(content)
    text = content.decode("utf-8-sig")
    limit = csv.field_size_limit(1 << 30)
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline=""), strict=True) if r]
    finally:
        csv.field_size_limit(limit)
    return len(records) - 1


def outside_quotes(content: bytes) -> bytes:
    """The bytes of a file outside quoted fields, read as RFC 4180 says: a quote opens a quoted field only at a
    field's start (or just after the file's BOM, as the gate takes it), inside one a doubled quote is a quote, and
    the next quote closes it. A quote inside an unquoted value is text, as in Python's csv module and Spark."""
    kept, quoted, field_start = bytearray(), False, True
    at = 3 if content.startswith(b"\xef\xbb\xbf") else 0
    while at < len(content):
        byte = content[at : at + 1]
        if quoted:
            doubled = content[at : at + 2] == b'""'
            quoted = byte != b'"' or doubled
            at += 2 if doubled else 1
        elif byte == b'"' and field_start:
            quoted, field_start = True, False
            at += 1
        else:
            kept += byte
            field_start = byte in (b",", b"\n")
            at += 1
    return bytes(kept)


def line_ends(content: bytes) -> list[bytes]:
    """The line ends outside quotes, in order."""
    return re.findall(rb"\r\n|\n", outside_quotes(content))


def control_outside_quotes(content: bytes) -> bool:
    """Whether a control character (but CR and LF) is outside quotes: RFC 4180's unquoted text holds none."""
    return re.search(rb"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]", outside_quotes(content)) is not None
