"""Whole-file verdicts of the gate: each contract reason for rejecting a file, and what is accepted."""

from __future__ import annotations

import gzip
import io

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
