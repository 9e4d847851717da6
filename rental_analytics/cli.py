"""The `rental-analytics` command line (contract, section 5): demo, generate, validate and run."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from rental_analytics.apartments.job_args import MYSQL_ENV, WAREHOUSE_ENV, load_date
from rental_analytics.config import ConfigError
from rental_analytics.contract import BATCH_ID_PATTERN, DEFAULT_MAX_REJECT_RATE
from rental_analytics.db_url import resolve_database_url
from rental_analytics.gate import BatchVerdict, FileVerdict, validate_file, validate_folder
from rental_analytics.generate import GeneratorOptions, generate_car_rental
from rental_analytics.progress import StageProgress

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rental-analytics", description="Rental marketplace analytics.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="generate a sample batch and run the whole pipeline locally")
    demo.add_argument("--output", type=Path, default=Path("demo-output"))
    demo.add_argument("--rentals", type=_positive, default=20_000)

    generators = commands.add_parser("generate", help="make realistic sample data").add_subparsers(
        dest="pipeline", required=True
    )
    _add_generate_apartments(generators)
    generate = generators.add_parser("car-rental", help="write a batch of the four CSV files")
    generate.add_argument("--output", type=Path, required=True)
    generate.add_argument("--rentals", type=_positive, default=10_000)
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--locations", type=_positive, default=300)
    generate.add_argument("--bad-share", type=_rate, default=0.0, help="share of rentals made to break each row rule")
    generate.add_argument("--gzip", action="store_true", help="write .csv.gz files")

    validate = commands.add_parser("validate", help="run the upload gate on a file or a batch folder")
    validate.add_argument("pipeline", choices=["car-rental"])
    validate.add_argument("path", type=Path)
    validate.add_argument("--json", action="store_true", help="print the machine-readable verdict")

    verify = commands.add_parser("verify-deployment", help="check a deployed stack end to end with a sample batch")
    verify.add_argument("--stack", required=True, help="the CloudFormation stack name")
    verify.add_argument("--region", help="default: your AWS configuration's")
    verify.add_argument("--timeout-minutes", type=_positive, default=60, help="how long to wait for the workflow")

    runners = commands.add_parser("run", help="run a pipeline locally").add_subparsers(dest="pipeline", required=True)
    apartments = runners.add_parser("apartments", help="extract, quality, transform, load and KPIs for one load date")
    apartments.add_argument("--mysql-url", help=f"the source (or ${MYSQL_ENV})")
    apartments.add_argument(
        "--warehouse-url", help=f"postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE (or ${WAREHOUSE_ENV})"
    )
    apartments.add_argument("--output", type=Path, required=True, help="folder of the raw, processed and curated zones")
    apartments.add_argument("--load-date", type=load_date, help="YYYY-MM-DD (default: today in UTC)")
    run = runners.add_parser("car-rental", help="run the pipeline on a batch folder")
    run.add_argument("--input", type=Path, required=True)
    run.add_argument("--output", type=Path, required=True)
    run.add_argument("--batch-id", help="defaults to the input folder's name")
    run.add_argument("--max-reject-rate", type=_rate, default=DEFAULT_MAX_REJECT_RATE)
    return parser


def _add_generate_apartments(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    apartments = commands.add_parser("apartments", help="create and fill the marketplace's MySQL tables")
    apartments.add_argument("--mysql-url", help=f"mysql://USER[:PASSWORD]@HOST:PORT/DATABASE (or ${MYSQL_ENV})")
    apartments.add_argument("--apartments", type=_positive, default=1_000)
    apartments.add_argument("--bookings", type=_positive, help="default: three per apartment")
    apartments.add_argument("--viewings", type=_positive, help="default: six per apartment")
    apartments.add_argument("--seed", type=int, default=7)
    apartments.add_argument(
        "--bad-share", type=_rate, default=0.0005, help="scales the rows made to break the quality rules"
    )
    apartments.add_argument("--as-of", type=load_date, help="the marketplace's today, YYYY-MM-DD (default: today)")
    apartments.add_argument(
        "--change",
        action="store_true",
        help="instead of creating, move the existing data on by one load date (changes for SCD2, new rows)",
    )


def _generate_apartments(args: argparse.Namespace) -> int:
    from rental_analytics.apartments.generate import (
        ChangeOptions,
        MarketplaceOptions,
        change_marketplace,
        generate_marketplace,
    )

    url = resolve_database_url("mysql", args.mysql_url, None, MYSQL_ENV)
    as_of = args.as_of or datetime.now(timezone.utc).date()
    if args.change:
        generated = change_marketplace(url, ChangeOptions(seed=args.seed, as_of=as_of))
        print(f"Changed {url}: " + ", ".join(f"{k} {v:,}" for k, v in generated.rows.items()))
        return EXIT_OK
    options = MarketplaceOptions(
        apartments=args.apartments,
        bookings=args.bookings,
        viewings=args.viewings,
        seed=args.seed,
        as_of=as_of,
        bad_share=args.bad_share,
    )
    generated = generate_marketplace(url, options)
    print(f"Wrote {url}: " + ", ".join(f"{k} {v:,}" for k, v in generated.rows.items()))
    if generated.broken:
        print("Rows broken on purpose: " + ", ".join(f"{k} {v}" for k, v in sorted(generated.broken.items())))
    return EXIT_OK


def _generate(args: argparse.Namespace) -> int:
    if args.pipeline == "apartments":
        return _generate_apartments(args)
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
        print(f"rental-analytics: {path} does not exist", file=sys.stderr)
        return EXIT_USAGE
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
            print(line)
    return EXIT_OK if verdict.accepted else EXIT_FAILED


def _run(input_dir: Path, output_dir: Path, batch_id: str | None, max_reject_rate: float) -> int:
    from rental_analytics.local_run import print_result, run_car_rental

    if not input_dir.is_dir():
        print(f"rental-analytics: --input {input_dir} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    batch = batch_id or input_dir.resolve().name
    if not BATCH_ID_PATTERN.fullmatch(batch):
        print(
            f"rental-analytics: batch id {batch!r} must match {BATCH_ID_PATTERN.pattern}; pass --batch-id",
            file=sys.stderr,
        )
        return EXIT_USAGE
    result = run_car_rental(input_dir, output_dir, batch, max_reject_rate, StageProgress())
    print_result(result, sys.stdout)
    return EXIT_OK if result.succeeded else EXIT_FAILED


def _verify_deployment(args: argparse.Namespace) -> int:
    import os

    from rental_analytics.aws import clients
    from rental_analytics.verify import Waiting, verify_deployment

    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = args.region
    steps = verify_deployment(
        args.stack, clients(), StageProgress(), Waiting(finish_seconds=args.timeout_minutes * 60.0)
    )
    for step in steps:
        print(step.line())
    passed = all(step.passed for step in steps)
    print(f"{'PASSED' if passed else 'FAILED'}: {sum(s.passed for s in steps)} of {len(steps)} steps")
    return EXIT_OK if passed else EXIT_FAILED


def _run_apartments(args: argparse.Namespace) -> int:
    from rental_analytics.apartments.local_run import run_apartments

    source = resolve_database_url("mysql", args.mysql_url, None, MYSQL_ENV)
    target = resolve_database_url("postgresql", args.warehouse_url, None, WAREHOUSE_ENV)
    day = args.load_date or datetime.now(timezone.utc).date()
    result = run_apartments(source, target, args.output, day, StageProgress())
    for line in result.lines:
        print(line)
    if not result.succeeded:
        print(f"FAILED in {result.failed_stage}: {result.message}")
        return EXIT_FAILED
    print(f"SUCCEEDED: {result.message}")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    batch_dir = args.output / "incoming" / "demo-batch"
    print(f"Generating a sample batch of {args.rentals:,} rentals in {batch_dir}")
    generate_car_rental(batch_dir, GeneratorOptions(rentals=args.rentals, bad_share=0.0005))
    code = _run(batch_dir, args.output, "demo-batch", DEFAULT_MAX_REJECT_RATE)
    insights = args.output / "reports" / "demo-batch" / "insights"
    if code == EXIT_OK:
        print(f"Insight query results (CSV): {insights.resolve()}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the installed `rental-analytics` command."""
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except ConfigError as error:  # a missing or malformed setting is a usage error, whichever command met it
        print(f"rental-analytics: {error}", file=sys.stderr)
        return EXIT_USAGE


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "generate":
        return _generate(args)
    if args.command == "validate":
        return _validate(args)
    if args.command == "verify-deployment":
        return _verify_deployment(args)
    if args.command == "run" and args.pipeline == "apartments":
        return _run_apartments(args)
    if args.command == "run":
        return _run(args.input, args.output, args.batch_id, args.max_reject_rate)
    return _demo(args)


if __name__ == "__main__":
    sys.exit(main())
