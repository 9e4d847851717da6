"""Glue job RDS_TO_S3_job: extract the marketplace tables over JDBC into the raw zone for one load date."""

from __future__ import annotations

import argparse
import sys

from rental_analytics.apartments.db_url import resolve_database_url
from rental_analytics.apartments.job_args import MYSQL_ENV, job_parser, parse_job_args
from rental_analytics.apartments.jobs import Zones, run_extract
from rental_analytics.platform.progress import job_log
from rental_analytics.platform.spark_session import job_session


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The job's arguments; Glue adds its own (--JOB_NAME and others), which are ignored."""
    parser = job_parser(__doc__, source=True)
    parser.add_argument("--full", action="store_true", help="reload viewings and bookings from the first id")
    parser.add_argument("--partitions", type=int, default=8, help="parallel JDBC reads per table")
    return parse_job_args(parser, argv)


def main(argv: list[str]) -> int:
    """Extract every table; exit 0 when all landed."""
    args = parse_args(argv)
    say = job_log("extract")
    secrets = None
    if args.source_secret_id:
        from rental_analytics.platform.aws import clients

        secrets = clients().secretsmanager
    source = resolve_database_url("mysql", args.mysql_url, args.source_secret_id, MYSQL_ENV, secrets)
    say(f"from {source} for load date {args.load_date}")  # str() leaves the password out
    spark = job_session(f"apartments-extract-{args.load_date}")
    run_extract(spark, source, Zones(args.output), args.load_date, args.full, args.partitions, progress=say)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
