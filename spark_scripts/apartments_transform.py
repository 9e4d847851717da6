"""Glue job for the dimensional model: apply one load date's checked data to the curated zone."""

from __future__ import annotations

import argparse
import sys

from rental_analytics.apartments.job_args import job_parser, parse_job_args
from rental_analytics.apartments.jobs import ModelOrderError, Zones, run_transform
from rental_analytics.platform.progress import job_log
from rental_analytics.platform.spark_session import job_session


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The job's arguments."""
    return parse_job_args(job_parser(__doc__), argv)


def main(argv: list[str]) -> int:
    """Exit 0 when the model is written, 1 when the load date cannot be applied."""
    args = parse_args(argv)
    say = job_log("transform")
    spark = job_session(f"apartments-transform-{args.load_date}")
    try:
        counts = run_transform(spark, Zones(args.output), args.load_date, progress=say)
    except ModelOrderError as error:
        say(f"{error}")
        return 1
    say(f"done: {', '.join(f'{name} {rows:,}' for name, rows in counts.items())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
