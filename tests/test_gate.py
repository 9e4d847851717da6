"""The gate on single files: each contract reason for rejecting a file, and the row counts of accepted ones."""

from __future__ import annotations

import gzip
import io
import re

import pytest

from rental_analytics import row_checks
from rental_analytics.gate import validate_folder, validate_stream
from tests import sample_batch
from tests.gate_corpus import ACCEPTED, CORPUS, REJECTED, Case

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


def test_a_row_longer_than_a_block_is_rejected_not_buffered(monkeypatch):
    monkeypatch.setattr(row_checks, "BLOCK_BYTES", 1 << 16)
    content = (TX.splitlines()[0] + "\n" + "R1," + "x" * (1 << 17) + "\n").encode()
    verdict = validate_stream("rental_transactions.csv", io.BytesIO(content))
    assert (verdict.accepted, verdict.code) == (False, "unreadable_rows")


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
    from rental_analytics.contract import CALENDAR_TIMESTAMP_REGEX

    frame = spark.createDataFrame([(t,) for t in TIMESTAMPS], "text string")
    spark_verdict = {
        r.text: r.ok for r in frame.select("text", rules._timestamp(F.col("text")).isNotNull().alias("ok")).collect()
    }
    gate_verdict = {t: re.fullmatch(CALENDAR_TIMESTAMP_REGEX.strip("^$"), t) is not None for t in TIMESTAMPS}
    assert gate_verdict == spark_verdict
    assert sum(gate_verdict.values()) == 5
