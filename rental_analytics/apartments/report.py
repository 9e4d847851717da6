"""The apartments run report: one load date's KPIs, quality results and run facts as one HTML page."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rental_analytics.platform import html_report as H

if TYPE_CHECKING:  # the page is rendered without Spark; only the readers below touch it
    from rental_analytics.apartments.jobs import QualityOutcome
    from rental_analytics.apartments.warehouse import Connection

TOP = 10

LABELS = {
    "table": "Table",
    "metric": "Metric",
    "value": "Rows passing",
    "threshold": "Threshold",
    "rows": "Rows",
    "failed_rows": "Rows failing",
    "verdict": "Verdict",
    "extracted": "Rows extracted",
    "quarantined": "Rows quarantined",
    "passed": "Rows passed",
    "built": "Rows in the model",
    "loaded": "Rows loaded",
    "location_name": "Location",
    "bookings": "Bookings",
    "popularity_rank": "Rank",
    "current_listings": "Current listings",
    "average_price": "Average price",
    "month_start": "Month",
    "booked_nights": "Booked nights",
    "available_nights": "Available nights",
    "occupancy_rate": "Occupancy",
    "revenue_rank": "Rank",
    "apartment_id": "Apartment ID",
    "revenue": "Revenue",
}
KINDS = {
    "value": H.SHARE,
    "threshold": H.SHARE,
    "rows": H.INTEGER,
    "failed_rows": H.INTEGER,
    "extracted": H.INTEGER,
    "quarantined": H.INTEGER,
    "passed": H.INTEGER,
    "built": H.INTEGER,
    "loaded": H.INTEGER,
    "bookings": H.INTEGER,
    "popularity_rank": H.INTEGER,
    "current_listings": H.INTEGER,
    "average_price": H.MONEY,
    "booked_nights": H.INTEGER,
    "available_nights": H.INTEGER,
    "occupancy_rate": H.PERCENT,
    "revenue_rank": H.INTEGER,
    "revenue": H.MONEY,
    "table": H.NAME,
}


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _real(expression: str) -> str:
    # DECIMAL and the NUMERIC that SUM gives do not come back through the JDBC connection as Python numbers.
    return f"CAST({expression} AS DOUBLE PRECISION)"


def _records(connection: Connection, sql: str, names: Sequence[str]) -> list[dict[str, Any]]:
    return [dict(zip(names, row)) for row in connection.query(sql)]


def read_kpis(connection: Connection) -> dict[str, Any]:
    """The KPI tables as the page shows them: headline figures, and the first rows of each ranking."""
    [(bookings, duration)] = connection.query(
        "SELECT bookings, average_duration_days FROM analytics.kpi_average_booking_duration"
    )
    [(customers, repeat, repeat_rate)] = connection.query(
        "SELECT customers, repeat_customers, repeat_customer_rate FROM analytics.kpi_repeat_customer_rate"
    )
    [(revenue,)] = connection.query(f"SELECT {_real('SUM(total_amount)')} FROM analytics.kpi_bookings_per_user")
    [(listings, listed_value)] = connection.query(
        f"SELECT {_real('SUM(current_listings)')}, {_real('SUM(current_listings * average_price)')} "
        "FROM analytics.kpi_average_listing_price"
    )
    # A month's occupancy over every location is over every current apartment's nights: the KPI table has a
    # row only for the locations booked that month, so the sum of its available nights would leave out the rest.
    [(apartments,)] = connection.query("SELECT COUNT(*) FROM analytics.dim_apartments WHERE is_current")
    months = []
    for month, booked in connection.query(
        f"SELECT month_start, {_real('SUM(booked_nights)')} FROM analytics.kpi_occupancy_rate "
        "GROUP BY month_start ORDER BY month_start"
    ):
        start = dt.date.fromisoformat(str(month))
        nights = _number(booked) or 0.0
        capacity = float(calendar.monthrange(start.year, start.month)[1] * int(apartments or 0))
        months.append(
            {
                "month_start": str(month),
                "booked_nights": nights,
                "available_nights": capacity,
                "occupancy_rate": nights / capacity if capacity else None,
            }
        )
    listing_count = _number(listings) or 0.0
    return {
        "bookings": _number(bookings) or 0.0,
        "average_duration_days": _number(duration),
        "customers": _number(customers) or 0.0,
        "repeat_customers": _number(repeat) or 0.0,
        "repeat_customer_rate": _number(repeat_rate),
        "booking_revenue": _number(revenue) or 0.0,
        "current_listings": listing_count,
        # The per-location averages weighted by their listings: the average over every current listing.
        "average_listing_price": (_number(listed_value) or 0.0) / listing_count if listing_count else None,
        "occupancy_by_month": months,
        "popular_locations": _records(
            connection,
            "SELECT location_name, bookings, popularity_rank FROM analytics.kpi_popular_locations "
            f"ORDER BY popularity_rank, location_name LIMIT {TOP}",
            ("location_name", "bookings", "popularity_rank"),
        ),
        "listing_prices": _records(
            connection,
            f"SELECT location_name, current_listings, {_real('average_price')} "
            f"FROM analytics.kpi_average_listing_price ORDER BY current_listings DESC, location_name LIMIT {TOP}",
            ("location_name", "current_listings", "average_price"),
        ),
        "top_listings": _records(
            connection,
            f"SELECT revenue_rank, apartment_id, location_name, {_real('revenue')}, bookings "
            f"FROM analytics.kpi_top_listings ORDER BY revenue_rank, apartment_id LIMIT {TOP}",
            ("revenue_rank", "apartment_id", "location_name", "revenue", "bookings"),
        ),
    }


def quality_summary(outcome: QualityOutcome) -> dict[str, Any]:
    """The quality job's metrics, quarantined rows and unusual-size findings as JSON-ready data."""
    return {
        "run_id": outcome.run_id,
        "metrics": [
            {
                "table": m.table,
                "metric": m.metric,
                "value": m.value,
                "threshold": m.threshold,
                "passed": m.passed,
                "rows": m.rows,
                "failed_rows": m.failed_rows,
            }
            for m in outcome.metrics
        ],
        "quarantined": dict(outcome.quarantined),
        "unusual": [f.describe() for f in outcome.unusual],
    }


