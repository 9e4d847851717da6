"""Glue job glue_to_redshift_job: apply the DDL, bulk-load the curated model and merge it in one transaction."""

from __future__ import annotations

import argparse
import sys

from rental_analytics.apartments import warehouse
from rental_analytics.apartments.contract import CURATED_SCHEMAS, ModelOrderError
from rental_analytics.apartments.job_args import job_parser, parse_job_args, warehouse_url
from rental_analytics.apartments.jobs import Zones, check_warehouse_agrees, finish_publications
from rental_analytics.platform.command_line import EXIT_USAGE
from rental_analytics.platform.progress import job_log
from rental_analytics.platform.spark_session import job_session


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The job's arguments."""
    parser = job_parser(__doc__, warehouse=True)
    parser.add_argument(
        "--copy-role-arn",
        help="IAM role attached to the Redshift namespace or cluster that its COPY reads the curated zone with",
    )
    return parse_job_args(parser, argv)


def main(argv: list[str]) -> int:
    """Load the curated model as of the load date, with its KPIs; exit 1 when the warehouse holds a later date."""
    args = parse_args(argv)
    say = job_log("load")
    if args.dialect == "redshift" and not args.copy_role_arn:
        # Checked before Spark starts and the secret is read: the load could not finish without it.
        say("Redshift loads with COPY: pass --copy-role-arn, the IAM role attached to its namespace or cluster")
        return EXIT_USAGE
    target = warehouse_url(args)
    say(f"into {target} for load date {args.load_date}")  # str() leaves the password out
    spark = job_session(f"apartments-load-{args.load_date}")
    zones = Zones(args.output)
    finish_publications(spark, zones, say)  # a transform stopped half way is finished before it is loaded
    with warehouse.connect(spark, target, warehouse.DIALECTS[args.dialect]) as connection:
        applied = warehouse.migrate(connection)
        say(f"DDL applied: {', '.join(applied) or 'none new'}")
        curated = {name: zones.curated(name) for name in CURATED_SCHEMAS}
        try:
            check_warehouse_agrees(spark, zones, warehouse.last_load_date(connection), args.load_date)
            loaded = warehouse.load_model(spark, connection, curated, args.load_date, args.copy_role_arn)
        except ModelOrderError as error:
            say(f"{error}")
            return 1
    say("loaded " + ", ".join(f"{table} {rows:,}" for table, rows in loaded.tables.items()))
    say("refreshed " + ", ".join(f"{table} {rows:,}" for table, rows in loaded.kpis.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
