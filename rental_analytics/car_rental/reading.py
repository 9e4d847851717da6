"""A batch's CSV files read into Spark as strings under the contract's names, as the upload gate read them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from rental_analytics.car_rental import rules
from rental_analytics.car_rental.contract import MAX_FIELDS, Dataset

# Catalyst's cost grows with a relation's width, in every plan built on it: a batch whose files carried 10,000
# ignored columns did not finish in 600 s, and runs as fast as without them now (docs/benchmarks.md). A file
# read as wider than this is read once, its contract columns written to the run's scratch and read from there.
WIDE_FIELDS = 64


class BatchInputError(Exception):
    """The batch folder does not hold the four datasets the job needs."""


@dataclass(frozen=True)
class FileLayout:
    """How many fields a file's header has, and where each of the contract's columns sits among them."""

    fields: int
    positions: Mapping[str, int]


@dataclass(frozen=True)
class FileFacts:
    """What the upload gate learned of one dataset's file: what the job is held to, and what work it spares.

    Every default is the safe choice for a fact the gate did not report (a verdict written before it did).
    """

    rows: int  # the job fails rather than read a different number
    layout: FileLayout | None = None  # where the columns sit; without it Spark reads the header
    multiline: bool = True  # a quoted field holds a line break, or a line is white: read whole, by one task
    quotes: bool = True  # without a single quote, the file is plain lines that the job splits at each comma
    unique_ids: bool = False  # every row has an id and no two rows the same: no rows need comparing
    line_end: str = ""  # the records' line end, "\n" or "\r\n" (the gate refuses a file that mixes them)

    @classmethod
    def from_verdict(cls, verdict: Mapping[str, Any]) -> FileFacts:
        """The facts in one file's verdict, as the gate wrote it (`FileVerdict.as_dict`)."""
        layout = None
        if verdict.get("header_fields"):
            layout = FileLayout(int(verdict["header_fields"]), dict(verdict["columns"]))
        return cls(
            rows=int(verdict["rows"]),
            layout=layout,
            multiline=bool(verdict.get("multiline_fields", True)),
            quotes=bool(verdict.get("quotes", True)),
            unique_ids=bool(verdict.get("unique_ids", False)),
            line_end=str(verdict.get("line_end", "")),
        )


def read_dataset(
    spark: SparkSession,
    input_dir: str,
    dataset: Dataset,
    present: set[str],
    facts: FileFacts | None = None,
    scratch: str | None = None,
) -> DataFrame:
    """Read one dataset of the batch as strings under the contract's column names.

    `present` is the batch folder's listing, taken once per batch. A multi-line read makes each file one
    task on one core; a file with no line break inside a quoted field (and no line of only white space) is
    read line by line, in splits, and one with no quote at all is split at its commas without a CSV parser,
    which costs a fraction of one.
    With the file's layout known, Spark is given the schema and skips the job that would read the header. A file
    wider than WIDE_FIELDS gets a schema that ends at its last contract column, so ignored columns after it are
    never made columns at all; one still wider than that is narrowed to the contract's columns in `scratch` (a
    folder the run owns) by one pass, when a scratch folder is given.
    """
    names = [name for name in dataset.file_names if name in present]
    if not names:
        raise BatchInputError(f"{input_dir} has no {dataset.name}.csv or {dataset.name}.csv.gz")
    path = f"{input_dir.rstrip('/')}/{names[0]}"
    layout = facts.layout if facts is not None else None
    if facts is not None and layout is not None and not facts.quotes and not facts.multiline:
        return _plain_lines(spark, path, dataset, layout)
    reader = spark.read
    if layout is not None:
        # A wide file's schema ends at the last contract column: Spark's parser keeps a row's fields that fit the
        # schema and drops the others, but takes such a row as malformed (one exception each), so a file of
        # ordinary width keeps every field.
        width = layout.fields if layout.fields <= WIDE_FIELDS else _used(layout)
        reader = reader.schema(StructType([StructField(f"_c{i}", StringType()) for i in range(width)]))
    raw = reader.csv(
        path,
        header=True,  # with a schema given, the header line is skipped and not compared
        inferSchema=False,
        multiLine=True if facts is None else facts.multiline,  # RFC 4180 allows line breaks in quoted fields
        # Left to itself the multi-line reader takes the first line end it meets, in a quoted header name too, for
        # every record's, and keeps a CR at the end of CRLF records' last values. The line-by-line readers take both.
        lineSep=facts.line_end if facts is not None and facts.multiline and facts.line_end else None,
        escape='"',  # RFC 4180 doubles a quote inside a quoted field
        encoding="UTF-8",
        mode="PERMISSIVE",
        maxColumns=MAX_FIELDS,  # the gate refuses a wider header or row: one would fail this whole read
    )
    frame = rules.canonical_columns(raw, dataset, layout.positions if layout is not None else None)
    if scratch is None or len(raw.columns) <= WIDE_FIELDS:
        return frame
    frame.write.mode("overwrite").parquet(scratch)
    return spark.read.schema(frame.schema).parquet(scratch)


def _used(layout: FileLayout) -> int:
    """How many of a row's fields hold every contract column: the ones after the last are never read."""
    return max(layout.positions.values()) + 1


def _plain_lines(spark: SparkSession, path: str, dataset: Dataset, layout: FileLayout) -> DataFrame:
    """A file without quotes, read as Spark's CSV reader reads it, by splitting each line at its commas.

    As that reader does, it skips the header and blank lines, gives null for an empty or absent field and
    ignores fields past the header's.
    """
    lines = spark.read.text(path)
    # The header is the file's first line: the first of the split that starts the file, which Spark never
    # packs behind another split. monotonically_increasing_id numbers a partition's rows in its low 33 bits.
    header = (F.input_file_block_start() == 0) & ((F.monotonically_increasing_id() % (1 << 33)) == 0)
    # A line with a comma is not blank; the pattern runs on the others alone.
    # Spark's CSV reader skips a line that Java's String.trim leaves empty: a blank value, to its very end (a
    # line of U+2028 alone is not blank, though Java's `$` matches before it).
    blank = ~F.col("value").contains(",") & rules.is_blank(F.col("value"))
    # A line is split no further than its last contract column; the rest stays one string, never looked at.
    fields = F.split(F.col("value"), ",", _used(layout) + 1)

    def field(position: int) -> Column:
        value = fields.getItem(position)
        return F.when(value != "", value)

    # Numbered in a projection of its own, where every line passes, before any filter can skip one.
    rows = lines.select("value", header.alias("_header")).where(~F.col("_header") & ~blank)
    absent = F.lit(None).cast("string")
    return rows.select(
        *[
            (field(layout.positions[name]) if name in layout.positions else absent).alias(name)
            for name in dataset.columns
        ]
    )