def build_summary(
    load_date: dt.date,
    succeeded: bool,
    message: str,
    started_at: dt.datetime,
    finished_at: dt.datetime,
    stages: Mapping[str, Any],
    failed_stage: str | None = None,
    currency: str = H.DEFAULT_CURRENCY,
) -> dict[str, Any]:
    """One run as JSON-ready data. `stages` holds what the stages that ran gave back.

    Its keys: `source`, `warehouse`, `output` (text), `extracted`, `model`, `loaded`, `kpi_rows` (rows per
    table), `quality` (`quality_summary`) and `kpis` (`read_kpis`).
    """
    return {
        "pipeline": "apartments",
        "load_date": load_date.isoformat(),
        "status": "succeeded" if succeeded else "failed",
        "failed_stage": failed_stage,
        "message": message,
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": finished_at.isoformat(timespec="seconds"),
        "duration_seconds": round((finished_at - started_at).total_seconds(), 1),
        "currency": currency,
        "source": stages.get("source"),
        "warehouse": stages.get("warehouse"),
        "output": stages.get("output"),
        "extracted": dict(stages.get("extracted", {})),
        "quality": stages.get("quality"),
        "model": dict(stages.get("model", {})),
        "loaded": dict(stages.get("loaded", {})),
        "kpi_rows": dict(stages.get("kpi_rows", {})),
        "kpis": stages.get("kpis"),
    }


def _cols(*keys: str) -> list[H.Column]:
    return H.columns(keys, LABELS, KINDS)


def _checks(summary: Mapping[str, Any]) -> tuple[int, int]:
    metrics = (summary.get("quality") or {}).get("metrics", [])
    return sum(1 for m in metrics if m["passed"]), len(metrics)


def _quality_tiles(summary: Mapping[str, Any], fmt: H.Formats) -> list[H.Tile]:
    quality = summary.get("quality")
    if not quality:
        return []
    passed, total = _checks(summary)
    extracted = sum(summary["extracted"].values())
    quarantined = sum(quality["quarantined"].values())
    return [
        H.Tile(
            "Quality checks met",
            f"{passed} of {total}",
            "completeness, accuracy, consistency",
            "good" if passed == total else "bad",
        ),
        H.Tile("Rows quarantined", fmt.integer(quarantined), f"of {fmt.integer(extracted)} rows extracted"),
    ]


