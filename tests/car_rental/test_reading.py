"""Reading a batch's files: a file without quotes split at its commas reads as Spark's CSV reader reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.testing import assertDataFrameEqual

from rental_analytics.car_rental.contract import MAX_FIELDS, RENTAL_TRANSACTIONS, USERS
from rental_analytics.car_rental.gate.files import validate_file
from rental_analytics.car_rental.reading import WIDE_FIELDS, FileFacts, FileLayout, read_dataset

pytestmark = pytest.mark.spark

HEADER = "user_id,first_name,notes,last_name,email"
LAYOUT = FileLayout(5, {"user_id": 0, "first_name": 1, "last_name": 3, "email": 4})

# Values as a sender writes them without quotes: spaces inside and around, tabs, other scripts, empty.
values = st.text(alphabet=st.sampled_from([*"ab7 \t", "\u00e9", "\u00a0", "\u4e2d"]), max_size=4)
# Rows of every length around the header's five fields, and lines with no field at all.
rows = st.lists(values, min_size=0, max_size=7).map(",".join)
blank_lines = st.sampled_from(["", " ", "\t", " \t ", "\u00a0"])


def _both_ways(spark, folder: Path, name: str, rows: int) -> tuple:
    present = {name}
    csv = read_dataset(spark, str(folder), USERS, present, FileFacts(rows, LAYOUT, multiline=False, quotes=True))
    plain = read_dataset(spark, str(folder), USERS, present, FileFacts(rows, LAYOUT, multiline=False, quotes=False))
    return csv, plain


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(st.one_of(rows, blank_lines), max_size=40),
    line_end=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    last_line_end=st.booleans(),
)
def test_a_file_without_quotes_splits_into_the_fields_the_csv_reader_gives(
    spark, tmp_path_factory, lines, line_end, bom, last_line_end
):
    folder = tmp_path_factory.mktemp("plain")
    text = ("\ufeff" if bom else "") + line_end.join([HEADER, *lines]) + (line_end if last_line_end else "")
    (folder / "users.csv").write_text(text, encoding="utf-8", newline="")
    csv, plain = _both_ways(spark, folder, "users.csv", len(lines))
    assertDataFrameEqual(plain, csv)


def test_the_header_is_dropped_once_however_the_file_is_split(spark, tmp_path):
    # Small splits put the file's lines in many tasks: only the first line of the first one is the header.
    body = [f"u{i},Ama,{HEADER if i % 7 == 0 else 'x'},Mensah,a{i}@example.com" for i in range(400)]
    (tmp_path / "users.csv").write_text("\n".join([HEADER, HEADER, *body, HEADER]) + "\n", encoding="utf-8")
    previous = {
        key: spark.conf.get(key) for key in ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")
    }
    spark.conf.set("spark.sql.files.maxPartitionBytes", "2000")
    spark.conf.set("spark.sql.files.openCostInBytes", "2000")
    try:
        csv, plain = _both_ways(spark, tmp_path, "users.csv", len(body) + 2)
        assert plain.rdd.getNumPartitions() > 5
        assertDataFrameEqual(plain, csv)
        assert plain.where("user_id = 'user_id'").count() == 2  # a later line like the header is a row
    finally:
        for key, value in previous.items():
            spark.conf.set(key, value)


def test_a_gzip_file_without_quotes_reads_like_the_csv_reader(spark, tmp_path):
    import gzip

    text = "\n".join([HEADER, "u1,Ama,,Mensah,", "", "u2, Kofi ,n,,k@example.com,extra"]) + "\n"
    (tmp_path / "users.csv.gz").write_bytes(gzip.compress(text.encode()))
    csv, plain = _both_ways(spark, tmp_path, "users.csv.gz", 2)
    assertDataFrameEqual(plain, csv)
    assert plain.count() == 2


def test_the_gate_tells_which_files_hold_no_quote(tmp_path):
    rentals = ",".join(RENTAL_TRANSACTIONS.required)
    plain, quoted = tmp_path / "plain", tmp_path / "quoted"
    plain.mkdir()
    quoted.mkdir()
    (plain / "users.csv").write_text(f"{HEADER}\nu1,Ama,,Mensah,a@example.com\n")
    (quoted / "users.csv").write_text(f'{HEADER}\nu1,"Ama",,Mensah,a@example.com\n')
    (quoted / "rental_transactions.csv").write_text(f'{rentals}\nR1,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,"1"\n')
    assert validate_file(plain / "users.csv").quotes is False
    assert validate_file(quoted / "users.csv").quotes is True
    assert validate_file(quoted / "rental_transactions.csv").quotes is True


def _widest_relation(frame) -> int:
    """The most columns any relation under the frame's plan has: what Catalyst carries through every plan."""
    leaves = frame._jdf.queryExecution().analyzed().collectLeaves()
    return max(leaves.apply(i).output().size() for i in range(leaves.size()))


