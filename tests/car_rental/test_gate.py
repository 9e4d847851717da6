"""The gate on single files: each contract reason for rejecting a file, and the row counts of accepted ones."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest

from rental_analytics.car_rental.contract import MAX_FIELDS
from rental_analytics.car_rental.gate import files, rows
from rental_analytics.car_rental.gate.files import FileVerdict, validate_folder, validate_stream
from tests.car_rental import sample_batch
from tests.car_rental.gate_corpus import ACCEPTED, CORPUS, REJECTED, TX_HEADER, Case, reference_rows, tx_rows
from tests.repo import ROOT

TX = sample_batch.TRANSACTIONS


@pytest.mark.parametrize("case", REJECTED, ids=lambda c: c.label)
def test_rejected_files_name_their_reason_and_line(case: Case):
    verdict = validate_stream(case.name, io.BytesIO(case.content))
    assert not verdict.accepted
    assert (verdict.code, verdict.line) == (case.code, case.line)
    assert verdict.reason


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.label)
def test_accepted_files_and_their_row_counts(case: Case):
    verdict = validate_stream(case.name, io.BytesIO(case.content))
    assert verdict.accepted, verdict.reason
    assert (verdict.rows, verdict.row_issues) == (case.rows, case.issues)


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.label)
def test_accepted_row_counts_are_those_of_pythons_csv_module(case: Case):
    assert validate_stream(case.name, io.BytesIO(case.content)).rows == reference_rows(case.content)


def test_utf16_is_named_with_what_to_do():
    verdict = validate_stream("users.csv", io.BytesIO("user_id\nU1\n".encode("utf-16")))
    assert "UTF-16" in (verdict.reason or "") and "re-save it as UTF-8" in (verdict.reason or "")


def test_semicolon_header_gets_a_hint():
    verdict = validate_stream("rental_transactions.csv", io.BytesIO(TX.replace(",", ";").encode()))
    assert "semicolons" in (verdict.reason or "")


def test_header_only_is_accepted_with_a_warning():
    verdict = validate_stream("users.csv", io.BytesIO(b"user_id,first_name\n"))
    assert verdict.accepted and not verdict.has_data_rows
    assert "no data rows" in " ".join(verdict.warnings)


def test_unknown_columns_are_a_warning():
    verdict = validate_stream("users.csv", io.BytesIO(b"user_id,shoe_size\nU1,42\n"))
    assert verdict.accepted
    assert verdict.warnings == ("unknown column 'shoe_size' is ignored",)


def test_bad_rows_are_counted_with_examples_and_a_warning():
    case = next(c for c in ACCEPTED if c.label == "negative and malformed amounts")
    verdict = validate_stream(case.name, io.BytesIO(case.content))
    assert verdict.row_examples == (
        {"reason": "bad_amount", "rental_id": "R1", "total_amount": "-5"},
        {"reason": "bad_amount", "rental_id": "R3", "total_amount": "1e3"},
        {"reason": "bad_amount", "rental_id": "R4", "total_amount": "1,000.00"},
    )
    assert verdict.warnings == ("3 of 5 rows break a row rule (bad_amount 3)",)


@pytest.mark.parametrize(
    ("value", "multiline"),
    [
        (b'"Airport, T1"', False),
        (b'"Airport ""T1"""', False),
        (b'"Airport\nT1"', True),
        (b'"Airport\r\nT1"', True),
        (b'"A\rT1"', True),
    ],
)
def test_the_verdict_says_whether_a_quoted_field_spans_lines(value: bytes, multiline: bool):
    verdict = validate_stream("locations.csv", io.BytesIO(b"location_id,location_name\nL1," + value + b"\nL2,x\n"))
    assert (verdict.accepted, verdict.rows, verdict.multiline_fields) == (True, 2, multiline)


@pytest.mark.parametrize("multiline", [False, True])
def test_verdicts_keep_the_multiline_flag_through_a_marker(multiline: bool):
    value = b'"Airport\nT1"' if multiline else b"Airport"
    verdict = validate_stream("locations.csv", io.BytesIO(b"location_id,location_name\nL1," + value + b"\n"))
    assert FileVerdict.from_dict(json.loads(json.dumps(verdict.as_dict()))) == verdict
    assert verdict.as_dict()["multiline_fields"] is multiline


