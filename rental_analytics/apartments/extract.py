"""Reading the source tables over JDBC in parallel key ranges, full or above the last loaded id."""

from __future__ import annotations

from datetime import date
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from rental_analytics.apartments.contract import APARTMENTS, INVALID_TEXT, LOCATION_CLASS, SourceTable
from rental_analytics.apartments.db_url import DatabaseUrl
from rental_analytics.platform.errors import CHECKS, DB_DRIVER, StageError, database_problem

# Rows fetched per round trip: the drivers' defaults (MariaDB: all rows at once) either crawl or flood memory.
FETCH_SIZE = 10_000


def require_driver(spark: SparkSession, url: DatabaseUrl, hint: str) -> None:
    """Load the URL's JDBC driver in Spark's JVM now: a runtime without it fails before any table is read.

    Otherwise the ClassNotFoundException comes from the first read, deep in a stack trace.
    """
    jvm: Any = spark.sparkContext._jvm  # py4j gateway attributes are untyped
    try:
        jvm.org.apache.spark.sql.execution.datasources.jdbc.DriverRegistry.register(url.driver_class)
    except Exception as error:
        problem = database_problem(error)
        if problem is None or problem[0] != DB_DRIVER:
            raise
        raise StageError(CHECKS, f"{DB_DRIVER} {url}: {url.driver_class} is not on the classpath", hint) from error


def _above(table: SourceTable, watermark: int | None) -> str:
    return f" WHERE {table.key} > {int(watermark)}" if watermark is not None else ""


def key_range(spark: SparkSession, source: DatabaseUrl, table: SourceTable, watermark: int | None) -> tuple[int, int]:
    """The smallest and largest key to extract; (0, -1) when there is nothing new."""
    row = (
        spark.read.format("jdbc")
        .options(**source.jdbc_options())
        .option(
            "query",
            f"SELECT MIN({table.key}) AS lo, MAX({table.key}) AS hi FROM {table.name}{_above(table, watermark)}",
        )
        .load()
        .first()
    )
    if row is None or row["lo"] is None:
        return 0, -1
    return int(row["lo"]), int(row["hi"])


def read_source_table(
    spark: SparkSession, source: DatabaseUrl, table: SourceTable, watermark: int | None, partitions: int
) -> DataFrame:
    """The table's rows with keys above `watermark` (all when None), read as `partitions` parallel key ranges."""
    low, high = key_range(spark, source, table, watermark)
    reader = (
        spark.read.format("jdbc")
        .options(**source.jdbc_options())
        .option("dbtable", f"(SELECT {_select_list(table)} FROM {table.name}{_above(table, watermark)}) src")
        .option("fetchsize", str(FETCH_SIZE))
    )
    if high >= low:
        # Spark splits [low, high] into equal strides; rows outside still land in the first or last range.
        reader = (
            reader.option("partitionColumn", table.key)
            .option("lowerBound", str(low))
            .option("upperBound", str(high + 1))
            .option("numPartitions", str(max(1, min(partitions, high - low + 1))))
        )
    return conform_source(reader.load(), table)


def _read_as_text(spark_type: str) -> bool:
    # The drivers read MySQL's zero days (`2024-05-00`) as the day before, a zero TIMESTAMP as NULL, and a
    # value beyond the contract's DECIMAL(10,2) as NULL: these columns come as the source's text and are read
    # here, strictly (a timestamp's text in the Spark session's time zone, UTC, as the driver read it).
    return spark_type in ("date", "timestamp") or spark_type.startswith("decimal")


def _select_list(table: SourceTable) -> str:
    columns = [f"CAST({name} AS CHAR) AS {name}" if _read_as_text(kind) else name for name, kind in table.spark_schema]
    if table is APARTMENTS:
        # The source decides which spellings are one location: PARTITION BY compares with the column's own
        # collation (case, trailing spaces, accents, ß, ...), over the whole table, before Spark's key ranges.
        columns.append(
            f"CONVERT(MIN(CAST(location AS BINARY)) OVER (PARTITION BY location) USING utf8mb4) AS {LOCATION_CLASS}"
        )
    return ", ".join(columns)


def _reads_as(text: Column, kind: str) -> Column:
    """True when the source's text is a value of `kind` as it is: a price of 12.345 is not a DECIMAL(10,2).

    Spark's cast would round it to 12.35 without a word; a widened column's trailing zeros (12.3400) are fine.
    """
    value = text.cast(kind)
    if not kind.startswith("decimal"):
        return value.isNotNull()
    return value.isNotNull() & (value == text.cast("decimal(38,18)"))


def conform_source(frame: DataFrame, table: SourceTable) -> DataFrame:
    """The contract's column types, whatever the driver mapped (an INT UNSIGNED arrives as a long).

    Columns read as text become their type here, and `invalid_text` names each that did not read as one
    (`start_date=2024-05-00`), keeping the source's text for the quarantine; it is null for a sound row.
    """
    typed = [F.col(name).cast(spark_type).alias(name) for name, spark_type in table.spark_schema]
    unread = [
        F.when(F.col(name).isNotNull() & ~_reads_as(F.col(name), kind), F.concat(F.lit(f"{name}="), F.col(name)))
        for name, kind in table.spark_schema
        if _read_as_text(kind)
    ]
    invalid = F.concat_ws("; ", *unread) if unread else F.lit("")
    classes = [F.col(LOCATION_CLASS).cast("string")] if LOCATION_CLASS in frame.columns else []
    return frame.select(*typed, *classes, F.when(invalid != "", invalid).cast("string").alias(INVALID_TEXT))


def max_key(frame: DataFrame, table: SourceTable, before: date) -> int | None:
    """The largest key of `frame`'s load dates before `before`: where the next increment starts.

    Earlier partitions, not a separate state file, are the watermark, so a re-run of a load date starts from
    the same place and its partition is simply replaced.
    """
    earlier: Column = F.col("load_date") < F.lit(before).cast("date")
    row = frame.filter(earlier).agg(F.max(table.key).alias("top")).first()
    return None if row is None or row["top"] is None else int(row["top"])
