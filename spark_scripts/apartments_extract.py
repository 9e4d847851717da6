"""Glue job RDS_TO_S3_job: extract the marketplace tables over JDBC into the raw zone for one load date."""

from __future__ import annotations

import argparse
import sys

from rental_analytics.apartments.extract import require_driver
from rental_analytics.apartments.job_args import job_parser, parse_job_args, source_url
from rental_analytics.apartments.jobs import ModelOrderError, Zones, run_extract
from rental_analytics.platform.command_line import EXIT_USAGE
from rental_analytics.platform.errors import StageError
from rental_analytics.platform.progress import job_log
from rental_analytics.platform.spark_session import job_session

DRIVER_HINT = "pass --mysql-driver mysql-connector-j on Glue 5.0, or mariadb where libmariadb-java is installed"


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The job's arguments; Glue adds its own (--JOB_NAME and others), which are ignored."""
    parser = job_parser(__doc__, source=True)
    parser.add_argument("--full", action="store_true", help="reload viewings and bookings from the first id")
    parser.add_argument("--partitions", type=int, default=8, help="parallel JDBC reads per table")
    return parse_job_args(parser, argv)


def main(argv: list[str]) -> int:
    """Extract every table; exit 0 when all landed, 1 for a load date out of order, 2 without the driver asked for."""
    args = parse_args(argv)
    say = job_log("extract")
    source = source_url(args)
    say(f"from {source} with {source.driver_class} for load date {args.load_date}")  # str() leaves the password out
    spark = job_session(f"apartments-extract-{args.load_date}")
    try:
        require_driver(spark, source, DRIVER_HINT)
    except StageError as error:
        say(error.line())
        return EXIT_USAGE
    try:
        run_extract(spark, source, Zones(args.output), args.load_date, args.full, args.partitions, progress=say)
    except ModelOrderError as error:
        say(f"{error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