def test_the_verdict_gives_the_header_layout_the_job_reads_with():
    header = b"\xef\xbb\xbfnotes,Location_Name,LOCATION_ID,city\n"
    verdict = validate_stream("locations.csv", io.BytesIO(header + b"x,Airport,L1,Austin\n"))
    assert (verdict.header_fields, verdict.columns) == (4, {"location_name": 1, "location_id": 2, "city": 3})
    assert FileVerdict.from_dict(json.loads(json.dumps(verdict.as_dict()))) == verdict


def test_a_marker_written_before_the_flag_asks_for_a_multiline_read():
    old = validate_stream("users.csv", io.BytesIO(b"user_id\nU1\n")).as_dict()
    del old["multiline_fields"]
    assert FileVerdict.from_dict(old).multiline_fields is True


def _gzip_of_repeats(head: bytes, repeated: bytes, mib: int) -> bytes:
    """Gzip data inflating to `mib` MiB of one repeated text, made without holding the inflated bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = repeated * ((1 << 20) // len(repeated))
    parts = [compressor.compress(head)] + [compressor.compress(block) for _ in range(mib)]
    return b"".join(parts) + compressor.flush()


def test_a_gzip_bomb_is_rejected_on_its_ratio_before_it_is_inflated():
    row = b"R1,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,1\n"
    bomb = _gzip_of_repeats(TX.splitlines()[0].encode() + b"\n", row, 64)
    verdict = validate_stream("rental_transactions.csv.gz", io.BytesIO(bomb))
    assert (verdict.accepted, verdict.code) == (False, "too_large")
    assert verdict.bytes_read <= 8 << 20  # the ratio is judged after the first few MiB, not at the end


def test_a_file_past_the_size_limit_is_rejected_as_it_passes():
    plain = b"user_id,first_name\n" + b"U1,Ama\n" * 300_000
    for name, content in [("users.csv", plain), ("users.csv.gz", gzip.compress(plain))]:
        verdict = validate_stream(name, io.BytesIO(content), max_bytes=1 << 20)
        assert (verdict.accepted, verdict.code, verdict.bytes_read <= 1 << 20) == (False, "too_large", True), name
        assert validate_stream(name, io.BytesIO(content), max_bytes=len(plain)).accepted


def test_the_ratio_limit_is_a_setting():
    compressed = _gzip_of_repeats(b"user_id\n", b"U1\n", 8)
    assert validate_stream("users.csv.gz", io.BytesIO(compressed)).code == "too_large"
    relaxed = validate_stream("users.csv.gz", io.BytesIO(compressed), max_ratio=10_000)
    assert (relaxed.accepted, relaxed.rows) == (True, 8 * ((1 << 20) // 3))
    early = validate_stream("users.csv.gz", io.BytesIO(compressed), max_ratio=10, ratio_after_bytes=1 << 16)
    assert (early.code, early.bytes_read <= 2 << 20) == ("too_large", True)


def test_example_values_are_cut_short_and_few():
    huge = "9" * (1 << 20)
    content = tx_rows(*[f"R{i},U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,-{huge}" for i in range(5)])
    verdict = validate_stream("rental_transactions.csv", io.BytesIO(content))
    assert (verdict.accepted, verdict.row_issues) == (True, {"bad_amount": 5})
    assert [len(e["total_amount"]) for e in verdict.row_examples] == [200, 200, 200]
    assert verdict.row_examples[0]["total_amount"].endswith("…")
    assert len(json.dumps(verdict.as_dict())) < 5_000


def test_header_names_in_a_verdict_are_cut_short_and_few():
    name = "n" * 100_000
    missing = validate_stream("users.csv", io.BytesIO(",".join(f"{name}{i}" for i in range(9)).encode() + b"\nU1\n"))
    unknown = validate_stream(
        "users.csv", io.BytesIO(",".join(["user_id"] + [f"{name}{i}" for i in range(9)]).encode() + b"\n")
    )
    assert (missing.code, unknown.accepted) == ("missing_column", True)
    for verdict in (missing, unknown):
        assert len(json.dumps(verdict.as_dict())) < 5_000, verdict.code
    assert sum(w.startswith("unknown column") for w in unknown.warnings) == 5
    assert unknown.warnings[5] == "4 more unknown columns are ignored"


def test_a_repeated_unknown_column_is_named_briefly():
    name = "n" * 100_000
    verdict = validate_stream("users.csv", io.BytesIO(f"user_id,{name},{name.upper()}\nU1,a,b\n".encode()))
    assert (verdict.code, verdict.column) == ("repeated_column", name[:199] + "…")
    assert len(json.dumps(verdict.as_dict())) < 5_000


@pytest.mark.parametrize(
    ("row", "count"), [(b"x\n", 30_000), (b"R1,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,1\n", 200_000)]
)
def test_a_file_not_judged_by_the_deadline_is_rejected_as_too_slow_to_check(monkeypatch, row: bytes, count: int):
    # Rows of another width go through pyarrow one at a time (about 20 µs each): the clock is read among them too.
    content = TX_HEADER.encode() + b"\n" + row * count
    deadline = time.monotonic() + 600
    # The row reader's clock has passed the deadline (the byte checks' has not): among the rows, or between blocks.
    monkeypatch.setattr(rows, "time", SimpleNamespace(monotonic=lambda: deadline + 1))
    verdict = validate_stream("rental_transactions.csv", io.BytesIO(content), deadline=deadline)
    assert (verdict.accepted, verdict.code) == (False, "too_slow_to_check")
    assert "ran out of time" in verdict.reason and f"{count:,} rows checked" not in verdict.reason
    assert validate_stream("rental_transactions.csv", io.BytesIO(content)).accepted  # no deadline: judged


def test_a_row_longer_than_a_block_is_rejected_not_buffered(monkeypatch):
    monkeypatch.setattr(rows, "BLOCK_BYTES", 1 << 16)
    content = (TX.splitlines()[0] + "\n" + "R1," + "x" * (1 << 17) + "\n").encode()
    verdict = validate_stream("rental_transactions.csv", io.BytesIO(content))
    assert (verdict.accepted, verdict.code) == (False, "unreadable_rows")


def test_a_quote_open_for_more_than_a_block_names_the_line_it_opens_on(monkeypatch):
    monkeypatch.setattr(rows, "BLOCK_BYTES", 1 << 16)
    content = b'user_id,first_name\nU1,Ama\nU2,"Kofi\n' + b"U3,Esi\n" * 1_000_000
    verdict = validate_stream("users.csv", io.BytesIO(content))
    assert (verdict.accepted, verdict.code, verdict.line) == (False, "unreadable_rows", 3)
    assert "closing quote" in (verdict.reason or "")


def _verdict_in_a_subprocess(tmp_path, name: str, content: bytes, seconds: float = 20) -> dict:
    """The verdict from a child process that is killed if it takes too long or grows past 1 GiB.

    A gate that loops forever would otherwise hang the test run and eat the machine's memory.
    """
    path = tmp_path / name
    path.write_bytes(content)
    script = (
        "import json, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30))\n"
        "from rental_analytics.car_rental.gate.files import validate_file\n"
        "from pathlib import Path\n"
        "print(json.dumps(validate_file(Path(sys.argv[1])).as_dict()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=seconds,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_every_member_of_a_multi_member_gzip_is_read(tmp_path):
    # Members that inflate past one read, so a member ends while the inflater still holds input.
    def member(first: int) -> bytes:
        rows = "".join(f"R{i},U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,1\n" for i in range(first, first + 100_000))
        return gzip.compress(((TX.splitlines()[0] + "\n") * (first == 0) + rows).encode())

    verdict = _verdict_in_a_subprocess(tmp_path, "rental_transactions.csv.gz", member(0) + member(100_000))
    assert (verdict["accepted"], verdict["rows"]) == (True, 200_000)


def test_the_corpus_covers_at_least_25_files():
    assert len(CORPUS) >= 25


def test_folder_reports_missing_and_doubled_datasets(write_batch):
    files = sample_batch.files()
    del files["users"]
    files["vehicles.csv.gz"] = gzip.compress(files["vehicles"].encode())
    verdict = validate_folder(write_batch(files))
    assert not verdict.accepted
    assert verdict.missing == ("users",)
    assert [v.code for v in verdict.files if not v.accepted] == ["duplicate_dataset"]


@pytest.mark.parametrize("stray", ["README.md", "rental_transactions_part2.csv"])
def test_a_folder_with_a_stray_file_can_run_but_is_not_accepted(write_batch, stray: str):
    files = sample_batch.files()
    files[stray] = files["rental_transactions"]
    verdict = validate_folder(write_batch(files))
    # The run sets the stray file aside; `validate` exits 1, as the contract says of any rejected file.
    assert (verdict.runnable, verdict.accepted) == (True, False)
    assert [Path(v.file).name for v in verdict.files if not v.accepted] == [stray]


TIMESTAMPS = [
    "2024-06-01 08:00:00",
    "2024-06-01T08:00",
    "2024-02-29 23:59:59",
    "2000-02-29 00:00",
    "1900-02-29 00:00",
    "2023-02-29 00:00",
    "2024-02-30 00:00",
    "2024-04-31 00:00",
    "2024-12-31 23:59:59",
    "2024-13-01 00:00",
    "2024-00-10 00:00",
    "2024-06-00 00:00",
    "2024-06-01 24:00",
    "2024-06-01 23:60",
    "2024-06-01 23:59:60",
    "2024-06-01 8:00",
    "2024-06-01",
    "2024-06-01 08:00:00.5",
]


@pytest.mark.spark
def test_the_gate_and_the_spark_rules_accept_the_same_timestamps(spark):
    from pyspark.sql import functions as F

    from rental_analytics.car_rental import rules
    from rental_analytics.car_rental.contract import CALENDAR_TIMESTAMP_REGEX

    frame = spark.createDataFrame([(t,) for t in TIMESTAMPS], "text string")
    spark_verdict = {
        r.text: r.ok for r in frame.select("text", rules._timestamp(F.col("text")).isNotNull().alias("ok")).collect()
    }
    gate_verdict = {t: re.fullmatch(CALENDAR_TIMESTAMP_REGEX.strip("^$"), t) is not None for t in TIMESTAMPS}
    assert gate_verdict == spark_verdict
    assert sum(gate_verdict.values()) == 5


# Java's `$` matches before a last line terminator too (\n, \r\n, \r, U+0085, U+2028, U+2029); RE2's only at the end.
LINE_BREAK_ENDS = ["", "\n", "\r\n", "\r", "\u0085", "\u2028", "\u2029", " \n"]


@pytest.mark.spark
def test_the_gate_and_the_spark_rules_agree_on_values_ending_in_a_line_break(spark):
    # docs/car-rental-decisions.md: a value that holds a line break is no number and no timestamp, for both.
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyspark.sql import functions as F

    from rental_analytics.car_rental import rules

    amounts = [f"12.5{end}" for end in LINE_BREAK_ENDS] + ["\n12.5"]
    times = [f"2024-06-01 08:00{end}" for end in LINE_BREAK_ENDS] + ["\n2024-06-01 08:00"]
    frame = spark.createDataFrame(list(zip(amounts, times)), "amount string, time string")
    checked = frame.select(
        rules._amount(F.col("amount")).isNotNull().alias("amount_ok"),
        rules._timestamp(F.col("time")).isNotNull().alias("time_ok"),
    ).collect()
    spark_verdict = [(row.amount_ok, row.time_ok) for row in checked]
    gate_amounts = pc.invert(rows._bad_amount(pa.array(amounts))).to_pylist()
    gate_verdict = list(zip(gate_amounts, rows._wall_clock(pa.array(times))[1].to_pylist()))
    assert spark_verdict == gate_verdict == [(True, True)] + [(False, False)] * (len(amounts) - 1)


# Amounts at DECIMAL(12,2)'s bounds, each side of them and past float precision (attack29 finding 6): the gate
# compared floats, so it counted the first four bad while the job kept them.
BOUND_AMOUNTS = ["-0.0049999999999999999", "9999999999.99499999", "9999999999.9949999999", "9999999999.994999"]
BOUND_AMOUNTS += ["9999999999.995", "-0.005", "-00.0049", "+9999999999.994", "00000000000009999999999.99", "1.2345"]
BOUND_AMOUNTS += ["99999999999", "+.5", "5.", "0", ".", "-", "1e5", "0.0000000000000000000000000000001"]


def test_the_gate_judges_amounts_at_the_decimal_bounds_on_the_jobs_digits():
    bad = dict(zip(BOUND_AMOUNTS, rows._bad_amount(pa.array(BOUND_AMOUNTS)).to_pylist()))
    assert [amount for amount, is_bad in bad.items() if is_bad] == [
        "9999999999.995",
        "-0.005",
        "99999999999",
        ".",
        "-",
        "1e5",
    ]


@pytest.mark.spark
def test_the_gate_and_the_spark_rules_agree_on_amounts_at_the_decimal_bounds(spark):
    from pyspark.sql import functions as F

    from rental_analytics.car_rental import rules

    amount = rules._amount(F.col("amount"))
    frame = spark.createDataFrame([(a,) for a in BOUND_AMOUNTS], "amount string")
    job = [row.bad for row in frame.select((amount.isNull() | (amount < 0)).alias("bad")).collect()]
    assert job == rows._bad_amount(pa.array(BOUND_AMOUNTS)).to_pylist()


# A white line "  \r" among LF lines ends in CRLF: the corpus's "a white line ending in CRLF among LF lines".
@pytest.mark.parametrize("white", [b"   ", b" "])
def test_a_line_of_only_white_space_is_a_row_read_whole(white: bytes):
    # Spark's line-by-line readers skip such a line and its multi-line reader takes it as a row of blanks, as the
    # gate does: the verdict asks for the multi-line read, or the job would read a row fewer than the gate counted.
    lines = TX.encode().splitlines()
    content = b"\n".join([*lines[:3], white, *lines[3:]]) + b"\n"
    verdict = validate_stream("rental_transactions.csv", io.BytesIO(content))
    assert (verdict.accepted, verdict.rows, verdict.row_issues) == (True, 6, {"missing_required": 1})
    assert verdict.multiline_fields


@pytest.mark.parametrize(("body", "multiline"), [(b"U1\n  \nU2\n", True), (b"U1\nU2\n", False)])
def test_a_white_line_of_a_one_column_file_is_seen_too(body: bytes, multiline: bool):
    verdict = validate_stream("users.csv", io.BytesIO(b"user_id\n" + body))
    assert (verdict.accepted, verdict.multiline_fields) == (True, multiline)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("rental_transactions.csv", TX + "R9,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,1," + "x" * 200_000 + "\n"),
        ("users.csv", "user_id,first_name,last_name\nU1,Ama,B\nU2," + "x" * 200_000 + "\n"),  # a field short
    ],
    ids=["extra", "short"],
)
def test_a_row_of_another_width_with_a_field_past_128_kib_is_judged_not_rejected(name: str, content: str):
    # Python's csv module refuses a field past 131,072 characters unless told otherwise (attack29 finding 5).
    verdict = validate_stream(name, io.BytesIO(content.encode()))
    assert verdict.accepted, verdict.reason
    assert (verdict.rows, verdict.row_issues) == (reference_rows(content.encode()), {})


def test_a_failure_in_the_invalid_row_handler_is_the_verdict_not_unreadable_csv(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(rows, "csv", SimpleNamespace(reader=broken))  # the rows module's csv only
    content = (TX + "R9,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,1,extra\n").encode()
    verdict = validate_stream("rental_transactions.csv", io.BytesIO(content))
    assert (verdict.accepted, verdict.code) == (False, "unreadable_rows")
    assert "the gate failed on row" in verdict.reason and "boom" in verdict.reason


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("user_id," + ",".join(f"x{i}" for i in range(MAX_FIELDS)) + "\nU1\n", 1),  # the header
        ("user_id,first_name\nU1,Ama\nU2" + "," * MAX_FIELDS + '"q"\n', None),  # a row, quoted: Spark's CSV parser
    ],
    ids=["header", "row"],
)
def test_a_header_or_row_wider_than_spark_reads_is_rejected_as_too_many_fields(content: str, line: int | None):
    verdict = validate_stream("users.csv", io.BytesIO(content.encode()))
    assert (verdict.accepted, verdict.code, verdict.line) == (False, "too_many_fields", line)
    assert f"{MAX_FIELDS:,}" in verdict.reason


def test_a_row_of_as_many_fields_as_spark_reads_is_accepted():
    content = "user_id,first_name\nU1,Ama\nU2" + "," * (MAX_FIELDS - 1) + '"q"\n'
    assert validate_stream("users.csv", io.BytesIO(content.encode())).accepted


def test_a_value_of_only_control_characters_is_blank():
    # As the job judges it (test_rules.py): an id of one \x0c is missing, not a user "\x0c" (attack29 finding 3).
    # Such values are quoted: outside quotes a control character rejects the file (the tests below).
    content = 'user_id,first_name\n"\x0c",Ama\n" \x0b ",Kofi\n"\x1f",Esi\n\u2028,Yaw\nU1,Abena\n'.encode()
    verdict = validate_stream("users.csv", io.BytesIO(content))
    assert (verdict.accepted, verdict.rows, verdict.row_issues) == (True, 5, {"missing_required": 3})


@pytest.mark.parametrize(
    ("content", "line", "column"),
    [
        (b"vehicle_id,vehicle_type\nV1,SUV\nV2,SU\x1b[2JV\n", 3, "vehicle_type"),
        (b'vehicle_id,vehicle_type\nV1,"S\nUV"\nV2\t,SUV\n', 4, "vehicle_id"),  # the record after a quoted line break
        (b'\xef\xbb\xbf"vehicle_id,x",vehicle_id,vehicle_type\n"a,b",V1,\x7f\n', 2, "vehicle_type"),  # quoted commas
        (b"vehicle_id,vehicle_type\nV1,SUV,,\x01\n", 2, None),  # a field past the header's
    ],
    ids=["escape", "after a quoted line break", "after quoted commas", "past the header"],
)
def test_a_control_character_outside_quotes_rejects_the_file_naming_its_line_and_column(
    content: bytes, line: int, column: str | None
):
    verdict = validate_stream("vehicles.csv", io.BytesIO(content))
    assert (verdict.accepted, verdict.code, verdict.line, verdict.column) == (False, "control_character", line, column)
    assert "outside quotes" in (verdict.reason or "") and (column is None or repr(column) in (verdict.reason or ""))


def test_a_control_character_is_named_alike_wherever_chunks_end_and_however_long_its_record(monkeypatch):
    content = b'user_id,first_name,x\nU1,Ama,b\nU2,"K\nofi",' + b"y" * 30 + b"\x1b\n"
    monkeypatch.setattr(files, "MAX_RECORD_HEAD_BYTES", 40)  # the record's 41 bytes before it: its column is unknown
    verdicts = set()
    for chunk in (1, 2, 7, 40, 1 << 20):
        monkeypatch.setattr(files, "CHUNK_BYTES", chunk)
        verdicts.add(validate_stream("users.csv", io.BytesIO(content)).describe())
    assert verdicts == {
        "REJECTED users.csv (line 4): an escape character (U+001B) is outside quotes: CSV text holds control "
        'characters only inside quoted values. Remove it, or quote the whole value ("…")'
    }


def test_other_reasons_come_before_a_control_character_outside_quotes():
    # A control character is judged once every other check has passed, so each file keeps the reason it had.
    tsv = validate_stream("users.csv", io.BytesIO(b"user_id\tfirst_name\nU1\tAma\n"))
    assert (tsv.code, "tabs" in (tsv.reason or "")) == ("missing_column", True)
    open_quote = validate_stream("users.csv", io.BytesIO(b'user_id,x\nU1\t,"a\n'))
    assert open_quote.code == "unterminated_quote"
    wide = validate_stream("users.csv", io.BytesIO(b"user_id\nU1\t" + b"," * MAX_FIELDS + b"\n"))
    assert wide.code == "too_many_fields"
