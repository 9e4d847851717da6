"""Insight queries: Athena SQL files, run locally by DuckDB over the analytics Parquet with the same text."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from rental_analytics.contract import ANALYTICS_SCHEMAS, INSIGHT_QUERIES


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
            files = (analytics_dir / table).as_posix() + "/*.parquet"
            connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{files}')")
        for name in INSIGHT_QUERIES:
            sql = query_text(name)
            target = (results_dir / f"{name}.csv").as_posix()
            # Athena quotes every field of its CSV results; the copy does the same.
            connection.execute(f"COPY ({sql}) TO '{target}' (FORMAT CSV, HEADER, FORCE_QUOTE *)")
            relation = connection.execute(sql)
            columns = [d[0] for d in relation.description]
            rows[name] = [dict(zip(columns, values)) for values in relation.fetchall()]
    return rows
