"""Glue job for data quality: check one load date, quarantine failing rows, fail the run on a breach."""

from __future__ import annotations

import argparse
import sys
import uuid

from rental_analytics.apartments.contract import (
    ACCURACY,
    COMPLETENESS,
    CONSISTENCY,
    DEFAULT_STATUSES,
    DEFAULT_THRESHOLDS,
)
from rental_analytics.apartments.job_args import job_parser, parse_job_args
from rental_analytics.apartments.jobs import ModelOrderError, Zones, publish_quality_metrics, run_quality
from rental_analytics.apartments.quality import QualityRules
from rental_analytics.platform.progress import job_log
from rental_analytics.platform.spark_session import job_session


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The job's arguments; thresholds default to the apartments contract's (section 2)."""
    parser = job_parser(__doc__)
    parser.add_argument("--run-id", help="names this run in dq_results (default: load date and a random suffix)")
    for metric in (COMPLETENESS, ACCURACY, CONSISTENCY):
        parser.add_argument(f"--min-{metric}", type=float, default=DEFAULT_THRESHOLDS[metric], metavar="SHARE")
    parser.add_argument("--statuses", default=",".join(DEFAULT_STATUSES), help="accepted apartment statuses")
    parser.add_argument(
        "--allow-empty-apartments", action="store_true", help="accept an apartments extract without rows"
    )
    parser.add_argument("--metrics-namespace", help="also publish the metrics to CloudWatch under this namespace")
    return parse_job_args(parser, argv)


def rules_from(args: argparse.Namespace) -> QualityRules:
    """The thresholds and statuses the arguments ask for."""
    thresholds = {metric: getattr(args, f"min_{metric}") for metric in (COMPLETENESS, ACCURACY, CONSISTENCY)}
    statuses = tuple(s.strip() for s in args.statuses.split(",") if s.strip())
    return QualityRules(thresholds, statuses, args.allow_empty_apartments)


def main(argv: list[str]) -> int:
    """Exit 0 when every metric meets its threshold, 1 on a breach or a load date out of order."""
    args = parse_args(argv)
    say = job_log("quality")
    run_id = args.run_id or f"{args.load_date}-{uuid.uuid4().hex[:8]}"
    spark = job_session(f"apartments-quality-{args.load_date}")
    try:
        outcome = run_quality(spark, Zones(args.output), args.load_date, run_id, rules_from(args), progress=say)
    except ModelOrderError as error:
        say(f"{error}")
        return 1
    say(f"{outcome.message}")
    if args.metrics_namespace:
        from rental_analytics.platform.aws import clients

        publish_quality_metrics(clients().cloudwatch, args.metrics_namespace, outcome)
    return 0 if outcome.passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
