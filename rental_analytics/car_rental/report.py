"""The batch report: a machine-readable summary, a text summary, and an HTML page with inline SVG charts."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from rental_analytics.car_rental.contract import DATASETS, RENTAL_TRANSACTIONS
from rental_analytics.platform import html_report as H
from rental_analytics.platform.text import printable
from rental_analytics.platform.unusual import UnusualDataRule

Rows = Sequence[Mapping[str, Any]]
TOP = 5
TOP_TABLE = 10

# Table headers a person reads, for the column names of the insight queries and the summary.
LABELS = {
    "location_id": "Location ID",
    "location_name": "Location",
    "city": "City",
    "state": "State",
    "total_revenue": "Revenue",
    "transaction_count": "Rentals",
    "utilization_rate": "Utilization",
    "total_rental_hours": "Rental hours",
    "unique_vehicles": "Vehicles",
    "vehicle_type": "Vehicle type",
    "rental_count": "Rentals",
    "user_id": "User ID",
    "first_name": "First name",
    "last_name": "Last name",
    "total_spent": "Total spent",
    "reason": "Reason",
    "code": "Code",
    "rows": "Rows",
    "share": "Share of rows",
    "dataset": "Dataset",
    "rows_read": "Rows read",
    "collapsed": "Identical rows collapsed",
    "distinct": "Distinct rows",
    "rejected": "Rejected",
    "kept": "Kept",
    "file": "File",
    "verdict": "Verdict",
    "detail": "Reason or warnings",
    "line": "Line",
    "column": "Column",
    "examples": "Examples",
    "batch_id": "Batch",
    "series": "Dataset",
    "this_batch": "This batch",
    "earlier_mean": "Earlier batches, average",
    "earlier_range": "Earlier batches, range",
    "gate_rows": "Rows counted by the gate",
}
KINDS = {
    "total_revenue": H.MONEY,
    "total_spent": H.MONEY,
    "transaction_count": H.INTEGER,
    "rental_count": H.INTEGER,
    "unique_vehicles": H.INTEGER,
    "utilization_rate": H.PERCENT,
    "total_rental_hours": H.HOURS,
    "rows": H.INTEGER,
    "share": H.SHARE,
    "rows_read": H.INTEGER,
    "collapsed": H.INTEGER,
    "distinct": H.INTEGER,
    "rejected": H.INTEGER,
    "kept": H.INTEGER,
    "line": H.INTEGER,
    "this_batch": H.INTEGER,
    "earlier_mean": H.INTEGER,
    "gate_rows": H.INTEGER,
    "file": H.NAME,
    "dataset": H.NAME,
}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _plain_rows(rows: Rows) -> list[dict[str, Any]]:
    return [{key: _plain(value) for key, value in row.items()} for row in rows]


def _total(rows: Rows, key: str) -> Decimal:
    return sum((Decimal(str(row[key])) for row in rows if row.get(key) is not None), Decimal(0))


def _headline(insights: Mapping[str, Rows]) -> dict[str, Any]:
    """Figures over the whole processed history, from the full query results (before any top-N cut)."""
    daily = insights.get("daily_revenue_trend", [])
    rentals = int(_total(daily, "transaction_count"))
    hours = float(_total(insights.get("location_utilization", []), "total_rental_hours"))
    return {
        "total_revenue": float(_total(daily, "total_revenue")),
        "rentals": rentals,
        "rental_hours": hours,
        # Every valid rental has a known pickup location, so the locations' hours cover every rental.
        "average_rental_hours": hours / rentals if rentals else None,
    }


def history_trend(
    earlier: Sequence[Mapping[str, Any]],
    batch_id: str,
    today: Mapping[str, float],
    findings: Sequence[str],
    rule: UnusualDataRule,
    usage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """This batch's row counts beside the recorded counts of the batches before it (oldest first).

    With the run's `usage`, each batch's cost and time as well.
    """
    recent = list(earlier)[-rule.window :]
    series = []
    for name, seen in sorted(today.items()):
        past = [float(run["counts"][name]) for run in recent if name in run.get("counts", {})]
        series.append(
            {
                "series": name,
                "this_batch": seen,
                "earlier_mean": statistics.fmean(past) if past else None,
                "earlier_range": f"{min(past):,.0f} to {max(past):,.0f}" if past else None,
            }
        )
    runs = [
        {"batch_id": run["batch_id"], "rows": run["counts"].get(RENTAL_TRANSACTIONS.name)}
        | {key: run[key] for key in RUN_TOTALS if key in run}
        for run in recent
        if RENTAL_TRANSACTIONS.name in run.get("counts", {})
    ]
    runs.append(
        {"batch_id": batch_id, "rows": today.get(RENTAL_TRANSACTIONS.name)}
        | (run_totals(usage) if usage is not None else {})
    )
    return {
        "earlier_batches": len(earlier),
        "window": rule.window,
        "min_history": rule.min_history,
        "judged": len(recent) >= rule.min_history,
        "findings": list(findings),
        "series": series,
        "runs": runs,
    }


# What the history keeps of each run's usage, for the trend of cost and time per batch.
RUN_TOTALS = ("cost", "seconds")


def run_totals(usage: Mapping[str, Any] | None) -> dict[str, float | None]:
    """A run's total cost (None unless every item was priced) and its time over the stages measured."""
    if not usage:
        return {"cost": None, "seconds": None}
    cost = usage.get("cost") or {}
    stages = usage.get("stages") or []
    return {
        "cost": cost.get("total") if cost.get("complete") else None,
        "seconds": round(sum(s["seconds"] for s in stages), 3) if stages else None,
    }