@pytest.mark.parametrize(
    ("gate_layout", "ignored_first", "quoted"),
    [(True, True, True), (True, True, False), (True, False, True), (True, False, False), (False, True, True)],
    ids=[
        "quoted_behind_ignored",
        "plain_behind_ignored",
        "quoted_before_ignored",
        "plain_before_ignored",
        "spark_header",
    ],
)
def test_ignored_columns_never_become_columns(spark, tmp_path, quoted, ignored_first, gate_layout):
    # Unknown columns are allowed and ignored (contract, section 1); a file of 10,000 of them kept a run busy
    # past 600 s, because every plan of the job carried a relation 10,000 columns wide.
    ignored = [f"x{i}" for i in range(WIDE_FIELDS * 3)]
    header, row = ["user_id", "first_name"], ["u1", '"Ama, A."' if quoted else "Ama"]
    blanks = [""] * len(ignored)
    lines = [ignored + header, blanks + row] if ignored_first else [header + ignored, row + blanks]
    (tmp_path / "users.csv").write_text("\n".join(",".join(line) for line in lines) + "\n", encoding="utf-8")
    facts = FileFacts.from_verdict(validate_file(tmp_path / "users.csv").as_dict()) if gate_layout else None
    assert facts is None or facts.quotes is quoted

    frame = read_dataset(spark, str(tmp_path), USERS, {"users.csv"}, facts, str(tmp_path / "scratch"))

    assert _widest_relation(frame) <= len(USERS.columns)
    expected = {c: None for c in USERS.columns} | {"user_id": "u1", "first_name": "Ama, A." if quoted else "Ama"}
    assertDataFrameEqual(frame, spark.createDataFrame([expected], frame.schema))


@pytest.mark.parametrize(
    ("header", "line_end"),
    [
        ('user_id,first_name,"no\ntes",last_name,email', "\r\n"),  # Spark alone would split records at LF
        ('user_id,first_name,"no\r\ntes",last_name,email', "\n"),  # and here at CRLF, running them together
        (HEADER, "\r\n"),
    ],
)
def test_a_file_read_whole_splits_records_at_the_line_end_the_gate_found(spark, tmp_path, header, line_end):
    rows = ['u1,"Ama\nB",x,Mensah,a@example.com', 'u2,Kofi,"y\r\nz",Owusu,k@example.com', "u3,Esi,,Boateng,e"]
    (tmp_path / "users.csv").write_bytes(line_end.join([header, *rows, ""]).encode())
    verdict = validate_file(tmp_path / "users.csv")
    assert (verdict.accepted, verdict.line_end, verdict.multiline_fields) == (True, line_end, True)
    read = read_dataset(spark, str(tmp_path), USERS, {"users.csv"}, FileFacts.from_verdict(verdict.as_dict()))
    expected = [("u1", "Ama\nB", "Mensah", "a@example.com"), ("u3", "Esi", "Boateng", "e")]
    expected.insert(1, ("u2", "Kofi", "Owusu", "k@example.com"))
    assertDataFrameEqual(
        read.select("user_id", "first_name", "last_name", "email"),
        spark.createDataFrame(expected, "user_id string, first_name string, last_name string, email string"),
    )


