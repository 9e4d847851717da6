"""The car-rental report page from hand-made summaries: headline figures, formats, failures and hostile values."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rental_analytics.car_rental.report import build_summary, history_trend, render_html, write_reports
from rental_analytics.platform.unusual import UnusualDataRule
from tests.html_page import HOSTILE, assert_inert, parse

NOW = dt.datetime(2024, 6, 2, 7, 30, tzinfo=dt.timezone.utc)
DAYS = [dt.date(2024, 5, 1) + dt.timedelta(days=i) for i in range(30)]


def outcome(**changes: Any) -> dict[str, Any]:
    base = {
        "succeeded": True,
        "message": "4918 of 5000 transaction rows accepted; analytics recomputed over 14918 rentals",
        "transaction_rows": 5000,
        "valid_transactions": 4918,
        "rejected_by_reason": {"bad_amount": 32, "unknown_location": 50},
        "reject_rate": 0.0164,
        "max_reject_rate": 0.05,
        "reference_rows": {"locations": 40, "vehicles": 900, "users": 3000},
        "reference_rejected": {"locations": {}, "vehicles": {}, "users": {"duplicate_id": 2}},
        "rows_read": {"locations": 40, "vehicles": 900, "users": 3003, "rental_transactions": 5012},
        "identical_rows_collapsed": {"locations": 0, "vehicles": 0, "users": 3, "rental_transactions": 12},
        "history_transactions": 14918,
    }
    return {**base, **changes}


def insights() -> dict[str, list[dict[str, Any]]]:
    daily = [
        {"rental_date": day, "total_revenue": Decimal("11710.00") + 37 * i, "transaction_count": 490 + i}
        for i, day in enumerate(DAYS)
    ]
    return {
        "daily_revenue_trend": daily,
        "top_revenue_locations": [
            {
                "location_id": "L1",
                "location_name": "Airport",
                "city": "Denver",
                "state": "CO",
                "total_revenue": Decimal("52340.10"),
                "transaction_count": 1720,
            },
            {
                "location_id": "L2",
                "location_name": "Downtown",
                "city": "Austin",
                "state": "TX",
                "total_revenue": Decimal("31000.00"),
                "transaction_count": 990,
            },
        ],
        "most_rented_vehicle_types": [
            {"vehicle_type": "SUV", "rental_count": 4918, "total_revenue": Decimal("201000.5"), "unique_vehicles": 180},
            {"vehicle_type": "Sedan", "rental_count": 3100, "total_revenue": Decimal("99000"), "unique_vehicles": 210},
        ],
        "top_spending_users": [
            {
                "user_id": "U1",
                "first_name": "Ama",
                "last_name": "Mensah",
                "total_spent": Decimal("11710.0"),
                "rental_count": 12,
            }
        ],
        "location_utilization": [
            {
                "location_id": "L1",
                "location_name": "Airport",
                "utilization_rate": 0.4321,
                "total_rental_hours": 20000.0,
                "unique_vehicles": 40,
            },
            {
                "location_id": "L2",
                "location_name": "Downtown",
                "utilization_rate": 0.1,
                "total_rental_hours": 9836.0,
                "unique_vehicles": 30,
            },
        ],
    }


FILES = [
    {"file": "raw/2024-06-01/users.csv", "dataset": "users", "accepted": True, "rows": 3003,
     "warnings": ["unknown column 'nickname' dropped", "2 of 3,003 rows break a row rule (missing_required 2)"],
     "row_issues": {"missing_required": 2}},
    {"file": "raw/2024-06-01/locations.csv", "dataset": "locations", "accepted": True, "rows": 40},
    {"file": "raw/2024-06-01/vehicles.csv", "dataset": "vehicles", "accepted": True, "rows": 900},
    {"file": "raw/2024-06-01/rental_transactions.csv.gz", "dataset": "rental_transactions", "accepted": True,
     "rows": 5012},
]  # fmt: skip


def success() -> dict[str, Any]:
    return build_summary("2024-06-01", outcome(), insights(), FILES, now=NOW)


def test_the_headline_figures_cover_the_history_and_the_batch():
    summary = success()
    headline = summary["headline"]
    assert headline["rentals"] == sum(490 + i for i in range(30))
    assert headline["total_revenue"] == pytest.approx(sum(11710 + 37 * i for i in range(30)))
    assert headline["average_rental_hours"] == pytest.approx(29836 / headline["rentals"])
    assert summary["currency"] == "USD" and summary["generated_at"] == "2024-06-02T07:30:00+00:00"
    json.dumps(summary)  # JSON-ready


def test_a_successful_batch_reads_as_figures_a_manager_forwards():
    page = assert_inert(render_html(success()))
    text = page.text
    assert "SUCCEEDED" in text
    # Headline tiles, formatted: money with its symbol, counts with separators, rates as percentages.
    assert "Total revenue $367,395.00" in text
    assert "Rentals accepted 4,918 this batch, of 5,000 rows" in text
    assert "Reject rate 1.64% 82 rows rejected; limit 5.00%" in text
    assert "Average rental duration 2.0 hours" in text
    assert "Rows read 8,955" in text and "Identical rows collapsed 15" in text
    # Human headers, not column names; the utilization table and the reasons are there.
    assert "Location Location ID City State Revenue Rentals" in text
    assert "Location utilization" in text and "Airport L1 43.2% 20,000.0 h 40" in text
    assert "Unknown location unknown_location 50 1.00%" in text
    assert "Ama Mensah $11,710.00 12" in text
    for raw in ("total_revenue", "utilization_rate", "4,918.00", "11710.0"):
        assert raw not in text
    # Charts with axes: tick labels on the value axis and the first and last dates.
    assert page.count("svg") == 3 and page.count("line") > 20
    assert "2024-05-01" in text and "2024-05-30" in text and "$15k" in text
    # Run facts and the files' verdicts.
    assert "Report written 2024-06-02T07:30:00+00:00" in text
    assert "rental_transactions.csv.gz rental_transactions Accepted 5,012" in text
    assert "unknown column 'nickname' dropped; 2 of 3,003 rows break a row rule (missing_required 2)" in text
    assert "Rentals in the processed history 14,918" in text
    assert "No run history here" in text


def test_the_currency_is_a_setting():
    summary = build_summary("b1", outcome(), insights(), FILES, currency="EUR", now=NOW)
    text = parse(render_html(summary)).text
    assert "Total revenue €367,395.00" in text and "Amounts in EUR" in text
    other = parse(render_html(build_summary("b1", outcome(), insights(), FILES, currency="CHF", now=NOW))).text
    assert "CHF 367,395.00" in other


def test_a_batch_the_gate_stopped_shows_each_files_verdict_and_what_to_do():
    files = [
        *FILES[:2],
        {"file": "raw/b1/vehicles.csv", "dataset": "vehicles", "accepted": False, "code": "binary",
         "reason": "the file holds NUL bytes: it is not text", "line": 3, "column": None, "examples": ["\\x00\\x01"]},
    ]  # fmt: skip
    summary = build_summary("b1", {"message": "the batch was not processed: REJECTED raw/b1/vehicles.csv"}, {}, files)
    page = assert_inert(render_html(summary))
    text = page.text

    assert "FAILED the batch was not processed" in text
    assert "What to do next" in text and "Send the missing files: rental_transactions.csv." in text
    assert "vehicles.csv vehicles Rejected — the file holds NUL bytes: it is not text 3" in text
    assert "No file arrived for: rental_transactions." in text
    assert page.count("svg") == 0 and "Revenue per day" not in text and "Total revenue" not in text


def test_a_batch_over_the_reject_limit_shows_the_reasons_and_no_charts():
    failed = outcome(
        succeeded=False,
        message="900 of 5000 transaction rows were rejected (18.00%), above max_reject_rate 5.00%",
        valid_transactions=4100,
        rejected_by_reason={"bad_timestamp": 880, "unknown_user": 20},
        reject_rate=0.18,
        history_transactions=0,
    )
    page = assert_inert(render_html(build_summary("b2", failed, {}, FILES)))
    text = page.text

    assert "Reject rate 18.00% 900 rows rejected; limit 5.00%" in text
    assert "900 of 5,000 rental rows were rejected (18.00%), above the limit of 5.00%" in text
    assert "quarantine/b2/rows/" in text and "--max-reject-rate" in text
    assert "Bad timestamp bad_timestamp 880 17.60%" in text
    assert "Total revenue" not in text and page.count("svg") == 0
    assert "Rentals in the processed history" not in text  # a failed batch's outcome counts none


def test_rows_read_apart_from_the_gates_count_are_shown_side_by_side():
    failed = outcome(succeeded=False, message="rental_transactions: the upload gate counted 5,012 rows, Spark read 5,000",
                     rows_read={**outcome()["rows_read"], "rental_transactions": 5000})  # fmt: skip
    text = parse(render_html(build_summary("b3", failed, {}, FILES))).text
    assert "The Spark job read a different number of rows than the upload gate counted" in text
    assert "rental_transactions 5,012 5,000" in text


def test_an_empty_batch_says_so_instead_of_drawing_empty_charts():
    empty = outcome(transaction_rows=0, valid_transactions=0, rejected_by_reason={}, reject_rate=0.0,
                    history_transactions=0)  # fmt: skip
    text = assert_inert(render_html(build_summary("b4", empty, {}, FILES))).text
    assert "Total revenue $0.00" in text and "Average rental duration —" in text
    assert text.count("Nothing to chart yet.") == 3 and "No rental rows were rejected." in text


def test_the_trend_against_earlier_batches():
    rule = UnusualDataRule()
    earlier = [
        {"batch_id": f"2024-05-{d:02d}", "counts": {"rental_transactions": 5000.0 + d, "users": 3000.0}}
        for d in range(1, 8)
    ]
    today = {"rental_transactions": 600.0, "users": 3000.0}
    warning = "rental_transactions: 600 rows, expected about 5,004"
    trend = history_trend(earlier, "2024-06-01", today, [warning], rule)
    assert trend["judged"] and trend["runs"][-1] == {"batch_id": "2024-06-01", "rows": 600.0}
    text = parse(render_html(build_summary("2024-06-01", outcome(), insights(), FILES, trend=trend))).text
    assert "Unusual row counts: " + warning in text
    assert "rental_transactions 600 5,004 5,001 to 5,007" in text and "Rental rows per batch" in text

    young = history_trend(earlier[:2], "2024-06-01", today, [], rule)
    text = parse(render_html(build_summary("2024-06-01", outcome(), insights(), FILES, trend=young))).text
    assert "2 earlier batch(es) on record; the counts are judged once 5 exist." in text


@pytest.mark.parametrize("hostile", HOSTILE)
def test_values_from_the_data_are_escaped(hostile: str):
    data = insights()
    data["top_revenue_locations"][0]["location_name"] = hostile
    data["top_revenue_locations"][0]["location_id"] = hostile
    data["location_utilization"][0]["location_name"] = hostile
    data["most_rented_vehicle_types"][0]["vehicle_type"] = hostile
    data["top_spending_users"][0]["first_name"] = hostile
    data["daily_revenue_trend"][0]["rental_date"] = hostile
    files = [{**FILES[0], "file": hostile, "warnings": [hostile]},
             {"file": hostile, "dataset": hostile, "accepted": False, "reason": hostile, "examples": [hostile]}]  # fmt: skip
    bad = outcome(message=hostile, rejected_by_reason={hostile: 3}, reference_rejected={hostile: {hostile: 1}})
    for summary in (
        build_summary(hostile, bad, data, files, currency=hostile),
        build_summary(hostile, {**bad, "succeeded": False}, {}, files),
    ):
        document = render_html(summary)
        page = assert_inert(document)
        assert hostile in page.text  # shown as the text it is
        assert hostile not in document


def test_the_page_and_the_summary_are_written_side_by_side(tmp_path: Path):
    page = write_reports(tmp_path / "reports" / "b1", success())
    assert page.name == "report.html" and page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert json.loads((page.parent / "summary.json").read_text())["headline"]["rentals"] == 15135


def test_the_printed_summary_says_how_many_identical_rows_counted_once():
    from rental_analytics.car_rental.report import summary_lines

    lines = summary_lines(build_summary("b1", outcome(), insights(), FILES, now=NOW))
    assert (
        "Identical rows counted once (contract, section 2): users 3 of 3,003 read, rental_transactions 12 of 5,012 read"
        in lines
    )


# Every character that ends a line for some reader (Python's str.splitlines, terminals, mail), the escape that
# starts a terminal sequence, a bidirectional override, and a byte of a file name that was not UTF-8.
LINE_BREAKERS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x1b[2J"]
FORGING = ["\u202e", "\udcff", "\x00"]


def _hostile_summaries(value: str) -> list[dict[str, Any]]:
    data = insights()
    for row in data["top_revenue_locations"]:
        row["location_name"] = row["location_id"] = value
    data["most_rented_vehicle_types"][0]["vehicle_type"] = value
    data["top_spending_users"][0]["user_id"] = value
    files = [{**FILES[0], "file": value, "warnings": [value]},
             {"file": value, "dataset": value, "accepted": False, "reason": value, "examples": [value]}]  # fmt: skip
    bad = outcome(message=value, rejected_by_reason={value: 3}, reference_rejected={value: {value: 1}})
    return [
        build_summary("b1", bad, data, files, now=NOW),
        build_summary("b1", {**bad, "succeeded": False}, {}, files, now=NOW),
    ]


@settings(max_examples=40, deadline=None)
@given(
    value=st.lists(st.one_of(st.sampled_from(LINE_BREAKERS + FORGING), st.text(max_size=3)), max_size=6).map("".join)
)
def test_no_value_from_the_data_starts_a_line_of_the_summary(value: str):
    from rental_analytics.car_rental.report import summary_lines

    for summary in _hostile_summaries(value):
        lines = summary_lines(summary)
        # What the terminal shows, notification.txt holds and SNS sends: these lines, joined by line breaks.
        assert "\n".join(lines).splitlines() == lines
        assert not any(ch in line for line in lines for ch in LINE_BREAKERS + FORGING)
        render_html(summary).encode("utf-8")  # a file name that was not UTF-8 is shown, not a failed write


def test_a_file_name_that_is_not_utf8_is_shown_as_its_bytes(tmp_path: Path):
    name = b"notes\xff.txt".decode("utf-8", "surrogateescape")  # as os.listdir gives it
    summary = build_summary("b1", outcome(), insights(), [*FILES, {"file": name, "accepted": False, "reason": "x"}])
    page = write_reports(tmp_path, summary)
    assert "notes\\xff.txt" in parse(page.read_text(encoding="utf-8")).text


def test_a_value_as_long_as_a_file_leaves_the_notification_short():
    from rental_analytics.car_rental.report import SUMMARY_LINE_CHARS, summary_lines

    for summary in _hostile_summaries("x" * 400_000):
        lines = summary_lines(summary)
        assert max(len(line) for line in lines) <= SUMMARY_LINE_CHARS
        assert len("\n".join(lines).encode()) < 64 * 1024  # SNS takes 256 KiB, the workflow's state as much
