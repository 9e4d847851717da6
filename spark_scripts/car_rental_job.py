"""EMR step entry point for one car-rental batch: argparse, then the core job; exit 1 when it fails."""

from __future__ import annotations

import argparse
import sys

from rental_analytics.car_rental.job import BatchJob, run_batch
from rental_analytics.contract import DEFAULT_MAX_REJECT_RATE
from rental_analytics.progress import job_log
from rental_analytics.spark_session import job_session


def parse_args(argv: list[str]) -> BatchJob:
    """The step's arguments, as the workflow passes them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True, help="the batch folder, e.g. s3://bucket/raw/2024-06-01/")
    parser.add_argument("--output", required=True, help="the data root holding processed/ and analytics/")
    parser.add_argument("--batch-id", required=True)
    parser.add_argument("--max-reject-rate", type=float, default=DEFAULT_MAX_REJECT_RATE)
    args = parser.parse_args(argv)
    return BatchJob(args.input, args.output, args.batch_id, args.max_reject_rate)


def main(argv: list[str]) -> int:
    """Run the batch on the cluster's session."""
    job = parse_args(argv)
    say = job_log("car-rental")
    outcome = run_batch(job_session(f"car-rental-{job.batch_id}"), job, progress=say)
    say(outcome.message)
    return 0 if outcome.succeeded else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
