"""The warehouse: versioned DDL, the staged load of the curated model, and the KPI refresh, in two SQL dialects.

Amazon Redshift is the warehouse in AWS and PostgreSQL stands in for it locally. The SQL files are written
once; the few spellings that differ (date arithmetic, and how a stage is bulk-loaded) live here and nowhere
else. Every statement runs over a JDBC connection that Spark's JVM opens, so the same code runs in a Glue
job and on a laptop: Redshift COPYs the curated Parquet from S3 itself, PostgreSQL takes it as CSV through
the driver's COPY FROM STDIN.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from rental_analytics.apartments.contract import CURATED_SCHEMAS, ModelOrderError
from rental_analytics.apartments.db_url import DatabaseUrl
from rental_analytics.platform.config import ConfigError

SCHEMA = "analytics"
KEYS = {
    "dim_locations": "location_key",
    "dim_users": "user_key",
    "dim_apartments": "apartment_key",
    "fact_bookings": "booking_key",
    "fact_viewings": "viewing_key",
}
KPI_TABLES = (
    "kpi_average_listing_price",
    "kpi_occupancy_rate",
    "kpi_popular_locations",
    "kpi_top_listings",
    "kpi_bookings_per_user",
    "kpi_average_booking_duration",
    "kpi_repeat_customer_rate",
)
_MACRO = re.compile(r"\b(DAYS_BETWEEN|ADD_DAYS|ADD_MONTHS)\(")


def _sql(folder: str, name: str) -> str:
    return resources.files("rental_analytics.apartments").joinpath("sql", folder, name).read_text(encoding="utf-8")


def statements(script: str) -> list[str]:
    """A script's statements: comments dropped, split at the semicolons that end lines."""
    text = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*\n", text + "\n") if part.strip()]


def _arguments(text: str, start: int) -> tuple[list[str], int]:
    """The comma-separated arguments of the call whose "(" ends at `start`, and the index after its ")"."""
    depth = 0
    current: list[str] = []
    parts: list[str] = []
    for index in range(start, len(text)):
        char = text[index]
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                parts.append("".join(current).strip())
                return parts, index + 1
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    raise ValueError("unbalanced parentheses in SQL")


@dataclass(frozen=True)
class Dialect:
    """How one warehouse spells date arithmetic."""

    name: str
    days_between: str  # {a} and {b}: whole days from a to b
    add_days: str  # {a} date, {b} days
    add_months: str  # {a} date, {b} months

    def render(self, sql: str) -> str:
        """Expand DAYS_BETWEEN(a, b), ADD_DAYS(d, n) and ADD_MONTHS(d, n), arguments first."""
        templates = {"DAYS_BETWEEN": self.days_between, "ADD_DAYS": self.add_days, "ADD_MONTHS": self.add_months}
        parts, position = [], 0
        # One pass, left to right: an expansion is never scanned again (Redshift's spelling reuses a name).
        while match := _MACRO.search(sql, position):
            (a, b), end = _arguments(sql, match.end())
            expanded = templates[match.group(1)].format(a=self.render(a), b=self.render(b))
            parts += [sql[position : match.start()], expanded]
            position = end
        return "".join([*parts, sql[position:]])


POSTGRESQL = Dialect(
    "postgresql",
    days_between="(({b}) - ({a}))",
    add_days="(({a}) + ({b}))",
    add_months="CAST(({a}) + ({b}) * INTERVAL '1 month' AS DATE)",
)
REDSHIFT = Dialect(
    "redshift",
    days_between="DATEDIFF(day, {a}, {b})",
    add_days="CAST(DATEADD(day, {b}, {a}) AS DATE)",
    add_months="CAST(ADD_MONTHS({a}, {b}) AS DATE)",
)
DIALECTS = {d.name: d for d in (POSTGRESQL, REDSHIFT)}


class Connection:
    """A JDBC connection opened by Spark's JVM, with statements run inside explicit transactions."""

    def __init__(self, java_connection: Any, dialect: Dialect, statement_timeout: int) -> None:
        self._connection = java_connection
        self.dialect = dialect
        self.statement_timeout = statement_timeout  # seconds; the driver cancels a statement that runs longer
        self._connection.setAutoCommit(False)

    def _statement(self) -> Any:
        statement = self._connection.createStatement()
        statement.setQueryTimeout(self.statement_timeout)
        return statement

    @property
    def java(self) -> Any:
        """The driver's own connection, for what JDBC has no call for (PostgreSQL's COPY API)."""
        return self._connection

    def execute(self, sql: str) -> int:
        """Run one statement (macros expanded); the count of rows it changed."""
        statement = self._statement()
        try:
            statement.execute(self.dialect.render(sql))
            return int(statement.getUpdateCount())
        finally:
            statement.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a query, as Python values."""
        statement = self._statement()
        try:
            result = statement.executeQuery(self.dialect.render(sql))
            width = result.getMetaData().getColumnCount()
            rows = []
            while result.next():
                rows.append(tuple(_python(result.getObject(i + 1)) for i in range(width)))
            return rows
        finally:
            statement.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Commit when the block ends, roll back when it raises."""
        try:
            yield self
            self._connection.commit()
        except BaseException:
            self._connection.rollback()
            raise

    def close(self) -> None:
        """Close the JDBC connection."""
        self._connection.close()