@pytest.mark.parametrize("multiline", [False, True])
def test_the_widest_row_the_gate_accepts_is_read(spark, tmp_path, multiline):
    # Spark's CSV parser fails the whole read on a record wider than its maxColumns (attack29 finding 2): the job
    # sets it to MAX_FIELDS, and the gate refuses anything wider (test_gate.py), so the widest row it accepts reads.
    quoted = '"Ama\nB"' if multiline else '"Ama"'
    wide = "u2," + quoted + "," * (MAX_FIELDS - 2)
    (tmp_path / "users.csv").write_text(f"user_id,first_name\nu1,Kofi\n{wide}\n", encoding="utf-8")
    verdict = validate_file(tmp_path / "users.csv")
    assert (verdict.accepted, verdict.multiline_fields) == (True, multiline), verdict.reason
    frame = read_dataset(spark, str(tmp_path), USERS, {"users.csv"}, FileFacts.from_verdict(verdict.as_dict()))
    expected = [
        {c: None for c in USERS.columns} | {"user_id": u, "first_name": n}
        for u, n in [("u1", "Kofi"), ("u2", quoted.strip('"'))]
    ]
    assertDataFrameEqual(frame, spark.createDataFrame(expected, frame.schema))


@pytest.mark.parametrize("multiline", [False, True], ids=["line by line", "multi-line"])
def test_a_quote_inside_an_unquoted_value_is_text_to_the_gate_and_the_job_alike(spark, tmp_path, multiline):
    # The gate decides whether a control character is inside quotes as RFC 4180 does: a quote opens a quoted field
    # only at a field's start. Spark's readers must agree, or one could keep what the gate took for quoted.
    (tmp_path / "users.csv").write_text(f'{HEADER}\nu1,A"m,"x,y",Men"sah,\nu2, "Kofi",,"Ow""usu",\n')
    verdict = validate_file(tmp_path / "users.csv")
    assert verdict.accepted and not verdict.multiline_fields, verdict.reason
    facts = FileFacts.from_verdict({**verdict.as_dict(), "multiline_fields": multiline})
    frame = read_dataset(spark, str(tmp_path), USERS, {"users.csv"}, facts)
    rows = sorted(tuple(r) for r in frame.select("user_id", "first_name", "last_name").collect())
    assert rows == [("u1", 'A"m', 'Men"sah'), ("u2", ' "Kofi"', 'Ow"usu')]


@pytest.mark.parametrize("multiline", [False, True], ids=["line by line", "multi-line"])
def test_an_empty_quoted_value_in_an_ignored_column_leaves_the_next_value_as_the_gate_reads_it(
    spark, tmp_path, multiline
):
    # Spark's CSV parser, asked for some columns only, lost the opening quote of a value that starts with a
    # comma after a `""` in a column it skipped: the row's values shifted, and the batch kept a row the gate had
    # rejected (an amount such as ",77777.77," read as 77777.77).
    (tmp_path / "users.csv").write_text(f'{HEADER}\nu1,Ann,"",",Lee,",e@x\nu2,Bo,"",Sar,",e,"\n')
    verdict = validate_file(tmp_path / "users.csv")
    assert verdict.accepted, verdict.reason
    facts = FileFacts.from_verdict({**verdict.as_dict(), "multiline_fields": multiline})
    frame = read_dataset(spark, str(tmp_path), USERS, {"users.csv"}, facts)
    rows = sorted(tuple(r) for r in frame.select("user_id", "first_name", "last_name", "email").collect())
    assert rows == [("u1", "Ann", ",Lee,", "e@x"), ("u2", "Bo", "Sar", ",e,")]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085"])
def test_a_line_of_a_unicode_line_separator_is_a_row_to_the_plain_reader_as_to_the_gate(spark, tmp_path, separator):
    # Java's `$` matches before a last U+0085, U+2028 or U+2029: the quote-free reader took such a line for
    # blank and dropped it, and the batch failed on the gate's row count.
    (tmp_path / "users.csv").write_text(f"{HEADER}\nu1,a,,b,c\n{separator}\nu2,a,,b,c\n", encoding="utf-8")
    verdict = validate_file(tmp_path / "users.csv")
    assert verdict.accepted and not verdict.quotes, verdict.reason
    csv, plain = _both_ways(spark, tmp_path, "users.csv", verdict.rows)
    assert verdict.rows == csv.count() == plain.count() == 3