def _month_of(load_date: str, months: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next((m for m in months if str(m["month_start"])[:7] == load_date[:7]), None)


def _kpi_tiles(summary: Mapping[str, Any], fmt: H.Formats) -> list[H.Tile]:
    kpis = summary["kpis"]
    month = _month_of(summary["load_date"], kpis["occupancy_by_month"])
    nights = kpis["average_duration_days"]
    return [
        H.Tile("Bookings", fmt.integer(kpis["bookings"]), "all load dates so far"),
        H.Tile("Booking revenue", fmt.money(kpis["booking_revenue"]), "sum of every booking's amount"),
        H.Tile("Average stay", H.MISSING if nights is None else f"{fmt.number(nights)} nights", "per booking"),
        H.Tile(
            "Repeat customers",
            fmt.percent(kpis["repeat_customer_rate"]),
            f"{fmt.integer(kpis['repeat_customers'])} of {fmt.integer(kpis['customers'])} booked again within 30 days",
        ),
        H.Tile(
            "Current listings",
            fmt.integer(kpis["current_listings"]),
            f"average price {fmt.money(kpis['average_listing_price'])}",
        ),
        H.Tile(
            "Occupancy this month",
            fmt.percent(month["occupancy_rate"] if month else None),
            f"booked nights over available nights, {summary['load_date'][:7]}",
        ),
    ]


def _kpi_sections(summary: Mapping[str, Any], fmt: H.Formats) -> list[str]:
    kpis, currency = summary["kpis"], summary.get("currency", H.DEFAULT_CURRENCY)
    popular, months = kpis["popular_locations"], kpis["occupancy_by_month"]
    # The locations with the most listings, shown dearest first so that the bars read as a ranking.
    prices = sorted(kpis["listing_prices"], key=lambda r: -(r["average_price"] or 0.0))
    return [
        H.section(
            "Occupancy per month",
            H.line_chart(
                "Booked nights over available nights, all locations",
                [str(m["month_start"])[:7] for m in months],
                [m["occupancy_rate"] for m in months],
                H.PERCENT,
                fmt,
                x_title="Month",
                y_title="Occupancy",
            ),
            intro="A booking's nights count in the months they fall in; months to come hold the bookings made so far.",
        ),
        H.section(
            "Most popular locations",
            H.bar_chart(
                "Bookings per location",
                [str(r["location_name"]) for r in popular],
                [r["bookings"] for r in popular],
                H.INTEGER,
                fmt,
                axis_title="Bookings",
            ),
        ),
        H.section(
            "Average listing price",
            H.bar_chart(
                f"Average price of the current listings ({currency})",
                [str(r["location_name"]) for r in prices],
                [r["average_price"] for r in prices],
                H.MONEY,
                fmt,
                axis_title=f"Average price ({currency})",
            ),
            H.table(prices, _cols("location_name", "current_listings", "average_price"), fmt),
            intro=f"The {TOP} locations with the most current listings, dearest first.",
        ),
        H.section(
            "Top listings by revenue",
            H.table(
                kpis["top_listings"],
                _cols("revenue_rank", "apartment_id", "location_name", "revenue", "bookings"),
                fmt,
                "No bookings yet.",
            ),
        ),
    ]


def _quality_section(summary: Mapping[str, Any], fmt: H.Formats) -> str:
    quality = summary.get("quality")
    if not quality:
        return H.section("Data quality", H.paragraph("The quality checks did not run.", "empty"))
    rows = [
        {
            **m,
            "verdict": "Meets threshold" if m["passed"] else "Below threshold",
            H.TONE: "" if m["passed"] else "bad",
        }
        for m in sorted(quality["metrics"], key=lambda m: m["passed"])  # breaches first
    ]
    parts = []
    if quality["unusual"]:
        parts.append(H.bullets(["Unusual size: " + finding for finding in quality["unusual"]], css="warn"))
    parts.append(H.table(rows, _cols("table", "metric", "value", "threshold", "rows", "failed_rows", "verdict"), fmt))
    return H.section(
        "Data quality",
        *parts,
        intro=f"Run {quality['run_id']}: each metric is the share of rows that pass its rules.",
    )


def _stages_section(summary: Mapping[str, Any], fmt: H.Formats) -> str:
    quarantined = (summary.get("quality") or {}).get("quarantined", {})
    source = [
        {
            "table": name,
            "extracted": rows,
            "quarantined": quarantined.get(name),
            "passed": rows - quarantined[name] if name in quarantined else None,
        }
        for name, rows in summary["extracted"].items()
    ]
    model = [
        {"table": name, "built": rows, "loaded": summary["loaded"].get(name)} for name, rows in summary["model"].items()
    ]
    kpi_tables = [{"table": name, "rows": rows} for name, rows in summary["kpi_rows"].items()]
    parts = [
        "<h3>Source tables</h3>",
        H.table(source, _cols("table", "extracted", "quarantined", "passed"), fmt, "Nothing was extracted."),
        "<h3>Model and warehouse</h3>",
        H.table(model, _cols("table", "built", "loaded"), fmt, "The model was not built in this run."),
    ]
    if kpi_tables:
        parts += ["<h3>KPI tables</h3>", H.table(kpi_tables, _cols("table", "rows"), fmt)]
    return H.section("Rows per stage", *parts)


def next_steps(summary: Mapping[str, Any]) -> list[str]:
    """What a person does about a failed run."""
    day = summary["load_date"]
    rerun = f"`rental-analytics run apartments --load-date {day}`"
    if summary.get("failed_stage") == "data quality":
        return [
            "The metrics below their threshold are marked in the data quality table: each names the table, the "
            "share of rows that pass and the threshold.",
            f"The failing rows, each with its reason, are in `quarantine/apartments/<table>/load_date={day}/` under "
            "the output folder; every run's metrics are in `processed/apartments/dq_results/`.",
            f"Correct the rows in the source database, then run the same load date again ({rerun}). Nothing "
            "from this load date reached the model or the warehouse.",
        ]
    if summary.get("failed_stage") == "transform":
        return [
            "The model moves forward only: it already holds a load date newer than this one (the message names it).",
            "Run a load date on or after the newest one applied; the quality results of this run are kept.",
        ]
    return [f"Read the message above, fix its cause, then run the load date again ({rerun})."]


def _facts_section(summary: Mapping[str, Any]) -> str:
    pairs = [
        ("Load date", summary["load_date"]),
        ("Status", summary["status"].upper() + (f" in {summary['failed_stage']}" if summary["failed_stage"] else "")),
        ("Quality run", str((summary.get("quality") or {}).get("run_id") or H.MISSING)),
        ("Started", summary["started_at"]),
        ("Finished", summary["finished_at"]),
        ("Duration", f"{summary['duration_seconds']:,.1f} s"),
        ("Source", str(summary.get("source") or H.MISSING)),
        ("Warehouse", str(summary.get("warehouse") or H.MISSING)),
        ("Output folder", str(summary.get("output") or H.MISSING)),
        ("Currency of amounts", str(summary.get("currency", H.DEFAULT_CURRENCY))),
    ]
    return H.section("Run facts", H.facts(pairs))


def render_html(summary: Mapping[str, Any]) -> str:
    """The human report of one apartments run: one self-contained page that needs no network."""
    fmt = H.Formats(str(summary.get("currency") or H.DEFAULT_CURRENCY))
    failed = summary["status"] != "succeeded"
    tiles = ([] if failed or not summary.get("kpis") else _kpi_tiles(summary, fmt)) + _quality_tiles(summary, fmt)
    body = [H.banner(summary["status"], str(summary["message"]))]
    if tiles:
        body.append(H.tiles(tiles))
    if failed:
        body.append(H.section("What to do next", H.bullets(next_steps(summary), ordered=True, css="next")))
        body.append(_quality_section(summary, fmt))
        body.append(H.paragraph("No KPIs for this run: it stopped before the warehouse was refreshed.", "empty"))
    else:
        body += [*(_kpi_sections(summary, fmt) if summary.get("kpis") else []), _quality_section(summary, fmt)]
    body += [_stages_section(summary, fmt), _facts_section(summary)]
    return H.page(
        f"Apartments load {summary['load_date']}",
        "Rental Marketplace Analytics · apartments report",
        body,
        f"Written {summary['finished_at']} by rental-analytics. Amounts in {fmt.currency}. "
        "KPIs cover every load date in the warehouse; quality and row counts cover this run.",
    )


def report_dir(output: Path, load_date: dt.date) -> Path:
    """Where a run's page goes: beside the zones, one folder per load date."""
    return output / "reports" / "apartments" / load_date.isoformat()


def write_report(folder: Path, summary: Mapping[str, Any]) -> Path:
    """Write summary.json and report.html; returns the HTML path."""
    return H.write_report(folder, summary, render_html(summary))