def _python(value: Any) -> Any:
    # Py4J hands numbers, strings and BigDecimal (as Decimal) over as Python values; dates and timestamps
    # arrive as Java objects, read here as their text.
    if value is None or isinstance(value, (int, float, str, bool, Decimal)):
        return value
    return str(value.toString())


@contextmanager
def connect(spark: SparkSession, url: DatabaseUrl, dialect: Dialect) -> Iterator[Connection]:
    """Open a connection with the driver Spark has, the way Spark's own JDBC source does."""
    jvm: Any = spark.sparkContext._jvm  # py4j gateway attributes are untyped
    options = url.jdbc_options()
    jvm.org.apache.spark.sql.execution.datasources.jdbc.DriverRegistry.register(options["driver"])
    properties = jvm.java.util.Properties()
    properties.setProperty("user", options["user"])
    properties.setProperty("password", options["password"])
    java = jvm.java.sql.DriverManager.getConnection(options["url"], properties)
    connection = Connection(java, dialect, url.timeouts.statement)
    try:
        yield connection
    finally:
        connection.close()


MIGRATIONS = ("001_model.sql", "002_kpis.sql")


_CREATES = re.compile(rf"CREATE TABLE IF NOT EXISTS {SCHEMA}\.(\w+)", re.IGNORECASE)


