"""The car-rental subcommands: demo, generate, validate, run (contract, section 5) and the AWS commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rental_analytics.car_rental.contract import BATCH_ID_PATTERN, DEFAULT_MAX_REJECT_RATE
from rental_analytics.car_rental.gate.files import BatchVerdict, FileVerdict, validate_file, validate_folder
from rental_analytics.car_rental.generate import GeneratorOptions, generate_car_rental
from rental_analytics.car_rental.verify import Step
from rental_analytics.platform.aws import AwsClients, stack_outputs
from rental_analytics.platform.command_line import (
    EXIT_FAILED,
    EXIT_OK,
    CommandGroups,
    positive,
    rate,
)
from rental_analytics.platform.config import ConfigError
from rental_analytics.platform.errors import CHECKS, StageError
from rental_analytics.platform.preflight import aws_ready, spark_can_start, spark_path, usable_folder
from rental_analytics.platform.progress import Progress
from rental_analytics.platform.run_lock import holding_run_lock
from rental_analytics.platform.text import printable

PIPELINE = "car-rental"


def register(groups: CommandGroups) -> None:
    """Add the car-rental subcommands to the one command line."""
    demo = groups.top.add_parser("demo", help="generate a sample batch and run the whole pipeline locally")
    demo.add_argument("--output", type=Path, default=Path("demo-output"))
    demo.add_argument("--rentals", type=positive, default=20_000)
    demo.set_defaults(handler=_demo)

    generate = groups.generate.add_parser(PIPELINE, help="write a batch of the four CSV files")
    generate.add_argument("--output", type=Path, required=True)
    generate.add_argument("--rentals", type=positive, default=10_000)
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--locations", type=positive, default=300)
    generate.add_argument("--bad-share", type=rate, default=0.0, help="share of rentals made to break each row rule")
    generate.add_argument("--gzip", action="store_true", help="write .csv.gz files")
    generate.set_defaults(handler=_generate)

    validate = groups.validate.add_parser(PIPELINE, help="the upload gate on a file or a batch folder")
    validate.add_argument("path", type=Path)
    validate.add_argument("--json", action="store_true", help="print the machine-readable verdict")
    validate.set_defaults(handler=_validate)

    run = groups.run.add_parser(PIPELINE, help="run the pipeline on a batch folder")
    run.add_argument("--input", type=Path, required=True)
    run.add_argument("--output", type=Path, required=True)
    run.add_argument("--batch-id", help="defaults to the input folder's name")
    run.add_argument("--max-reject-rate", type=rate, default=DEFAULT_MAX_REJECT_RATE)
    run.set_defaults(handler=_run)

    verify = groups.top.add_parser("verify-deployment", help="check a deployed stack end to end with a sample batch")
    verify.add_argument("--stack", required=True, help="the CloudFormation stack name")
    verify.add_argument("--region", help="default: your AWS configuration's")
    verify.add_argument("--timeout-minutes", type=positive, default=60, help="how long to wait for the workflow")
    verify.set_defaults(handler=_verify_deployment)

    network = groups.top.add_parser(
        "check-network", help="before deploying: the EMR subnet, its VPC and EMR's security groups are tagged for EMR"
    )
    network.add_argument("--subnet", required=True, help="the subnet you will pass as SubnetId")
    network.add_argument("--region", help="default: your AWS configuration's")
    network.set_defaults(handler=_check_network)

    redrive = groups.top.add_parser(
        "redrive-uploads", help="send the upload events the gate failed three times through it again"
    )
    redrive.add_argument("--stack", required=True, help="the CloudFormation stack name")
    redrive.add_argument("--region", help="default: your AWS configuration's")
    redrive.set_defaults(handler=_redrive_uploads)


def _generate(args: argparse.Namespace) -> int:
    usable_folder(args.output, "--output")
    options = GeneratorOptions(
        rentals=args.rentals,
        seed=args.seed,
        locations=args.locations,
        bad_share=args.bad_share,
        compress=args.gzip,
    )
    started = time.monotonic()

    def report(done: int, total: int) -> None:
        if total >= 500_000:
            print(f"  {done:,}/{total:,} rentals", file=sys.stderr, flush=True)

    batch = generate_car_rental(args.output, options, report)
    rows = ", ".join(f"{name} {count:,}" for name, count in batch.rows.items())
    print(f"Wrote {args.output} in {time.monotonic() - started:.1f}s: {rows}")
    if batch.broken_on_purpose:
        print("Rows broken on purpose: " + ", ".join(f"{k} {v}" for k, v in batch.broken_on_purpose.items()))
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    path: Path = args.path
    if path.is_dir():
        verdict = validate_folder(path)
    elif path.is_file():
        single = validate_file(path)
        verdict = BatchVerdict((single,), ())
    else:
        raise StageError(CHECKS, f"{path} does not exist", "give a CSV file or a batch folder")
    files: tuple[FileVerdict, ...] = verdict.files
    if args.json:
        print(
            json.dumps(
                {
                    "accepted": verdict.accepted,
                    "files": [f.as_dict() for f in files],
                    "missing_datasets": list(verdict.missing),
                },
                indent=2,
            )
        )
    else:
        for line in [f.describe() for f in files if f.accepted] + verdict.problems():
            print(printable(line))  # a file name with a line break or an escape never forges a line
    return EXIT_OK if verdict.accepted else EXIT_FAILED


def _run(args: argparse.Namespace) -> int:
    return _run_batch(args.input, args.output, args.batch_id, args.max_reject_rate, args.progress)


def _run_batch(
    input_dir: Path, output_dir: Path, batch_id: str | None, max_reject_rate: float, progress: Progress
) -> int:
    from rental_analytics.car_rental.local_run import print_result, run_car_rental

    if not input_dir.is_dir():
        raise StageError(CHECKS, f"--input {input_dir} is not a folder", "give the batch folder of the four CSV files")
    spark_path(input_dir, "--input")
    batch = input_dir.resolve().name if batch_id is None else batch_id  # an empty --batch-id is a mistake too
    if not BATCH_ID_PATTERN.fullmatch(batch):
        raise StageError(CHECKS, f"batch id {batch!r} must match {BATCH_ID_PATTERN.pattern}", "pass --batch-id")
    spark_can_start(output_dir)
    result = run_car_rental(input_dir, output_dir, batch, max_reject_rate, progress)
    print_result(result, sys.stdout)
    return EXIT_OK if result.succeeded else EXIT_FAILED


def _aws(region: str | None) -> AwsClients:
    from rental_analytics.platform.aws import clients

    aws_ready(region)
    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
    return clients()


def _verify_deployment(args: argparse.Namespace) -> int:
    from rental_analytics.car_rental.verify import Waiting, verify_deployment

    steps = verify_deployment(
        args.stack, _aws(args.region), args.progress, Waiting(finish_seconds=args.timeout_minutes * 60.0)
    )
    return _print_steps(steps, "steps")


def _print_steps(steps: list[Step], what: str) -> int:
    for step in steps:
        print(step.line())
    passed = all(step.passed for step in steps)
    print(f"{'PASSED' if passed else 'FAILED'}: {sum(s.passed for s in steps)} of {len(steps)} {what}")
    return EXIT_OK if passed else EXIT_FAILED


def _check_network(args: argparse.Namespace) -> int:
    from rental_analytics.car_rental.network import check_network

    return _print_steps(check_network(_aws(args.region).ec2, args.subnet), "checks")


def _redrive_uploads(args: argparse.Namespace) -> int:
    from rental_analytics.car_rental.gate.redrive import redrive_failed_uploads

    aws = _aws(args.region)
    outputs = stack_outputs(aws.cloudformation, args.stack)
    missing = [key for key in ("UploadGateFunctionName", "GateFailedEventsQueueUrl") if key not in outputs]
    if missing:
        raise ConfigError(f"stack {args.stack} has no output {', '.join(missing)}: deploy this version of the stack")

    def deliver(event: Mapping[str, Any]) -> None:
        aws.awslambda.invoke(
            FunctionName=outputs["UploadGateFunctionName"], InvocationType="Event", Payload=json.dumps(event).encode()
        )

    result = redrive_failed_uploads(aws.sqs, outputs["GateFailedEventsQueueUrl"], deliver, args.progress)
    for line in result.left:
        print(line)
    print(f"Sent {result.delivered} event(s) through the upload gate again; {len(result.left)} left in the queue")
    return EXIT_OK if not result.left else EXIT_FAILED


def _demo(args: argparse.Namespace) -> int:
    batch_dir = usable_folder(args.output, "--output") / "incoming" / "demo-batch"
    # The sample batch is written under --output: under the run lock, or it could rewrite the input of
    # another demo that is running there.
    with holding_run_lock(args.output, "batch demo-batch", args.progress):
        print(f"Generating a sample batch of {args.rentals:,} rentals in {batch_dir}")
        generate_car_rental(batch_dir, GeneratorOptions(rentals=args.rentals, bad_share=0.0005))
        code = _run_batch(batch_dir, args.output, "demo-batch", DEFAULT_MAX_REJECT_RATE, args.progress)
    insights = args.output / "reports" / "demo-batch" / "insights"
    if code == EXIT_OK:
        print(f"Insight query results (CSV): {insights.resolve()}")
    return code
