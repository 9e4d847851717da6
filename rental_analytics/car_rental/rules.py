"""Row rules of the car-rental contract (section 2) as DataFrame-to-DataFrame transforms."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from rental_analytics.car_rental.contract import (
    BAD_AMOUNT,
    BAD_TIMESTAMP,
    BLANK_VALUE_REGEX,
    DECIMAL_REGEX,
    DUPLICATE_ID,
    DUPLICATE_RENTAL_ID,
    END_BEFORE_START,
    LOCATIONS,
    MISSING_REQUIRED,
    PARTITION_KEY_REGEX,
    PERSONAL_COLUMNS,
    PROCESSED_SCHEMAS,
    RENTAL_TRANSACTIONS,
    TIMESTAMP_REGEX,
    UNKNOWN_LOCATION,
    UNKNOWN_USER,
    UNKNOWN_VEHICLE,
    USERS,
    VEHICLES,
    Dataset,
    map_header,
)
from rental_analytics.car_rental.spark_types import conform

ORIGINAL = "original"
COPIES = "copies"
REASON = "reason"
ROWS_WITH_ID = "rows_with_id"
ID_KEY = "_id"


def canonical_columns(raw: DataFrame, dataset: Dataset, positions: Mapping[str, int] | None = None) -> DataFrame:
    """Rename a CSV read to the contract's names; absent optional columns are null.

    `positions` says which of the frame's columns holds each contract column, as the gate read the header;
    without it the columns are matched by the names Spark read from the file. Unknown extra columns are
    dropped here: the contract ignores them.
    """
    if positions is None:
        mapping = map_header(dataset, raw.columns)
        if not mapping.usable:
            problem = mapping.missing or mapping.repeated
            raise ValueError(f"{dataset.name}: header does not fit the contract ({', '.join(problem)})")
        positions = mapping.positions
    absent = [c for c in dataset.required if not 0 <= positions.get(c, -1) < len(raw.columns)]
    if absent:
        raise ValueError(f"{dataset.name}: header does not fit the contract ({', '.join(absent)})")
    return raw.select(
        *[
            F.col(f"`{raw.columns[positions[name]]}`").cast("string").alias(name)
            if name in positions
            else F.lit(None).cast("string").alias(name)
            for name in dataset.columns
        ]
    )


def is_blank(column: Column) -> Column:
    """Whether a value is empty or only spaces and control characters: blank, as the gate judges it."""
    return column.isNull() | _whole(column, BLANK_VALUE_REGEX)


def _quarantined_columns(dataset: Dataset) -> list[str]:
    """The columns `original` keeps and the quarantine writes: every one but the personal data."""
    return [c for c in dataset.columns if c not in PERSONAL_COLUMNS]


def _id_key(dataset: Dataset) -> Column:
    """The trimmed id a row is compared by; every blank id is the one key ""."""
    return F.coalesce(F.trim(F.col(dataset.id_column)), F.lit(""))


def repeated_ids(raw: DataFrame, dataset: Dataset) -> DataFrame:
    """The ids (column `_id`) whose rows must be compared with one another.

    They are every trimmed id on more than one row, and "" if any row's id is blank. A row whose id no other
    row carries is identical to no other row and shares its id with none, so only the rows of these ids need
    the shuffle that `_distinct_rows` gives them. Only the ids are read here, not the rows.
    """
    return (
        raw.select(_id_key(dataset).alias(ID_KEY))
        .groupBy(ID_KEY)
        .agg(F.count(F.lit(1)).alias("rows"))
        .where((F.col("rows") > 1) | (F.col(ID_KEY) == ""))
        .select(ID_KEY)
    )


def _distinct_rows(frame: DataFrame, dataset: Dataset, repeated: DataFrame | None) -> DataFrame:
    """Trimmed values under the contract's names, one row per distinct trimmed row.

    Rows identical in every trimmed column count as one row (contract, section 2); `copies` says how many rows
    of the file each one stands for, and `rows_with_id` how many distinct rows carry its id (null for a blank
    id). `original` keeps the values as they arrived only where trimming changed one, so clean rows carry no
    second copy of themselves; `rejected_rows` rebuilds the rest from the trimmed values.

    Given the `repeated` ids (`repeated_ids`), only their rows are shuffled, by id, to be collapsed and counted;
    every other row stands alone and stays where it was read. Without them every row is compared, in one
    shuffle: on a small batch that costs less than the job that would find the repeated ids first.
    """
    kept = _quarantined_columns(dataset)
    trimming_changed = reduce(lambda a, b: a | b, [~F.col(c).eqNullSafe(F.trim(F.col(c))) for c in kept])
    trimmed = frame.select(
        *[F.trim(F.col(c)).alias(c) for c in dataset.columns],
        F.when(trimming_changed, F.struct(*[F.col(c) for c in kept])).alias(ORIGINAL),
        _id_key(dataset).alias(ID_KEY),
    )
    if repeated is None:
        return _compared(trimmed, dataset)
    alone = trimmed.join(repeated, ID_KEY, "left_anti").select(
        *dataset.columns,
        F.lit(1).cast("long").alias(COPIES),
        ORIGINAL,
        F.lit(1).cast("long").alias(ROWS_WITH_ID),
    )
    return alone.unionByName(_compared(trimmed.join(repeated, ID_KEY, "left_semi"), dataset))


def _compared(trimmed: DataFrame, dataset: Dataset) -> DataFrame:
    """Rows shuffled by id, collapsed where identical, and counted per id: one exchange serves both."""
    key = dataset.id_column
    return (
        trimmed.repartition(key)
        .groupBy(*dataset.columns)
        .agg(F.count(F.lit(1)).alias(COPIES), F.first(ORIGINAL, ignorenulls=True).alias(ORIGINAL))
        .withColumn(ROWS_WITH_ID, F.when(~is_blank(F.col(key)), F.count(F.lit(1)).over(Window.partitionBy(key))))
    )


def _first_reason(rules: Sequence[tuple[str, Column]]) -> Column:
    """The first rule that applies names the reason; rows no rule catches get null."""
    return reduce(
        lambda chain, rule: chain.when(rule[1], F.lit(rule[0])),
        rules[1:],
        F.when(rules[0][1], F.lit(rules[0][0])),
    )


def tag_reference(raw: DataFrame, dataset: Dataset, repeated: DataFrame | None = None) -> DataFrame:
    """Tag each distinct row of a reference dataset with a rejection reason, or null when it is kept.

    An empty id is `missing_required`; an id on several rows that are not identical is `duplicate_id`,
    and every one of those rows is dropped, since none can be trusted over the others. `repeated` is
    `repeated_ids(raw, dataset)`, or None to compare every row (`_distinct_rows`).
    """
    rows = _distinct_rows(raw, dataset, repeated)
    return rows.withColumn(
        REASON,
        _first_reason(
            [(MISSING_REQUIRED, is_blank(F.col(dataset.id_column))), (DUPLICATE_ID, F.col(ROWS_WITH_ID) > 1)]
        ),
    ).drop(ROWS_WITH_ID)


def _whole(text: Column, regex: str) -> Column:
    r"""Whether the whole value matches a contract pattern that ends in `$`.

    Java's `$` also matches before a last line break (and `\u0085`, `\u2028`, `\u2029`), so `"12.5\n"` would
    pass; `\z` is the end of the value alone, as `$` is for the upload gate's RE2 (docs/car-rental-decisions.md).
    """
    return text.rlike(regex[:-1] + r"\z" if regex.endswith("$") else regex)


def _timestamp(text: Column) -> Column:
    """Parse a contract timestamp; anything that is not a real wall-clock time becomes null.

    The pattern admits only the contract's shapes; within them Spark's cast gives null for a date or time
    that does not exist (February 30th, hour 24, second 60), as the contract wants.
    """
    return F.when(_whole(text, TIMESTAMP_REGEX), text.cast("timestamp_ntz"))


# A plain decimal number (DECIMAL_REGEX) of at most ten digits before the point once its leading zeros are gone:
# DECIMAL(12,2) holds no more. Half-up rounding to cents depends on the first three digits after the point alone.
# It ends in \z, not $, for the reason `_whole` gives.
_AMOUNT_PARTS = r"^(?<sign>[+-]?)(?=\.?\d)0*(?<whole>\d{0,10})(?:\.(?<cents>\d{0,3})\d*)?\z"
# What of such a number reaches the cast: sign, a zero, the whole digits, the point, three digits and a zero.
AMOUNT_TEXT_CHARS = 17


def amount_text(text: Column) -> Column:
    """The digits of an amount that decide its value in cents, or null when it is no amount DECIMAL(12,2) holds.

    Spark's decimal parse takes time quadratic in the digits it is given (a million took 80 s): only these, never
    more than AMOUNT_TEXT_CHARS of them, are cast, and a longer number is a bad amount, as the gate judges it.
    """
    return F.when(_whole(text, _AMOUNT_PARTS), F.regexp_replace(text, _AMOUNT_PARTS, "${sign}0${whole}.${cents}0"))


def _amount(text: Column) -> Column:
    """A decimal number rounded half-up to cents; null when it is not a plain decimal number or too large."""
    return amount_text(text).cast("decimal(12,2)")


def tag_transactions(
    raw: DataFrame,
    users: DataFrame,
    vehicles: DataFrame,
    locations: DataFrame,
    broadcast: Collection[str] = (),
    repeated: DataFrame | None = None,
) -> DataFrame:
    """Tag every distinct transaction row with the first rule it breaks (contract, section 2), or null.

    `users`, `vehicles` and `locations` are the batch's kept reference rows; the id sets of the datasets
    named in `broadcast` are sent whole to every task, so the rentals need no shuffle to be checked against
    them. `repeated` is `repeated_ids(raw, RENTAL_TRANSACTIONS)`, or None to compare every row. The result
    carries the trimmed columns, the parsed `start`, `end` and `amount`, the `original` values and the `reason`;
    the strings parsed into `start`, `end` and `amount` are null on kept rows.
    """
    rows = _distinct_rows(raw, RENTAL_TRANSACTIONS, repeated)

    def ids(frame: DataFrame, dataset: Dataset, column: str, flag: str) -> DataFrame:
        known = frame.select(F.col(dataset.id_column).alias(column), F.lit(True).alias(flag))
        return F.broadcast(known) if dataset.name in broadcast else known

    known = {
        "user_known": ids(users, USERS, "user_id", "user_known"),
        "vehicle_known": ids(vehicles, VEHICLES, "vehicle_id", "vehicle_known"),
        "location_known": ids(locations, LOCATIONS, "pickup_location", "location_known"),
    }
    tagged = (
        rows.withColumn("start", _timestamp(F.col("rental_start_time")))
        .withColumn("end", _timestamp(F.col("rental_end_time")))
        .withColumn("amount", _amount(F.col("total_amount")))
        .join(known["user_known"], "user_id", "left")
        .join(known["vehicle_known"], "vehicle_id", "left")
        .join(known["location_known"], "pickup_location", "left")
    )
    missing = reduce(lambda a, b: a | b, [is_blank(F.col(c)) for c in RENTAL_TRANSACTIONS.required])
    reason = _first_reason(
        [
            (MISSING_REQUIRED, missing),
            (DUPLICATE_RENTAL_ID, F.col(ROWS_WITH_ID) > 1),
            (BAD_TIMESTAMP, F.col("start").isNull() | F.col("end").isNull()),
            (END_BEFORE_START, F.col("end") < F.col("start")),
            (BAD_AMOUNT, F.col("amount").isNull() | (F.col("amount") < 0)),
            (UNKNOWN_USER, F.col("user_known").isNull()),
            (UNKNOWN_VEHICLE, F.col("vehicle_known").isNull()),
            (UNKNOWN_LOCATION, F.col("location_known").isNull()),
        ]
    )
    # A kept row's parsed strings would be carried (and spilled, and cached) only to be dropped: the quarantine
    # needs them, as they arrived, on rejected rows alone.
    parsed = {"rental_start_time", "rental_end_time", "total_amount"}
    return tagged.withColumn(REASON, reason).select(
        *[
            F.when(F.col(REASON).isNotNull(), F.col(c)).alias(c) if c in parsed else F.col(c)
            for c in tagged.columns
            if c not in {ROWS_WITH_ID, "user_known", "vehicle_known", "location_known"}
        ],
        REASON,
    )


def kept(tagged: DataFrame) -> DataFrame:
    """The rows no rule rejected."""
    return tagged.where(F.col(REASON).isNull())


def rejected_rows(tagged: DataFrame, dataset: Dataset) -> DataFrame:
    """Rejected rows for the quarantine: the original values as strings, with `dataset` and `reason`."""
    kept = _quarantined_columns(dataset)
    # No `original` means trimming changed nothing: the trimmed values are the ones that arrived.
    original = F.coalesce(F.col(ORIGINAL), F.struct(*[F.col(c) for c in kept]))
    return tagged.where(F.col(REASON).isNotNull()).select(
        *[original[c].alias(c) for c in kept], F.lit(dataset.name).alias("dataset"), F.col(REASON)
    )


def _blank_to_null(name: str) -> Column:
    # Only an empty value: an optional one of nothing but a quoted line break is kept as it arrived.
    return F.when(F.col(name) != "", F.col(name))


def processed_transactions(tagged: DataFrame, batch_id: str) -> DataFrame:
    """Valid transactions, typed, with their duration in hours and the `rental_date` partition."""
    # The difference of two TIMESTAMP_NTZ is an interval, in plain arithmetic; timestampdiff would go through a
    # time zone for every row.
    seconds = F.expr("cast(cast(`end` - start as interval second) as bigint)")
    return conform(
        kept(tagged)
        .withColumn("rental_start_time", F.col("start"))
        .withColumn("rental_end_time", F.col("end"))
        .withColumn("total_amount", F.col("amount"))
        .withColumn("dropoff_location", _blank_to_null("dropoff_location"))
        .withColumn("rental_duration_hours", seconds / F.lit(3600.0))
        .withColumn("batch_id", F.lit(batch_id))
        .withColumn("rental_date", F.to_date(F.col("start"))),
        PROCESSED_SCHEMAS["rental_transactions"],
    )


def _date_part(text: Column) -> Column:
    """The date at the start of a date or timestamp string, or null when there is none."""
    return F.to_date(F.regexp_extract(text, r"^(\d{4}-\d{2}-\d{2})", 1), "yyyy-MM-dd")


def _number(name: str) -> Column:
    return F.when(_whole(F.col(name), DECIMAL_REGEX), F.col(name).cast("double"))


def processed_users(tagged: DataFrame) -> DataFrame:
    """Kept users without personal data, partitioned by the year they registered."""
    frame = kept(tagged).withColumn("registration_year", F.year(_date_part(F.col("creation_date"))))
    return conform(_blanks_to_null(frame, USERS), PROCESSED_SCHEMAS["users"])


def partition_key(value: Column) -> Column:
    """A free-text value as a partition folder's name, bounded and plain (PARTITION_KEY_REGEX); null stays null."""
    hashed = F.concat(F.lit("~"), F.substring(F.sha2(value, 256), 1, 20))
    return F.when(value.rlike(PARTITION_KEY_REGEX), value).otherwise(hashed)


def processed_locations(tagged: DataFrame) -> DataFrame:
    """Kept locations with numeric coordinates, partitioned by state (`state_key`, with `state` kept as it is)."""
    frame = _blanks_to_null(kept(tagged), LOCATIONS)
    frame = frame.withColumn("latitude", _number("latitude")).withColumn("longitude", _number("longitude"))
    return conform(frame.withColumn("state_key", partition_key(F.col("state"))), PROCESSED_SCHEMAS["locations"])


def processed_vehicles(tagged: DataFrame) -> DataFrame:
    """Kept vehicles."""
    return conform(_blanks_to_null(kept(tagged), VEHICLES), PROCESSED_SCHEMAS["vehicles"])


def _blanks_to_null(frame: DataFrame, dataset: Dataset) -> DataFrame:
    return frame.select(*[_blank_to_null(c).alias(c) for c in dataset.columns], *_extra(frame, dataset))


def _extra(frame: DataFrame, dataset: Dataset) -> list[str]:
    return [c for c in frame.columns if c not in dataset.columns]
