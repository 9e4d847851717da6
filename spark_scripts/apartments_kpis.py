"""Glue job kpi_job: recompute the KPI tables from the warehouse's model, in one transaction."""

from __future__ import annotations

import argparse
import sys

from rental_analytics.apartments import warehouse
from rental_analytics.apartments.job_args import job_parser, parse_job_args, warehouse_url
from rental_analytics.platform.progress import job_log
from rental_analytics.platform.spark_session import job_session


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The job's arguments."""
    return parse_job_args(job_parser(__doc__, warehouse=True), argv)


def main(argv: list[str]) -> int:
    """Refresh every KPI table."""
    args = parse_args(argv)
    say = job_log("kpis")
    spark = job_session(f"apartments-kpis-{args.load_date}")
    with warehouse.connect(spark, warehouse_url(args), warehouse.DIALECTS[args.dialect]) as connection:
        refreshed = warehouse.refresh_kpis(connection)
    say("refreshed " + ", ".join(f"{table} {rows:,}" for table, rows in refreshed.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
