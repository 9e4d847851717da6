"""The batch report: a machine-readable summary, a text summary, and an HTML page with inline SVG charts."""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

Rows = Sequence[Mapping[str, Any]]
TOP = 5


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _plain_rows(rows: Rows) -> list[dict[str, Any]]:
    return [{key: _plain(value) for key, value in row.items()} for row in rows]


def build_summary(
    batch_id: str,
    outcome: Mapping[str, Any],
    insights: Mapping[str, Rows],
    files: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """Everything a person or a program needs to know about one batch, as JSON-ready data."""
    vehicle_types = _plain_rows(insights.get("most_rented_vehicle_types", []))
    return {
        "batch_id": batch_id,
        "status": "succeeded" if outcome.get("succeeded") else "failed",
        "message": outcome.get("message", ""),
        "files": list(files),
        "transactions": {
            "rows": outcome.get("transaction_rows", 0),
            "accepted": outcome.get("valid_transactions", 0),
            "rejected_by_reason": dict(outcome.get("rejected_by_reason", {})),
            "reject_rate": outcome.get("reject_rate", 0.0),
            "max_reject_rate": outcome.get("max_reject_rate"),
        },
        "reference_rows": dict(outcome.get("reference_rows", {})),
        "reference_rejected": dict(outcome.get("reference_rejected", {})),
        "history_transactions": outcome.get("history_transactions", 0),
        "top_locations": _plain_rows(insights.get("top_revenue_locations", [])),
        "most_rented_vehicle_type": vehicle_types[0] if vehicle_types else None,
        "vehicle_types": vehicle_types,
        "top_spenders": _plain_rows(insights.get("top_spending_users", [])),
        "daily_revenue": _plain_rows(insights.get("daily_revenue_trend", [])),
        "location_utilization": _plain_rows(insights.get("location_utilization", []))[:10],
    }


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """A short text summary for a terminal or a notification; users appear by id only, never by name."""
    tx = summary["transactions"]
    lines = [f"Batch {summary['batch_id']}: {summary['status'].upper()}. {summary['message']}"]
    rejected = tx["rejected_by_reason"]
    lines.append(
        "Rejected rows per reason: "
        + (", ".join(f"{reason} {count}" for reason, count in rejected.items()) if rejected else "none")
    )
    for dataset, reasons in summary.get("reference_rejected", {}).items():
        if reasons:
            lines.append(f"Rejected {dataset} rows: " + ", ".join(f"{r} {n}" for r, n in reasons.items()))
    if summary["top_locations"]:
        lines.append("Top locations by revenue:")
        lines += [
            f"  {row['location_name'] or row['location_id']} ({row['location_id']}): "
            f"{row['total_revenue']:,.2f} from {row['transaction_count']} rentals"
            for row in summary["top_locations"][:TOP]
        ]
    top_type = summary.get("most_rented_vehicle_type")
    if top_type:
        lines.append(f"Most rented vehicle type: {top_type['vehicle_type']} ({top_type['rental_count']} rentals)")
    if summary["top_spenders"]:
        lines.append("Top spenders (user id):")
        lines += [
            f"  {row['user_id']}: {row['total_spent']:,.2f} over {row['rental_count']} rentals"
            for row in summary["top_spenders"][:TOP]
        ]
    return lines


def _bars(title: str, labels: Sequence[str], values: Sequence[float]) -> str:
    """A horizontal bar chart as inline SVG."""
    width, row_height, label_width = 640, 22, 220
    height = row_height * len(values) + 30
    peak = max(values, default=0) or 1
    parts = [f'<svg role="img" aria-label="{html.escape(title)}" width="{width}" height="{height}">']
    for i, (label, value) in enumerate(zip(labels, values)):
        y = 20 + i * row_height
        bar = (width - label_width - 90) * value / peak
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12">{html.escape(str(label))[:32]}</text>'
            f'<rect x="{label_width}" y="{y}" width="{bar:.1f}" height="{row_height - 6}" fill="#3b7dd8"/>'
            f'<text x="{label_width + bar + 6:.1f}" y="{y + 14}" font-size="12">{value:,.2f}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _line(title: str, labels: Sequence[str], values: Sequence[float]) -> str:
    """A line chart as inline SVG, first and last label on the axis."""
    width, height, pad = 640, 220, 40
    if not values:
        return "<p>No data.</p>"
    peak = max(values) or 1
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = " ".join(
        f"{pad + i * step:.1f},{height - pad - (height - 2 * pad) * v / peak:.1f}" for i, v in enumerate(values)
    )
    return (
        f'<svg role="img" aria-label="{html.escape(title)}" width="{width}" height="{height}">'
        f'<polyline fill="none" stroke="#3b7dd8" stroke-width="2" points="{points}"/>'
        f'<text x="{pad}" y="{height - 10}" font-size="12">{html.escape(labels[0])}</text>'
        f'<text x="{width - pad}" y="{height - 10}" font-size="12" text-anchor="end">'
        f"{html.escape(labels[-1])}</text>"
        f'<text x="{pad}" y="14" font-size="12">max {peak:,.2f}</text></svg>'
    )


def _table(rows: Rows, columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(row.get(c, '')))}</td>" for c in columns) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(summary: Mapping[str, Any]) -> str:
    """The human report: one self-contained page that needs no network."""
    daily = summary["daily_revenue"]
    locations = summary["top_locations"]
    types = summary["vehicle_types"]
    rejected = [{"reason": r, "rows": n} for r, n in summary["transactions"]["rejected_by_reason"].items()]
    sections = [
        f"<h1>Car-rental batch {html.escape(summary['batch_id'])}</h1>",
        f"<p class='{summary['status']}'><strong>{summary['status'].upper()}</strong>: "
        f"{html.escape(summary['message'])}</p>",
        "<h2>Revenue per day</h2>",
        _line("Revenue per day", [str(r["rental_date"]) for r in daily], [r["total_revenue"] for r in daily]),
        "<h2>Top locations by revenue</h2>",
        _bars(
            "Top locations",
            [r["location_name"] or r["location_id"] for r in locations],
            [r["total_revenue"] for r in locations],
        ),
        "<h2>Vehicle types by rentals</h2>",
        _bars("Vehicle types", [str(r["vehicle_type"]) for r in types], [r["rental_count"] for r in types]),
        "<h2>Top spenders</h2>",
        _table(summary["top_spenders"], ["user_id", "first_name", "last_name", "total_spent", "rental_count"]),
        "<h2>Rejected transaction rows</h2>",
        _table(rejected, ["reason", "rows"]) if rejected else "<p>None.</p>",
    ]
    style = (
        "body{font-family:sans-serif;max-width:760px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        ".failed{color:#b00020}.succeeded{color:#1b5e20}"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Batch {html.escape(summary['batch_id'])}</title><style>{style}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )


def write_reports(report_dir: Path, summary: Mapping[str, Any]) -> Path:
    """Write summary.json and report.html; returns the HTML path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")
    page = report_dir / "report.html"
    page.write_text(render_html(summary), encoding="utf-8")
    return page
