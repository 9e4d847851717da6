"""Command-line arguments shared by the apartments entry scripts and the local command."""

from __future__ import annotations

import argparse
from datetime import date, datetime, timezone

from rental_analytics.apartments.db_url import DatabaseUrl, MySqlDriver, resolve_database_url

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
    # No default: the driver that exists depends on where the job runs (Glue 5.0 has Oracle's only), and a
    # wrong guess surfaces as a ClassNotFoundException deep inside Spark.
    parser.add_argument(
        "--mysql-driver",
        required=True,
        choices=[driver.value for driver in MySqlDriver],
        help="the Connector/J on the classpath: mysql-connector-j on Glue 5.0, mariadb locally (libmariadb-java)",
    )


def add_warehouse_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the warehouse is: a URL locally; in AWS a secret with the login and the endpoint as arguments."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--warehouse-url", help=f"postgresql:// or redshift:// URL (or {WAREHOUSE_ENV})")
    where.add_argument("--warehouse-secret-id", help="Secrets Manager secret with at least username and password")
    parser.add_argument("--warehouse-host", help="endpoint, when the secret does not hold it")
    parser.add_argument("--warehouse-port", type=int, help="port, when the secret does not hold it")
    parser.add_argument("--warehouse-database", help="database, when the secret does not hold it")
    parser.add_argument("--dialect", choices=["postgresql", "redshift"], default="redshift")


def source_url(args: argparse.Namespace) -> DatabaseUrl:
    """The source database the arguments name, to be read with the driver they name."""
    secrets = None
    if args.source_secret_id:
        from rental_analytics.platform.aws import clients

        secrets = clients().secretsmanager
    source = resolve_database_url("mysql", args.mysql_url, args.source_secret_id, MYSQL_ENV, secrets)
    return source.read_with(MySqlDriver(args.mysql_driver))


def warehouse_url(args: argparse.Namespace) -> DatabaseUrl:
    """The warehouse the arguments name; the secret is read with this process's AWS clients."""
    secrets = None
    if args.warehouse_secret_id:
        from rental_analytics.platform.aws import clients

        secrets = clients().secretsmanager
    known = {"host": args.warehouse_host, "port": args.warehouse_port, "dbname": args.warehouse_database}
    return resolve_database_url(
        args.dialect, args.warehouse_url, args.warehouse_secret_id, WAREHOUSE_ENV, secrets, **known
    )


def job_parser(description: str | None, source: bool = False, warehouse: bool = False) -> argparse.ArgumentParser:
    """The parser every apartments job starts from: the zones and load date, and the databases it reads."""
    parser = argparse.ArgumentParser(description=description)
    add_zone_arguments(parser)
    if source:
        add_source_arguments(parser)
    if warehouse:
        add_warehouse_arguments(parser)
    return parser


def parse_job_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse what the job knows; Glue adds arguments of its own (--JOB_NAME and others), which are ignored."""
    args, _ = parser.parse_known_args(argv)
    return args