def build_summary(
    batch_id: str,
    outcome: Mapping[str, Any],
    insights: Mapping[str, Rows],
    files: Sequence[Mapping[str, Any]],
    trend: Mapping[str, Any] | None = None,
    currency: str = H.DEFAULT_CURRENCY,
    now: dt.datetime | None = None,
    run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a person or a program needs to know about one batch, as JSON-ready data.

    `trend` is `history_trend`'s result where a run history is kept (in AWS); None says there is none. `run` is
    the run's time per stage and, in AWS, its cost (`publish.run_usage`, `local_run`).
    """
    vehicle_types = _plain_rows(insights.get("most_rented_vehicle_types", []))
    return {
        "batch_id": batch_id,
        "status": "succeeded" if outcome.get("succeeded") else "failed",
        "message": outcome.get("message", ""),
        "generated_at": (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds"),
        "currency": currency,
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
        "rows_read": dict(outcome.get("rows_read", {})),
        "identical_rows_collapsed": dict(outcome.get("identical_rows_collapsed", {})),
        "history_transactions": outcome.get("history_transactions", 0),
        "headline": _headline(insights),
        "top_locations": _plain_rows(insights.get("top_revenue_locations", [])),
        "most_rented_vehicle_type": vehicle_types[0] if vehicle_types else None,
        "vehicle_types": vehicle_types,
        "top_spenders": _plain_rows(insights.get("top_spending_users", [])),
        "daily_revenue": _plain_rows(insights.get("daily_revenue_trend", [])),
        "location_utilization": _plain_rows(insights.get("location_utilization", []))[:10],
        "trend": dict(trend) if trend is not None else None,
        "run": dict(run) if run is not None else None,
    }


# A line of the summary is for a person: a value of the data as long as a file (a location named with 400,000
# characters) is cut, so the notification stays far inside SNS's 256 KiB and the workflow's state.
SUMMARY_LINE_CHARS = 1000


def _short(line: str) -> str:
    return line if len(line) <= SUMMARY_LINE_CHARS else line[: SUMMARY_LINE_CHARS - 1] + "…"


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """A short text summary for a terminal or a notification; users appear by id only, never by name.

    Each line is `printable`: whatever the data holds, no value starts a line; and at most SUMMARY_LINE_CHARS
    long.
    """
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
    # A run goes on without files of no dataset (a README, a `rental_transactions_part2.csv`); it says so.
    set_aside = [f for f in summary.get("files", []) if not f.get("accepted") and not f.get("dataset")]
    if set_aside:
        lines.append(
            "Set aside, not part of the batch: "
            + ", ".join(f"{str(f.get('file')).rsplit('/', 1)[-1]} ({f.get('code')})" for f in set_aside)
        )
    collapsed = {d: n for d, n in summary.get("identical_rows_collapsed", {}).items() if n}
    if collapsed:
        lines.append(
            "Identical rows counted once (contract, section 2): "
            + ", ".join(
                f"{dataset} {count:,} of {summary['rows_read'][dataset]:,} read" for dataset, count in collapsed.items()
            )
        )
    lines += _usage_lines(summary.get("run"))
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
    # A value's own line break or control character would forge a line of the summary, or act on the terminal.
    return [_short(printable(line)) for line in lines]


# A Step Functions error cause can be 32 KiB; the report and the notification keep its start.
MAX_CAUSE_CHARS = 2000


@dataclass(frozen=True)
class Failure:
    """Where a failed run stopped, as the workflow notes it: the state, the error's name and its cause."""

    state: str
    error: str
    cause: str

    @classmethod
    def from_event(cls, failure: Mapping[str, Any]) -> Failure:
        """From the workflow's `failure` object; control characters in the cause become spaces."""
        cause = " ".join(str(failure.get("cause") or "").split())
        if len(cause) > MAX_CAUSE_CHARS:
            cause = cause[:MAX_CAUSE_CHARS] + " ..."
        return cls(
            " ".join(str(failure.get("state", "")).split()), " ".join(str(failure.get("error", "")).split()), cause
        )

    def describe(self) -> str:
        """One sentence for the report and the notification."""
        return f"the run failed in the state '{self.state}': {self.error}: {self.cause}".rstrip(": ")

    def alert(self, batch_id: str, report_uri: str) -> str:
        """The workflow's failure alert, on one line: no line break or control character of a cause starts a line."""
        return printable(
            f"Car-rental batch {batch_id} failed in the state: {self.state}. Error: {self.error}. "
            f"Cause: {self.cause}. The report: {report_uri}."
        )


def failed_outcome(outcome: Mapping[str, Any], failure: Failure) -> dict[str, Any]:
    """The job's outcome, if the Spark step wrote one, marked failed and saying where the run stopped."""
    said = str(outcome.get("message") or "")
    if outcome.get("succeeded"):
        said = f"the Spark job succeeded ({said}), but {failure.describe()}" if said else failure.describe()
    elif not said or failure.state != "Run the Spark job":
        said = "; ".join(part for part in (said, failure.describe()) if part)
    return {**outcome, "succeeded": False, "message": said}


def notification_lines(summary: Mapping[str, Any]) -> list[str]:
    """`summary_lines`, or the status and message alone if they cannot be written out: a notification goes."""
    try:
        return summary_lines(summary)
    except Exception as error:  # the notification is the last thing a run sends: a fault of it is told, not raised
        head = (
            f"Batch {summary.get('batch_id')}: {str(summary.get('status', 'failed')).upper()}. {summary.get('message')}"
        )
        return [printable(head), printable(f"(the summary could not be written out: {type(error).__name__}: {error})")]


def _usage_lines(run: Mapping[str, Any] | None) -> list[str]:
    if not run:
        return []
    lines = []
    stages = run.get("stages") or []
    if stages:
        lines.append(
            "Time per stage: "
            + ", ".join(f"{s['stage']} {_duration(s['seconds'])}" for s in stages)
            + f" ({_duration(sum(s['seconds'] for s in stages))} in all)"
        )
    cost = run.get("cost")
    if cost:
        if cost.get("total") is None:
            lines.append(
                "Cost of the run: not priced (" + ("; ".join(cost.get("unknown") or []) or "no price table") + ")"
            )
        else:
            lines.append(
                f"Cost of the run: {cost['currency']} {cost['total']:.4f}"
                + ("" if cost.get("complete") else " and more (some items could not be priced)")
                + f", at the list prices of {cost['prices_date']}"
            )
    return lines


def _duration(seconds: float) -> str:
    """`42 s`, `12 min 5 s`, `1 h 3 min`."""
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _cols(*keys: str) -> list[H.Column]:
    return H.columns(keys, LABELS, KINDS)


def _ran(summary: Mapping[str, Any]) -> bool:
    """Whether the Spark job read the batch (a batch the gate stopped has no row counts)."""
    return bool(summary.get("rows_read")) or bool(summary["transactions"]["rows"])


def _total_rejected(summary: Mapping[str, Any]) -> int:
    return sum(summary["transactions"]["rejected_by_reason"].values())


def _headline_tiles(summary: Mapping[str, Any], fmt: H.Formats) -> str:
    tx, head = summary["transactions"], summary.get("headline") or {}
    read, collapsed = summary.get("rows_read", {}), summary.get("identical_rows_collapsed", {})
    limit = tx.get("max_reject_rate")
    over = limit is not None and tx["reject_rate"] > limit
    items = []
    if summary["status"] == "succeeded":
        items.append(
            H.Tile(
                "Total revenue",
                fmt.money(head.get("total_revenue")),
                f"{fmt.integer(head.get('rentals'))} rentals, all batches",
            )
        )
    items += [
        H.Tile("Rentals accepted", fmt.integer(tx["accepted"]), f"this batch, of {fmt.integer(tx['rows'])} rows"),
        H.Tile(
            "Reject rate",
            fmt.percent(tx["reject_rate"], 2),
            f"{fmt.integer(_total_rejected(summary))} rows rejected; limit {fmt.percent(limit, 2)}",
            "bad" if over else "good",
        ),
    ]
    if summary["status"] == "succeeded":
        hours = head.get("average_rental_hours")
        items.append(
            H.Tile(
                "Average rental duration",
                H.MISSING if hours is None else f"{fmt.number(hours)} hours",
                "per rental, all batches",
            )
        )
    items += [
        H.Tile("Rows read", fmt.integer(sum(read.values())), f"in {len(read)} files, identical rows included"),
        H.Tile("Identical rows collapsed", fmt.integer(sum(collapsed.values())), "counted once before the rules"),
    ]
    return H.tiles(items)


def _datasets_table(summary: Mapping[str, Any], fmt: H.Formats) -> str:
    tx = summary["transactions"]
    rows = []
    for name in DATASETS:
        if name == RENTAL_TRANSACTIONS.name:
            distinct, rejected = tx["rows"], _total_rejected(summary)
        else:
            distinct = summary["reference_rows"].get(name)
            rejected = sum(summary["reference_rejected"].get(name, {}).values())
        rows.append(
            {
                "dataset": name,
                "rows_read": summary["rows_read"].get(name),
                "collapsed": summary["identical_rows_collapsed"].get(name),
                "distinct": distinct,
                "rejected": rejected,
                "kept": None if distinct is None else distinct - rejected,
            }
        )
    return H.table(rows, _cols("dataset", "rows_read", "collapsed", "distinct", "rejected", "kept"), fmt)


def _reasons_table(summary: Mapping[str, Any], fmt: H.Formats) -> str:
    tx = summary["transactions"]
    ordered = sorted(tx["rejected_by_reason"].items(), key=lambda item: (-item[1], item[0]))
    rows = [
        {"reason": H.humanize(code), "code": code, "rows": n, "share": n / tx["rows"] if tx["rows"] else None}
        for code, n in ordered
    ]
    parts = [
        H.table(rows, _cols("reason", "code", "rows", "share"), fmt, "No rental rows were rejected."),
    ]
    reference = [
        {"dataset": name, "reason": H.humanize(code), "code": code, "rows": n}
        for name, reasons in sorted(summary["reference_rejected"].items())
        for code, n in sorted(reasons.items())
    ]
    if reference:
        parts += [
            "<h3>Rejected rows of the reference files</h3>",
            H.table(reference, _cols("dataset", "reason", "code", "rows"), fmt),
        ]
    return "".join(parts)


def _file_rows(files: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for file in files:
        # An accepted file's warnings already count its rows that break a rule, per reason.
        detail = "; ".join(str(w) for w in file.get("warnings") or []) if file.get("accepted") else file.get("reason")
        rows.append(
            {
                H.TONE: "" if file.get("accepted") else "bad",
                "file": str(file.get("file") or "").replace("\\", "/").rsplit("/", 1)[-1],
                "dataset": file.get("dataset"),
                "verdict": "Accepted" if file.get("accepted") else "Rejected",
                "rows": file.get("rows") if file.get("accepted") else None,
                "detail": detail,
                "line": None if file.get("accepted") else file.get("line"),
                "column": None if file.get("accepted") else file.get("column"),
                "examples": "; ".join(str(e) for e in file.get("examples") or []) or None,
            }
        )
    return rows


def _missing_datasets(files: Sequence[Mapping[str, Any]]) -> list[str]:
    present = {file.get("dataset") for file in files}
    return [name for name in DATASETS if name not in present] if files else []


def _files_section(summary: Mapping[str, Any], fmt: H.Formats) -> str:
    files = summary["files"]
    if not files:
        return H.section("Input files", H.paragraph("The file verdicts were not available to the report.", "empty"))
    rows = _file_rows(files)
    cols = ["file", "dataset", "verdict", "rows", "detail"]
    if any(not f.get("accepted") for f in files):
        cols += ["line", "column", "examples"]
    parts = [H.table(rows, _cols(*cols), fmt)]
    missing = _missing_datasets(files)
    if missing:
        parts.append(H.paragraph("No file arrived for: " + ", ".join(missing) + ".", "warn"))
    return H.section("Input files", *parts, intro="The upload gate's verdict on each file of the batch.")


def _mismatches(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    read = summary.get("rows_read", {})
    return [
        {"dataset": f["dataset"], "gate_rows": f.get("rows"), "rows_read": read[f["dataset"]]}
        for f in summary["files"]
        if f.get("accepted") and f.get("dataset") in read and f.get("rows") != read[f["dataset"]]
    ]


def next_steps(summary: Mapping[str, Any]) -> list[str]:
    """What a person does about a failed batch, from what the summary shows went wrong."""
    batch, tx = summary["batch_id"], summary["transactions"]
    files = summary["files"]
    rejected = [str(f.get("file")) for f in files if not f.get("accepted")]
    missing = _missing_datasets(files)
    limit = tx.get("max_reject_rate")
    if rejected or missing or not _ran(summary):
        steps = []
        if rejected:
            steps.append(
                "Read each rejected file's reason, line and examples in the table below; the file is kept as it "
                f"arrived in a folder of its own under `quarantine/{batch}/`, with a `.report.json` beside it."
            )
        if missing:
            steps.append("Send the missing files: " + ", ".join(f"{name}.csv" for name in missing) + ".")
        steps.append(
            f"Correct the files at their source and send the batch again under the same batch id ({batch}): "
            f"in AWS upload each corrected file to `raw/{batch}/`, and the run starts once all four are accepted; "
            "locally run `rental-analytics run car-rental` on the corrected folder."
        )
        return steps
    if limit is not None and tx["reject_rate"] > limit:
        return [
            f"{tx['rows'] - tx['accepted']:,} of {tx['rows']:,} rental rows were rejected "
            f"({tx['reject_rate']:.2%}), above the limit of {limit:.2%}; `processed/` and `analytics/` were not "
            "changed, so the analytics of earlier batches stand.",
            f"The rejected rows, each with its reason, are in `quarantine/{batch}/rows/`; below they are counted "
            "by reason.",
            "Fix the rows at their source and send the batch again. If this share of bad rows is expected, run it "
            "again with a higher limit (`--max-reject-rate` locally, the stack's `MaxRejectRate` in AWS).",
        ]
    if _mismatches(summary):
        return [
            "The Spark job read a different number of rows than the upload gate counted (see the table below); "
            "nothing was changed.",
            "Compare the staged files with what the gate accepted, then re-run the batch from the staged input "
            "(docs/runbook.md, 'Re-run a batch').",
        ]
    return [
        "Read the failure message above and the job's log (docs/runbook.md, 'A batch failed'), then re-run the batch."
    ]


def _trend_section(summary: Mapping[str, Any], fmt: H.Formats) -> str:
    trend = summary.get("trend")
    title = "Against earlier batches"
    if trend is None:
        return H.section(
            title,
            H.paragraph(
                "No run history here: the row counts of earlier batches are kept by the report step in AWS "
                "(reports/_history/row_counts.json), not by a local run.",
                "empty",
            ),
        )
    parts = []
    if trend["findings"]:
        parts.append(H.bullets(["Unusual row counts: " + f for f in trend["findings"]], css="warn"))
    elif trend["judged"]:
        parts.append(H.paragraph("Every row count is within the usual range of the earlier batches."))
    else:
        parts.append(
            H.paragraph(
                f"{trend['earlier_batches']} earlier batch(es) on record; the counts are judged once "
                f"{trend['min_history']} exist.",
                "empty",
            )
        )
    parts.append(_per_batch_chart("Rental rows per batch", trend["runs"], "rows", H.INTEGER, fmt, "Rental rows"))
    parts.append(H.table(trend["series"], _cols("series", "this_batch", "earlier_mean", "earlier_range"), fmt))
    intro = f"This batch's row counts beside the last {trend['window']} batches' (reports/_history/row_counts.json)."
    return H.section(title, *parts, intro=intro)


def _usd(value: Any) -> str:
    # Cents hide an Athena query's cost: four decimals show it.
    return H.MISSING if value is None else f"${value:,.4f}"


def _usage_section(summary: Mapping[str, Any], fmt: H.Formats) -> str:
    """Time per stage, what the run cost, and both per batch across the history."""
    run, title = summary.get("run"), "Time and cost"
    if not run:
        return H.section(title, H.paragraph("The run's stage times were not recorded.", "empty"))
    stages = [
        {"stage": s["stage"], "duration": _duration(s["seconds"]), "seconds": s["seconds"]} for s in run["stages"]
    ]
    parts = [
        H.table(
            stages,
            [H.Column("stage", "Stage"), H.Column("duration", "Time"), H.Column("seconds", "Seconds", H.NUMBER)],
            fmt,
            "No stage times: the run's history could not be read.",
        )
    ]
    cost = run.get("cost")
    if cost is None:
        parts.append(H.paragraph("A local run costs no cloud resources: no cost is shown.", "empty"))
    else:
        rows = [
            {
                "item": i["item"],
                "quantity": f"{i['quantity']:,.0f}" if i["unit"] == "bytes scanned" else f"{i['quantity']:,.4f}",
                "unit": i["unit"],
                "cost": _usd(i["cost"]),
            }
            for i in cost["items"]
        ]
        rows.append({"item": "Total", "quantity": None, "unit": None, "cost": _usd(cost["total"])})
        cols = [
            H.Column("item", "Item"),
            H.Column("quantity", "Used"),
            H.Column("unit", "Unit"),
            H.Column("cost", "Cost"),
        ]
        parts.append(H.table(rows, cols, fmt))
        note = (
            f"Priced at the list prices of {cost['prices_date']} held by the stack (USD); Spot hours at the stack's "
            "share of the On-Demand price."
            if cost.get("prices_date")
            else "The stack holds no price table: the usage is shown without prices."
        )
        if cost.get("unknown"):
            note += " Not read: " + "; ".join(cost["unknown"]) + "."
        if cost.get("not_counted"):
            note += " Not counted: " + "; ".join(cost["not_counted"]) + "."
        parts.append(H.paragraph(note, "" if cost.get("complete") else "warn"))
    runs = (summary.get("trend") or {}).get("runs") or []
    parts.append(_per_batch_chart("Minutes per batch", runs, "seconds", H.NUMBER, fmt, "Minutes", 1 / 60))
    parts.append(_per_batch_chart("Cost per batch in USD", runs, "cost", H.NUMBER, H.Formats("USD"), "USD"))
    intro = {
        "local": "This run on this machine, stage by stage.",
        "cluster": "Queue, cluster start, Spark, cluster stop, crawler, queries and report, from the execution's "
        "history and the cluster's timeline; the cost from the cluster's instances, the crawls and the queries.",
        "serverless": "Queue, job start, Spark, crawler, queries and report, from the execution's history and the "
        "job run; the cost from the job run's billed resources, the crawls and the queries.",
    }.get(str(run.get("mode")), "")
    return H.section(title, *parts, intro=intro)


def _per_batch_chart(
    title: str, runs: Rows, key: str, kind: str, fmt: H.Formats, y_title: str, scale: float = 1.0
) -> str:
    """A line of one figure per batch that has it, this batch last in orange; nothing below two batches."""
    known = [r for r in runs if r.get(key) is not None]
    if len(known) < 2:
        return ""
    return H.line_chart(
        f"{title} (this batch last, in orange)",
        [r["batch_id"] for r in known],
        [r[key] * scale for r in known],
        kind,
        fmt,
        x_title="Batch",
        y_title=y_title,
        highlight_last=True,
    )


def _input_folder(files: Sequence[Mapping[str, Any]]) -> str:
    folders = {str(f.get("file") or "").replace("\\", "/").rpartition("/")[0] for f in files}
    return folders.pop() or "." if len(folders) == 1 else H.MISSING


def _facts_section(summary: Mapping[str, Any], fmt: H.Formats) -> str:
    tx = summary["transactions"]
    pairs = [
        ("Batch", str(summary["batch_id"])),
        ("Status", summary["status"].upper()),
        ("Report written", str(summary.get("generated_at") or H.MISSING)),
        ("Input folder", _input_folder(summary["files"])),
        ("Files judged by the gate", fmt.integer(len(summary["files"]))),
        ("Reject-rate limit", fmt.percent(tx.get("max_reject_rate"), 2)),
        ("Currency of amounts", str(summary.get("currency", H.DEFAULT_CURRENCY))),
    ]
    if summary["status"] == "succeeded":  # a failed batch changes no history, and its outcome counts none
        pairs.append(("Rentals in the processed history", fmt.integer(summary.get("history_transactions"))))
    return H.section("Run facts", H.facts(pairs))


def _analytics_sections(summary: Mapping[str, Any], fmt: H.Formats) -> list[str]:
    daily, locations = summary["daily_revenue"], summary["top_locations"]
    types, utilization = summary["vehicle_types"], summary["location_utilization"]
    currency = summary.get("currency", H.DEFAULT_CURRENCY)
    return [
        H.section(
            "Revenue per day",
            H.line_chart(
                f"Revenue per rental date ({currency})",
                [str(r["rental_date"]) for r in daily],
                [r["total_revenue"] for r in daily],
                H.MONEY,
                fmt,
                x_title="Rental date",
                y_title=f"Revenue ({currency})",
            ),
            intro="All accepted rentals so far, this batch included, by the day they started.",
        ),
        H.section(
            "Top locations by revenue",
            H.bar_chart(
                f"Revenue per pickup location ({currency})",
                [str(r.get("location_name") or r["location_id"]) for r in locations],
                [r["total_revenue"] for r in locations],
                H.MONEY,
                fmt,
                axis_title=f"Revenue ({currency})",
            ),
            H.table(
                locations,
                _cols("location_name", "location_id", "city", "state", "total_revenue", "transaction_count"),
                fmt,
            ),
        ),
        H.section(
            "Location utilization",
            H.table(
                utilization,
                _cols("location_name", "location_id", "utilization_rate", "total_rental_hours", "unique_vehicles"),
                fmt,
                "No utilization figures: the rentals span no time.",
            ),
            intro="Rented hours over the hours the location's vehicles could have been rented in the rental window; "
            f"the {TOP_TABLE} best used locations.",
        ),
        H.section(
            "Vehicle types by rentals",
            H.bar_chart(
                "Rentals per vehicle type",
                [str(r.get("vehicle_type") or "(unknown)") for r in types],
                [r["rental_count"] for r in types],
                H.INTEGER,
                fmt,
                axis_title="Rentals",
            ),
            H.table(types, _cols("vehicle_type", "rental_count", "total_revenue", "unique_vehicles"), fmt),
        ),
        H.section(
            "Top spenders",
            H.table(
                summary["top_spenders"],
                _cols("user_id", "first_name", "last_name", "total_spent", "rental_count"),
                fmt,
            ),
        ),
    ]


def _verdict(summary: Mapping[str, Any], fmt: H.Formats) -> str:
    """The banner's sentence: a failure's own message, or the batch in formatted figures."""
    tx = summary["transactions"]
    if summary["status"] != "succeeded":
        return str(summary["message"])
    return (
        f"{fmt.integer(tx['accepted'])} of {fmt.integer(tx['rows'])} rental rows accepted; the analytics now cover "
        f"{fmt.integer(summary.get('history_transactions'))} rentals."
    )


def render_html(summary: Mapping[str, Any]) -> str:
    """The human report: one self-contained page that needs no network."""
    fmt = H.Formats(str(summary.get("currency") or H.DEFAULT_CURRENCY))
    batch, failed = str(summary["batch_id"]), summary["status"] != "succeeded"
    body = [H.banner(summary["status"], _verdict(summary, fmt))]
    if failed:
        body.append(H.section("What to do next", H.bullets(next_steps(summary), ordered=True, css="next")))
        body.append(_files_section(summary, fmt))
        mismatched = _mismatches(summary)
        if mismatched:
            body.append(
                H.section(
                    "Rows counted twice, differently",
                    H.table(mismatched, _cols("dataset", "gate_rows", "rows_read"), fmt),
                )
            )
    if _ran(summary):
        body.insert(1, _headline_tiles(summary, fmt))
    if not failed:
        body += _analytics_sections(summary, fmt)
    else:
        body.append(
            H.paragraph(
                "No analytics for this batch: a failed batch changes neither processed/ nor analytics/.", "empty"
            )
        )
    if _ran(summary):
        body.append(
            H.section(
                "Rejected rows",
                _reasons_table(summary, fmt),
                "<h3>Rows per file</h3>",
                _datasets_table(summary, fmt),
                intro="Each rejected row counts under the first rule it breaks; identical rows count once.",
            )
        )
    body.append(_usage_section(summary, fmt))
    body.append(_trend_section(summary, fmt))
    if not failed:
        body.append(_files_section(summary, fmt))
    body.append(_facts_section(summary, fmt))
    return H.page(
        f"Car-rental batch {batch}",
        "Rental Marketplace Analytics · car-rental report",
        body,
        f"Written {summary.get('generated_at') or ''} by rental-analytics. Amounts in {fmt.currency}. "
        "Revenue, durations and rankings cover every accepted rental so far; counts of rows cover this batch.",
    )


def safe_html(summary: Mapping[str, Any]) -> str:
    """The report page; if drawing it fails, a plain page with the batch's status and message and why.

    A run that ended, however, has its page: a fault in drawing the figures must not leave it without one.
    """
    try:
        return render_html(summary)
    except Exception as error:  # the page is the last thing a run leaves: any fault of it is shown, not raised
        said = f"{summary.get('message', '')} (the full report could not be drawn: {type(error).__name__}: {error})"
        status = str(summary.get("status", "failed"))
        return H.page(f"Car-rental batch {summary.get('batch_id')}", "car-rental report", [H.banner(status, said)], "")


def write_reports(report_dir: Path, summary: Mapping[str, Any]) -> Path:
    """Write summary.json and report.html; returns the HTML path."""
    return H.write_report(report_dir, summary, safe_html(summary))
