"""Insight queries: Athena SQL files, run locally by DuckDB over the analytics Parquet with the same text."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from rental_analytics.car_rental.contract import ANALYTICS_SCHEMAS, INSIGHT_QUERIES

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (CSV injection).
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutral_cell(value: object) -> str:
    """A cell that a spreadsheet shows as the text it is: a would-be formula gets a leading apostrophe."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_LEADS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """CSV as Athena writes it (every field quoted, LF line ends), every cell neutralised for spreadsheets."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow([neutral_cell(c) for c in columns])
    writer.writerows([neutral_cell(v) for v in row] for row in rows)
    return buffer.getvalue()


def neutralised_csv(text: str) -> str:
    """An Athena result file made safe to open in a spreadsheet; otherwise unchanged."""
    header, *rows = list(csv.reader(io.StringIO(text))) or [[]]
    return csv_text(header, rows)


def query_text(name: str) -> str:
    """The SQL of one insight query, exactly as Athena runs it."""
    if name not in INSIGHT_QUERIES:
        raise KeyError(f"unknown insight query {name!r}")
    return resources.files(__name__).joinpath(f"{name}.sql").read_text(encoding="utf-8")


def run_insights(analytics_dir: Path, results_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Run every insight query over the analytics tables; write each result as CSV like Athena does."""
    import duckdb  # imported here so the upload gate, which never runs queries, does not pay for it

    results_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, Any]]] = {}
    with duckdb.connect() as connection:
        for table in ANALYTICS_SCHEMAS:
            # The path goes to DuckDB as a value, never into SQL text.
            connection.read_parquet((analytics_dir / table).as_posix() + "/*.parquet").create_view(table)
        for name in INSIGHT_QUERIES:
            relation = connection.execute(query_text(name))
            columns = [d[0] for d in relation.description]
            values = relation.fetchall()
            (results_dir / f"{name}.csv").write_text(csv_text(columns, values), encoding="utf-8")
            rows[name] = [dict(zip(columns, row)) for row in values]
    return rows
