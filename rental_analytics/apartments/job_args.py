"""Command-line arguments shared by the apartments entry scripts and the local command."""

from __future__ import annotations

import argparse
from datetime import date, datetime, timezone

# Where a local run finds the source database when no URL is given (its password may be in ..._PASSWORD).
MYSQL_ENV = "RENTAL_ANALYTICS_MYSQL_URL"
WAREHOUSE_ENV = "RENTAL_ANALYTICS_WAREHOUSE_URL"


def load_date(text: str) -> date:
    """A `YYYY-MM-DD` argument."""
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"load date must be YYYY-MM-DD, not {text!r}") from error


def add_zone_arguments(parser: argparse.ArgumentParser) -> None:
    """--output (the data root) and --load-date (today in UTC unless given)."""
    parser.add_argument("--output", required=True, help="data root: a folder, or s3://bucket")
    parser.add_argument(
        "--load-date",
        type=load_date,
        default=datetime.now(timezone.utc).date(),
        help="the run's load date, YYYY-MM-DD (default: today in UTC)",
    )


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the marketplace database is: a URL locally, a Secrets Manager secret in AWS."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--mysql-url", help="mysql://USER[:PASSWORD]@HOST:PORT/DATABASE (or RENTAL_ANALYTICS_MYSQL_URL)")
    where.add_argument("--source-secret-id", help="Secrets Manager secret with username, password, host, port, dbname")