def migrate(connection: Connection) -> list[str]:
    """Apply the DDL files not applied yet, each in its own transaction; returns the ones applied now.

    A file whose tables are not all there (one dropped by hand) is applied again: every statement in these
    files creates only what is missing, and `schema_migrations` alone would keep the table gone for good.
    """
    with connection.transaction():
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations "
            "(version VARCHAR(64) PRIMARY KEY, applied_at TIMESTAMP)"
        )
    applied = {row[0] for row in connection.query(f"SELECT version FROM {SCHEMA}.schema_migrations")}
    present = {
        str(row[0]).lower()
        for row in connection.query(f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{SCHEMA}'")
    }
    done = []
    for name in MIGRATIONS:
        script = _sql("warehouse", name)
        if name in applied and {t.lower() for t in _CREATES.findall(script)} <= present:
            continue
        with connection.transaction():
            for statement in statements(script):
                connection.execute(statement)
            connection.execute(f"DELETE FROM {SCHEMA}.schema_migrations WHERE version = '{name}'")
            connection.execute(f"INSERT INTO {SCHEMA}.schema_migrations VALUES ('{name}', CURRENT_TIMESTAMP)")
        done.append(name)
    return done


def _columns(table: str) -> list[str]:
    return [part.split()[0] for part in CURATED_SCHEMAS[table].split(", ")]


def _merge(connection: Connection, table: str) -> None:
    """Make the table equal its stage: drop rows the stage no longer has, replace and add the others by key."""
    key, stage, target = KEYS[table], f"{SCHEMA}.stage_{table}", f"{SCHEMA}.{table}"
    columns = ", ".join(_columns(table))
    connection.execute(f"DELETE FROM {target} WHERE {key} NOT IN (SELECT {key} FROM {stage})")
    connection.execute(f"DELETE FROM {target} USING {stage} s WHERE {target}.{key} = s.{key}")
    connection.execute(f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {stage}")


_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_S3_PATH = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[\w!.*()/=-]*)?")


def redshift_copy_sql(table: str, parquet_path: str, role_arn: str) -> str:
    """Redshift's COPY of one curated table's Parquet folder into its stage, read with the namespace's role.

    COPY maps Parquet columns to the stage's by position, and the stage is LIKE the table, whose DDL lists the
    columns in the curated schema's order. Files whose names start with "_" (Spark's _SUCCESS) are skipped.
    """
    if not _S3_PATH.fullmatch(parquet_path):
        raise ConfigError(f"Redshift loads from S3 only: {parquet_path!r} is not an s3://bucket/prefix path")
    if not _ROLE_ARN.fullmatch(role_arn):
        raise ConfigError(f"the COPY role must be an IAM role ARN, not {role_arn!r}")
    # The trailing slash keeps a prefix from also matching a sibling folder that starts with the same name.
    return f"COPY {SCHEMA}.stage_{table} FROM '{parquet_path.rstrip('/')}/' IAM_ROLE '{role_arn}' FORMAT AS PARQUET"


# Spark's CSV as PostgreSQL's COPY reads it: quotes doubled, NULL as an empty field and an empty string as "",
# whitespace kept, timestamps in a form PostgreSQL parses without a zone (the session is UTC).
_CSV_FOR_POSTGRESQL = {
    "header": "false",
    "quote": '"',
    "escape": '"',
    "nullValue": "",
    "emptyValue": '""',
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
    "dateFormat": "yyyy-MM-dd",
    "timestampFormat": "yyyy-MM-dd HH:mm:ss.SSSSSS",
    "encoding": "UTF-8",
    "lineSep": "\n",
}


def _copy_into_postgresql(spark: SparkSession, connection: Connection, table: str, parquet_path: str) -> None:
    """PostgreSQL's bulk path: the Parquet as CSV files on this machine, streamed by the JVM into COPY FROM STDIN.

    It runs on the connection's own transaction, which Spark's JDBC writer (a connection per partition,
    each committing) cannot.
    """
    copy_api = connection.java.getCopyAPI()  # the PostgreSQL driver's CopyManager
    jvm: Any = spark.sparkContext._jvm  # py4j gateway attributes are untyped
    sql = f"COPY {SCHEMA}.stage_{table} ({', '.join(_columns(table))}) FROM STDIN WITH (FORMAT csv)"
    with tempfile.TemporaryDirectory(prefix=f"stage-{table}-") as folder:
        spark.read.parquet(parquet_path).write.options(**_CSV_FOR_POSTGRESQL).mode("overwrite").csv(
            Path(folder).as_uri()
        )
        for part in sorted(Path(folder).glob("part-*")):
            stream = jvm.java.io.FileInputStream(str(part))
            try:
                copy_api.copyIn(sql, stream)
            finally:
                stream.close()


@dataclass(frozen=True)
class Loaded:
    """What one load committed: the rows of each model table and of each KPI table."""

    tables: dict[str, int]
    kpis: dict[str, int]


def last_load_date(connection: Connection) -> date | None:
    """The latest load date in `load_history`: no older one may be loaded over it."""
    [(latest,)] = connection.query(f"SELECT MAX(load_date) FROM {SCHEMA}.load_history")
    return None if latest is None else date.fromisoformat(str(latest)[:10])


def load_model(
    spark: SparkSession,
    connection: Connection,
    curated: dict[str, str],
    load_date: date,
    copy_role_arn: str | None = None,
    rewind: bool = False,
) -> Loaded:
    """glue_to_redshift_job: load every curated table, merge them, refresh the KPIs and record the load date.

    All of it is one transaction: the warehouse holds the model, its KPIs and its `load_history` of one load
    date or of the one before, never a mix. The stage holds each table whole, so loading the same load date
    again leaves the same rows. A load date older than the last one loaded is refused unless `rewind` (the
    undo of the last load date). Redshift COPYs from S3 with `copy_role_arn`, a role attached to its
    namespace or cluster.
    """
    if connection.dialect is REDSHIFT and not copy_role_arn:
        raise ConfigError("loading Redshift needs the IAM role its COPY reads S3 with (--copy-role-arn)")
    counts = {table: spark.read.parquet(path).count() for table, path in curated.items()}
    day = f"DATE '{load_date.isoformat()}'"
    with connection.transaction():
        latest = last_load_date(connection)
        if latest is not None and latest > load_date and not rewind:
            raise ModelOrderError(f"the warehouse already holds load date {latest}; {load_date} is older")
        for table, path in curated.items():
            connection.execute(f"DELETE FROM {SCHEMA}.stage_{table}")
            if connection.dialect is REDSHIFT:
                connection.execute(redshift_copy_sql(table, path, str(copy_role_arn)))
            else:
                _copy_into_postgresql(spark, connection, table, path)
        for table in curated:
            _merge(connection, table)
        # Later dates are there only when rewinding: the model no longer holds them.
        connection.execute(f"DELETE FROM {SCHEMA}.load_history WHERE load_date >= {day}")
        for table, rows in counts.items():
            record = f"({day}, '{table}', {rows}, CURRENT_TIMESTAMP)"
            connection.execute(f"INSERT INTO {SCHEMA}.load_history VALUES {record}")
        for table in curated:
            connection.execute(f"DELETE FROM {SCHEMA}.stage_{table}")
        kpis = _refresh_kpis(connection)
    return Loaded(counts, kpis)


def _refresh_kpis(connection: Connection) -> dict[str, int]:
    counts = {}
    for table in KPI_TABLES:
        connection.execute(f"DELETE FROM {SCHEMA}.{table}")
        # Each file is an INSERT that names its columns: a KPI table whose columns are in another order, or
        # that was widened by hand, still gets each value in its own column.
        [insert] = statements(_sql("kpis", f"{table}.sql"))
        counts[table] = connection.execute(insert)
    return counts


def refresh_kpis(connection: Connection) -> dict[str, int]:
    """Recompute every KPI table from the model, all in one transaction; returns the rows per table.

    The load already does this in its own transaction; kpi_job repeats it, which changes nothing.
    """
    with connection.transaction():
        return _refresh_kpis(connection)
