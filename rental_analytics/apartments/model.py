"""The dimensional model (contract, section 3): dimensions with stable surrogate keys, SCD2 apartments, facts."""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from rental_analytics.apartments.contract import LOCATION_CLASS

DIM_APARTMENTS_COLUMNS = (
    "apartment_key",
    "apartment_id",
    "location_key",
    "current_price",
    "status",
    "effective_date",
    "end_date",
    "is_current",
)
TRACKED = ("location_key", "current_price", "status")
FACT_BOOKINGS_COLUMNS = (
    "booking_key",
    "booking_id",
    "apartment_key",
    "user_key",
    "booking_date",
    "amount",
    "duration_days",
)
FACT_VIEWINGS_COLUMNS = ("viewing_key", "viewing_id", "apartment_key", "user_key", "viewing_date")


def _with_new_keys(new_rows: DataFrame, existing: DataFrame, key: str, order: list[str]) -> DataFrame:
    """Number new rows after the largest key in use, in a fixed order, so that a re-run gives the same keys."""
    top = existing.agg(F.coalesce(F.max(key), F.lit(0)).cast("long").alias("_top"))
    numbered = new_rows.withColumn("_n", F.row_number().over(Window.orderBy(*order)))
    return numbered.crossJoin(top).withColumn(key, F.col("_top") + F.col("_n")).drop("_n", "_top")


def version_key(apartment_id: Column, effective_date: Column) -> Column:
    """An apartment version's key, made of what the version is: its apartment and the day it took effect.

    `apartment_id` * 10^8 + `yyyymmdd` (apartment 12 from 2024-06-01 is 1220240601). A load date opens one
    version per apartment at most, so the key is unique; and it is the same whatever else the source held
    when the date was run, so a re-run, or an undo and a re-run, gives the same versions the same keys.
    """
    day = F.year(effective_date) * 10_000 + F.month(effective_date) * 100 + F.dayofmonth(effective_date)
    return apartment_id.cast("long") * 100_000_000 + day.cast("long")


def extend_dimension(previous: DataFrame, values: DataFrame, key: str, natural: str) -> DataFrame:
    """A dimension of (key, natural value): existing rows keep their keys, new values get the next ones."""
    new = values.select(natural).where(F.col(natural).isNotNull()).distinct().join(previous, natural, "left_anti")
    return previous.select(key, natural).unionByName(_with_new_keys(new, previous, key, [natural]).select(key, natural))


def as_collated(column: Column) -> Column:
    """Text as MySQL's and MariaDB's default collations compare it, letter case and trailing spaces aside.

    Used where the source cannot be asked: to find a known location again by a spelling of this load date,
    for processed rows from before the extract asked the source, and for statuses (docs/apartments.md).
    """
    return F.lower(F.rtrim(column))


def location_class(snapshot: DataFrame) -> Column:
    """Which location each apartment row names: the source's own answer, the extract's `location_class`."""
    return F.col(LOCATION_CLASS) if LOCATION_CLASS in snapshot.columns else as_collated(F.col("location"))


def extend_locations(previous: DataFrame, names: DataFrame) -> tuple[DataFrame, DataFrame]:
    """dim_locations with a key for each location of `names`, and each location's key (`location_class`, key).

    `names` holds `location_name` and `location_class`, spellings the source holds equal sharing a class. A
    class is a known location when one of its spellings is that location's name apart from case and trailing
    spaces (the smallest key if it is several, kept apart before); otherwise a new location, named by its most
    frequent spelling (the first in byte order on a tie). A known location keeps its name and key.
    """
    spellings = names.where(F.col("location_name").isNotNull()).groupBy(LOCATION_CLASS, "location_name").count()
    known = previous.select("location_key", as_collated(F.col("location_name")).alias("_same"))
    matched = (
        spellings.withColumn("_same", as_collated(F.col("location_name")))
        .join(known, "_same")
        .groupBy(LOCATION_CLASS)
        .agg(F.min("location_key").alias("location_key"))
    )
    best = Window.partitionBy(LOCATION_CLASS).orderBy(F.col("count").desc(), F.col("location_name"))
    new = (
        spellings.join(matched, LOCATION_CLASS, "left_anti")
        .withColumn("_rank", F.row_number().over(best))
        .filter("_rank = 1")
        .select(LOCATION_CLASS, "location_name")
    )
    keyed = _with_new_keys(new, previous, "location_key", ["location_name"])
    dimension = previous.select("location_key", "location_name").unionByName(
        keyed.select("location_key", "location_name")
    )
    return dimension, matched.unionByName(keyed.select(LOCATION_CLASS, "location_key"))


