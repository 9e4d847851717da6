"""The apartments subcommands: generate the source database and run the pipeline for one load date."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from rental_analytics.apartments.contract import SOURCE_TABLES
from rental_analytics.apartments.db_url import DatabaseUrl, check_login, resolve_database_url
from rental_analytics.apartments.job_args import MYSQL_ENV, WAREHOUSE_ENV, load_date
from rental_analytics.platform.command_line import EXIT_FAILED, EXIT_OK, CommandGroups, positive, rate
from rental_analytics.platform.preflight import spark_can_start

PIPELINE = "apartments"


def register(groups: CommandGroups) -> None:
    """Add the apartments subcommands to the one command line."""
    generate = groups.generate.add_parser(PIPELINE, help="create and fill the marketplace's MySQL tables")
    generate.add_argument("--mysql-url", help=f"mysql://USER[:PASSWORD]@HOST:PORT/DATABASE (or ${MYSQL_ENV})")
    generate.add_argument("--apartments", type=positive, default=1_000)
    generate.add_argument("--bookings", type=positive, help="default: three per apartment")
    generate.add_argument("--viewings", type=positive, help="default: six per apartment")
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument(
        "--bad-share", type=rate, default=0.0005, help="scales the rows made to break the quality rules"
    )
    generate.add_argument("--as-of", type=load_date, help="the marketplace's today, YYYY-MM-DD (default: today)")
    generate.add_argument(
        "--change",
        action="store_true",
        help="instead of creating, move the existing data on by one load date (changes for SCD2, new rows)",
    )
    generate.set_defaults(handler=_generate)

    run = groups.run.add_parser(PIPELINE, help="extract, quality, transform, load and KPIs for one load date")
    run.add_argument("--mysql-url", help=f"the source (or ${MYSQL_ENV})")
    run.add_argument("--warehouse-url", help=f"postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE (or ${WAREHOUSE_ENV})")
    run.add_argument("--output", type=Path, required=True, help="folder of the raw, processed and curated zones")
    run.add_argument("--load-date", type=load_date, help="YYYY-MM-DD (default: today in UTC)")
    run.add_argument("--full", action="store_true", help="reload viewings and bookings from the first id")
    run.add_argument(
        "--allow-empty-apartments",
        action="store_true",
        help="accept an apartments extract without rows (it closes every apartment); refused otherwise",
    )
    run.set_defaults(handler=_run)

    undo = groups.top.add_parser(
        "undo-apartments", help="take back the last applied load date of `run apartments` (warehouse and curated zone)"
    )
    undo.add_argument("--warehouse-url", help=f"postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE (or ${WAREHOUSE_ENV})")
    undo.add_argument("--output", type=Path, required=True, help="the folder `run apartments` was given")
    undo.set_defaults(handler=_undo)


def _generate(args: argparse.Namespace) -> int:
    from rental_analytics.apartments.generate import (
        ChangeOptions,
        MarketplaceOptions,
        change_marketplace,
        generate_marketplace,
    )

    url = _source(args)
    check_login(url, "--mysql-url", SOURCE_TABLES if args.change else ())
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


def _source(args: argparse.Namespace) -> DatabaseUrl:
    return resolve_database_url("mysql", args.mysql_url, None, MYSQL_ENV, flag="--mysql-url")


def _run(args: argparse.Namespace) -> int:
    from rental_analytics.apartments.local_run import run_apartments
    from rental_analytics.apartments.quality import QualityRules

    source = _source(args)
    target = resolve_database_url("postgresql", args.warehouse_url, None, WAREHOUSE_ENV, flag="--warehouse-url")
    day = args.load_date or datetime.now(timezone.utc).date()
    spark_can_start(args.output, (source.driver_class, target.driver_class))
    check_login(source, "--mysql-url", SOURCE_TABLES)
    check_login(target, "--warehouse-url")
    rules = QualityRules(allow_empty_apartments=args.allow_empty_apartments)
    result = run_apartments(source, target, args.output, day, args.progress, rules, full=args.full)
    for line in result.lines:
        print(line)
    if not result.succeeded:
        print(f"FAILED in {result.failed_stage}: {result.message}")
        return EXIT_FAILED
    print(f"SUCCEEDED: {result.message}")
    return EXIT_OK


def _undo(args: argparse.Namespace) -> int:
    from rental_analytics.apartments.contract import ModelOrderError
    from rental_analytics.apartments.local_run import undo_last_load_date

    target = resolve_database_url("postgresql", args.warehouse_url, None, WAREHOUSE_ENV, flag="--warehouse-url")
    spark_can_start(args.output, (target.driver_class,))
    check_login(target, "--warehouse-url")
    try:
        print(f"SUCCEEDED: {undo_last_load_date(target, args.output, args.progress)}")
    except ModelOrderError as error:
        print(f"FAILED in undo: {error}")
        return EXIT_FAILED
    return EXIT_OK
