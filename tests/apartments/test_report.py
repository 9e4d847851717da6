"""The apartments report page from hand-made runs: KPIs, quality results, failures and hostile values."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from rental_analytics.apartments.report import build_summary, render_html, report_dir, write_report
from tests.html_page import CHROMIUM, HOSTILE, assert_inert, chromium, parse, png_size

DAY = dt.date(2024, 6, 1)
START = dt.datetime(2024, 6, 1, 2, 0, 0, tzinfo=dt.timezone.utc)
END = START + dt.timedelta(minutes=3, seconds=25.4)


def metric(table: str, name: str, value: float, threshold: float, rows: int) -> dict[str, Any]:
    failed = round(rows * (1 - value))
    return {"table": table, "metric": name, "value": value, "threshold": threshold, "passed": value >= threshold,
            "rows": rows, "failed_rows": failed}  # fmt: skip


def quality(*breaches: dict[str, Any]) -> dict[str, Any]:
    metrics = [
        metric("apartments", "completeness", 1.0, 0.99, 1000),
        metric("apartments", "accuracy", 0.9995, 0.999, 1000),
        metric("bookings", "completeness", 1.0, 0.99, 3000),
        metric("bookings", "consistency", 0.998, 0.99, 3000),
        *breaches,
    ]
    return {"run_id": "2024-06-01-1a2b3c4d", "metrics": metrics, "unusual": [],
            "quarantined": {"apartments": 1, "apartment_attributes": 0, "user_viewing": 3, "bookings": 6}}  # fmt: skip


def kpis() -> dict[str, Any]:
    return {
        "bookings": 3000.0,
        "average_duration_days": 4.25,
        "customers": 1200.0,
        "repeat_customers": 300.0,
        "repeat_customer_rate": 0.25,
        "booking_revenue": 1234567.5,
        "current_listings": 990.0,
        "average_listing_price": 142.5,
        "occupancy_by_month": [
            {
                "month_start": "2024-04-01",
                "booked_nights": 9000.0,
                "available_nights": 29700.0,
                "occupancy_rate": 0.303,
            },
            {
                "month_start": "2024-05-01",
                "booked_nights": 12000.0,
                "available_nights": 30690.0,
                "occupancy_rate": 0.391,
            },
            {
                "month_start": "2024-06-01",
                "booked_nights": 6000.0,
                "available_nights": 29700.0,
                "occupancy_rate": 0.202,
            },
        ],
        "popular_locations": [
            {"location_name": "Accra", "bookings": 900, "popularity_rank": 1},
            {"location_name": "Lagos", "bookings": 700, "popularity_rank": 2},
        ],
        "listing_prices": [
            {"location_name": "Accra", "current_listings": 400, "average_price": 150.0},
            {"location_name": "Lagos", "current_listings": 300, "average_price": 120.25},
        ],
        "top_listings": [
            {"revenue_rank": 1, "apartment_id": 17, "location_name": "Accra", "revenue": 9000.0, "bookings": 12},
        ],
    }


def stages(**changes: Any) -> dict[str, Any]:
    base = {
        "source": "mysql://app@127.0.0.1:3306/market",
        "warehouse": "postgresql://postgres@127.0.0.1:5432/test",
        "output": "/data/apartments-output",
        "extracted": {"apartments": 1000, "apartment_attributes": 4000, "user_viewing": 6000, "bookings": 3000},
        "quality": quality(),
        "model": {
            "dim_locations": 10,
            "dim_users": 1200,
            "dim_apartments": 1010,
            "fact_bookings": 2994,
            "fact_viewings": 5997,
        },
        "loaded": {
            "dim_locations": 10,
            "dim_users": 1200,
            "dim_apartments": 1010,
            "fact_bookings": 2994,
            "fact_viewings": 5997,
        },
        "kpi_rows": {"kpi_popular_locations": 10, "kpi_top_listings": 100},
        "kpis": kpis(),
    }
    return {**base, **changes}


def success() -> dict[str, Any]:
    return build_summary(DAY, True, "load date 2024-06-01 is in the warehouse", START, END, stages())


def test_a_successful_run_shows_its_kpis_and_quality():
    page = assert_inert(render_html(success()))
    text = page.text
    assert "Apartments load 2024-06-01" in text and "SUCCEEDED load date 2024-06-01 is in the warehouse" in text
    assert "Bookings 3,000" in text and "Booking revenue $1,234,567.50" in text
    assert "Average stay 4.2 nights" in text  # half to even
    assert "Repeat customers 25.0% 300 of 1,200 booked again within 30 days" in text
    assert "Current listings 990 average price $142.50" in text
    assert "Occupancy this month 20.2%" in text
    assert "Quality checks met 4 of 4" in text and "Rows quarantined 10 of 14,000 rows extracted" in text
    # Human headers and formatted values in the tables.
    assert "Table Metric Rows passing Threshold Rows Rows failing Verdict" in text
    assert "apartments accuracy 99.95% 99.90% 1,000 0 Meets threshold" in text
    assert "Location Current listings Average price Accra 400 $150.00" in text
    assert "1 17 Accra $9,000.00 12" in text
    assert "bookings 3,000 6 2,994" in text and "fact_bookings 2,994 2,994" in text
    # Charts with axes and titles.
    assert page.count("svg") == 3 and "2024-04" in text and "40%" in text and "Bookings per location" in text
    assert "Duration 205.4 s" in text and "Started 2024-06-01T02:00:00+00:00" in text
    assert "What to do next" not in text


def test_a_quality_breach_shows_the_breach_and_what_to_do_instead_of_kpis():
    breached = quality(metric("user_viewing", "accuracy", 0.98, 0.999, 6000))
    breached["unusual"] = ["bookings: 3,000 rows, expected about 9,000"]
    message = "Data Quality Breach: user_viewing accuracy is 98.0000% (120 of 6,000 rows fail)"
    summary = build_summary(DAY, False, message, START, END, stages(quality=breached, model={}, loaded={},
                            kpi_rows={}, kpis=None), failed_stage="data quality")  # fmt: skip
    page = assert_inert(render_html(summary))
    text = page.text

    assert "FAILED Data Quality Breach" in text and "Quality checks met 4 of 5" in text
    assert "user_viewing accuracy 98.00% 99.90% 6,000 120 Below threshold" in text
    assert "quarantine/apartments/<table>/load_date=2024-06-01/" in text
    assert "rental-analytics run apartments --load-date 2024-06-01" in text
    assert "Unusual size: bookings: 3,000 rows, expected about 9,000" in text
    assert "No KPIs for this run" in text and "Bookings 3,000" not in text and page.count("svg") == 0
    assert "The model was not built in this run." in text and "Status FAILED in data quality" in text


def test_a_model_order_failure_says_what_to_run_instead():
    summary = build_summary(DAY, False, "dim_apartments already holds load date 2024-06-05", START, END,
                            stages(model={}, loaded={}, kpi_rows={}, kpis=None), failed_stage="transform")  # fmt: skip
    text = parse(render_html(summary)).text
    assert "The model moves forward only" in text and "Quality checks met 4 of 4" in text


def test_an_empty_warehouse_says_so_instead_of_drawing_empty_charts():
    empty = {**kpis(), "bookings": 0.0, "average_duration_days": None, "repeat_customer_rate": None,
             "occupancy_by_month": [], "popular_locations": [], "listing_prices": [], "top_listings": []}  # fmt: skip
    text = assert_inert(render_html(build_summary(DAY, True, "ok", START, END, stages(kpis=empty)))).text
    assert "Average stay —" in text and "Occupancy this month —" in text
    assert text.count("Nothing to chart yet.") == 3 and "No bookings yet." in text


@pytest.mark.parametrize("hostile", HOSTILE)
def test_values_from_the_data_are_escaped(hostile: str):
    data = kpis()
    for ranking in ("popular_locations", "listing_prices", "top_listings"):
        data[ranking][0]["location_name"] = hostile
    data["occupancy_by_month"][0]["month_start"] = hostile
    checked = quality(metric(hostile, hostile, 0.5, 0.99, 10))
    checked["unusual"], checked["run_id"] = [hostile], hostile
    checked["quarantined"][hostile] = 1
    run = stages(kpis=data, quality=checked, source=hostile, output=hostile, extracted={hostile: 10},
                 model={hostile: 1}, kpi_rows={hostile: 1})  # fmt: skip
    for succeeded in (True, False):
        summary = build_summary(DAY, succeeded, hostile, START, END, run, None if succeeded else hostile)
        summary["currency"] = hostile
        document = render_html(summary)
        page = assert_inert(document)
        assert hostile in page.text and hostile not in document


def test_the_page_goes_beside_the_zones(tmp_path: Path):
    page = write_report(report_dir(tmp_path, DAY), success())
    assert page == tmp_path / "reports" / "apartments" / "2024-06-01" / "report.html"
    assert json.loads((page.parent / "summary.json").read_text())["kpis"]["bookings"] == 3000


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH (Debian package chromium; .ci/run installs it)")
def test_chromium_renders_the_kpis(tmp_path: Path):
    page = write_report(tmp_path / "report", success())

    dom, shot = chromium(page, tmp_path)

    assert "Booking revenue $1,234,567.50" in dom.text and "Occupancy this month 20.2%" in dom.text
    assert "Table Metric Rows passing Threshold" in dom.text and dom.count("svg") == 3
    assert png_size(shot) == (1280, 2400) and shot.stat().st_size > 50_000