def scd2_apartments(
    previous: DataFrame, snapshot: DataFrame, load_date: date, held: DataFrame | None = None
) -> DataFrame:
    """dim_apartments after applying one load date's full snapshot.

    `snapshot` holds apartment_id, location_key, current_price and status of every apartment in the source.
    A changed apartment gets its current version closed the day before `load_date` and a new version from
    `load_date`; an apartment missing from the snapshot is closed. Applying the same load date again first
    undoes its earlier application (drops the versions it opened, reopens those it closed), so a re-run
    gives the same rows and keys. `held` (`apartment_id`) are apartments whose source rows were quarantined:
    a bad row is not a deletion, so their current versions stay as they are.
    """
    day = F.lit(load_date).cast("date")
    day_before = F.date_sub(day, 1)
    earlier = previous.filter(F.col("effective_date") < day).withColumns(
        {
            "is_current": F.col("is_current") | (F.col("end_date") == day_before),
            "end_date": F.when(F.col("end_date") == day_before, F.lit(None).cast("date")).otherwise(F.col("end_date")),
        }
    )
    current = earlier.filter("is_current")
    history = earlier.filter(~F.col("is_current"))
    source = snapshot.select("apartment_id", *TRACKED)
    if held is not None:
        unchanged_as_held = current.join(held, "apartment_id", "left_semi").join(source, "apartment_id", "left_anti")
        source = source.unionByName(unchanged_as_held.select("apartment_id", *TRACKED))
    source = source.withColumn("_in_source", F.lit(True))
    compared = current.alias("c").join(source.alias("s"), "apartment_id", "full_outer")
    in_dim = F.col("c.apartment_key").isNotNull()
    in_source = F.col("s._in_source").isNotNull()
    unchanged = in_dim & in_source
    for name in TRACKED:
        unchanged = unchanged & F.col(f"c.{name}").eqNullSafe(F.col(f"s.{name}"))
    kept = compared.filter(unchanged).select(
        "apartment_id", *[f"c.{c}" for c in DIM_APARTMENTS_COLUMNS if c != "apartment_id"]
    )
    closed = compared.filter(in_dim & ~unchanged).select(
        "apartment_id",
        "c.apartment_key",
        *[f"c.{name}" for name in TRACKED],
        "c.effective_date",
        day_before.alias("end_date"),
        F.lit(False).alias("is_current"),
    )
    opened = compared.filter(in_source & ~unchanged).select(
        "apartment_id",
        *[f"s.{name}" for name in TRACKED],
        day.alias("effective_date"),
        F.lit(None).cast("date").alias("end_date"),
        F.lit(True).alias("is_current"),
    )
    opened = opened.withColumn("apartment_key", version_key(F.col("apartment_id"), day))
    columns = list(DIM_APARTMENTS_COLUMNS)
    return (
        history.select(columns)
        .unionByName(kept.select(columns))
        .unionByName(closed.select(columns))
        .unionByName(opened.select(columns))
    )


def latest_rows(history: DataFrame, key: str) -> DataFrame:
    """One row per key, from its latest load date: a `--full` reload repeats rows that were loaded before."""
    newest_first = Window.partitionBy(key).orderBy(F.col("load_date").desc())
    return history.withColumn("_rank", F.row_number().over(newest_first)).filter("_rank = 1").drop("_rank")


def version_in_effect(events: DataFrame, dim_apartments: DataFrame, event_id: str, day: Column) -> DataFrame:
    """(event_id, apartment_key): the apartment's version in effect on `day`.

    When the event predates every version, the earliest; when it falls in a gap (the apartment was gone for
    a while), the latest version that started before it.
    """
    versions = dim_apartments.select("apartment_id", "apartment_key", "effective_date")
    started = F.when(F.col("effective_date") <= F.col("_day"), F.col("effective_date"))
    return (
        events.select(event_id, "apartment_id", day.alias("_day"))
        .join(versions, "apartment_id")
        .groupBy(event_id)
        .agg(
            F.coalesce(F.max_by("apartment_key", started), F.min_by("apartment_key", "effective_date")).alias(
                "apartment_key"
            )
        )
    )


def _fact(
    events: DataFrame,
    dims: tuple[DataFrame, DataFrame],
    previous_fact: DataFrame,
    natural: str,
    day: Column,
    measures: list[Column],
) -> DataFrame:
    """Resolve an event table's apartment version and user, and key it: known events keep their keys."""
    dim_apartments, dim_users = dims
    key = natural.replace("_id", "_key")
    rows = (
        events.join(version_in_effect(events, dim_apartments, natural, day), natural, "left")
        .join(dim_users, "user_id", "left")
        .select(natural, "apartment_key", "user_key", *measures)
    )
    known = previous_fact.select(natural, key)
    keyed = rows.join(known, natural, "left")
    new = keyed.filter(F.col(key).isNull()).drop(key)
    return keyed.filter(F.col(key).isNotNull()).unionByName(_with_new_keys(new, known, key, [natural]))


def fact_bookings(
    bookings: DataFrame, dim_apartments: DataFrame, dim_users: DataFrame, previous_fact: DataFrame
) -> DataFrame:
    """One row per booking ever loaded; `bookings` is the processed history, one row per booking_id."""
    measures = [
        F.col("start_date").alias("booking_date"),
        F.col("total_amount").alias("amount"),
        F.datediff("end_date", "start_date").alias("duration_days"),
    ]
    fact = _fact(bookings, (dim_apartments, dim_users), previous_fact, "booking_id", F.col("start_date"), measures)
    return fact.select(*FACT_BOOKINGS_COLUMNS)


def fact_viewings(
    viewings: DataFrame, dim_apartments: DataFrame, dim_users: DataFrame, previous_fact: DataFrame
) -> DataFrame:
    """One row per viewing ever loaded, with the apartment version in effect on the viewing's day."""
    day = F.to_date("viewing_date")
    fact = _fact(viewings, (dim_apartments, dim_users), previous_fact, "viewing_id", day, [F.col("viewing_date")])
    return fact.select(*FACT_VIEWINGS_COLUMNS)
