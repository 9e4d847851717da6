"""EMR step entry point for one car-rental batch: argparse, then the core job; exit 1 when it fails."""

from __future__ import annotations

import argparse
import sys

from rental_analytics.car_rental.contract import DEFAULT_MAX_REJECT_RATE, MANIFEST_NAME
from rental_analytics.car_rental.job import BatchJob, held_to_the_gate, manifest_verdicts, run_batch
from rental_analytics.platform import hadoop_fs
from rental_analytics.platform.progress import job_log
from rental_analytics.platform.spark_session import job_session


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
    """Run the batch on the cluster's session, holding it to the row counts of the gate's manifest if any."""
    job = parse_args(argv)
    say = job_log("car-rental")
    spark = job_session(f"car-rental-{job.batch_id}")
    manifest = hadoop_fs.read_text(spark, f"{job.input_dir.rstrip('/')}/{MANIFEST_NAME}")
    if manifest is not None:
        job = held_to_the_gate(job, manifest_verdicts(manifest))
    outcome = run_batch(spark, job, progress=say)
    say(outcome.message)
    return 0 if outcome.succeeded else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
