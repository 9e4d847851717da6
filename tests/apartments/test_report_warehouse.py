"""The apartments page from the real warehouse and a real local run: KPIs read back, the page written."""

from __future__ import annotations

from pathlib import Path

import pytest

from rental_analytics.apartments import warehouse
from rental_analytics.apartments.report import read_kpis, render_html
from tests.apartments.test_warehouse import D1, MODEL, load, target, write_model  # noqa: F401 (target: a fixture)
from tests.html_page import assert_inert

pytestmark = [pytest.mark.spark, pytest.mark.databases]


def test_the_page_reads_the_kpis_of_a_small_model(spark, target, tmp_path: Path):  # noqa: F811
    load(spark, target, write_model(spark, tmp_path, MODEL), D1)
    with warehouse.connect(spark, target, warehouse.POSTGRESQL) as connection:
        kpis = read_kpis(connection)

    assert (kpis["bookings"], kpis["average_duration_days"], kpis["booking_revenue"]) == (3, 2.0, 620.0)
    assert (kpis["customers"], kpis["repeat_customers"], kpis["repeat_customer_rate"]) == (2, 1, 0.5)
    assert (kpis["current_listings"], kpis["average_listing_price"]) == (2, 100.0)
    # Over both current apartments' nights, Lagos's too in May, when only Accra was booked: May 2 of 2 x 31
    # nights; June: Accra 2 and Lagos 2 of 2 x 30.
    assert [(m["month_start"], m["occupancy_rate"]) for m in kpis["occupancy_by_month"]] == [
        ("2024-05-01", pytest.approx(2 / 62)),
        ("2024-06-01", pytest.approx(4 / 60)),
    ]
    assert [(r["location_name"], r["bookings"]) for r in kpis["popular_locations"]] == [("Accra", 2), ("Lagos", 1)]
    assert kpis["top_listings"][0] == {
        "revenue_rank": 1, "apartment_id": 1, "location_name": "Lagos", "revenue": 540.0, "bookings": 2
    }  # fmt: skip

    from rental_analytics.apartments.report import build_summary
    from tests.apartments.test_report import END, START, stages

    text = assert_inert(render_html(build_summary(D1, True, "ok", START, END, stages(kpis=kpis)))).text
    assert "Booking revenue $620.00" in text and "Occupancy this month 6.7%" in text


def test_a_breached_local_run_writes_its_page(source, target, tmp_path: Path, capsys):  # noqa: F811
    from rental_analytics.cli import main

    generate = ["generate", "apartments", "--mysql-url", str(source), "--apartments", "60", "--bad-share", "0.05"]
    main([*generate, "--as-of", "2024-06-01"])
    code = main(["run", "apartments", "--mysql-url", str(source), "--warehouse-url", str(target),
                 "--output", str(tmp_path), "--load-date", "2024-06-01"])  # fmt: skip

    assert code == 1
    page = tmp_path / "reports" / "apartments" / "2024-06-01" / "report.html"
    assert f"Report: {page}" in capsys.readouterr().out
    text = assert_inert(page.read_text(encoding="utf-8")).text
    assert "FAILED Data Quality Breach" in text and "Below threshold" in text and "What to do next" in text


def test_a_run_that_fails_in_its_load_still_writes_its_page(source, target, tmp_path: Path, capsys, monkeypatch):  # noqa: F811
    from rental_analytics.cli import main

    def refused(*_: object, **__: object) -> None:
        raise RuntimeError("the warehouse refused the rows")

    main(["generate", "apartments", "--mysql-url", str(source), "--apartments", "40", "--as-of", "2024-06-01"])
    monkeypatch.setattr(warehouse, "load_model", refused)
    code = main(["run", "apartments", "--mysql-url", str(source), "--warehouse-url", str(target),
                 "--output", str(tmp_path), "--load-date", "2024-06-01"])  # fmt: skip

    assert code == 1
    assert "the warehouse refused the rows" in capsys.readouterr().err
    page = tmp_path / "reports" / "apartments" / "2024-06-01" / "report.html"
    text = assert_inert(page.read_text(encoding="utf-8")).text
    assert "FAILED" in text and "the warehouse refused the rows" in text
