"""The four analytics tables of the car-rental contract (section 3), computed from processed rentals."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from rental_analytics.car_rental.contract import (
    ANALYTICS_SCHEMAS,
    DAILY_METRICS,
    LOCATION_PERFORMANCE,
    USER_METRICS,
    VEHICLE_TYPE_PERFORMANCE,
)
from rental_analytics.car_rental.spark_types import conform

SECONDS = "duration_seconds"
CENTS = "amount_cents"
COUNT = "_count"


def with_measures(rentals: DataFrame) -> DataFrame:
    """Add whole seconds and whole cents, so sums are exact and independent of row order.

    Both come from columns the processed table already has, through doubles: per row, decimal arithmetic and
    a timestamp difference (which goes through a time zone) cost several times more. Both round trips are
    exact: a DECIMAL(12,2) amount is at most 10^12 cents and a duration far below 2^52 seconds, well inside
    the whole numbers a double holds exactly.
    """
    # rint, not round: Spark rounds a double by way of BigDecimal and its decimal string, which costs more than
    # the rest of the aggregation; both values are within a hair of a whole number, where rint is exact.
    return rentals.withColumn(SECONDS, F.rint(F.col("rental_duration_hours") * 3600).cast("long")).withColumn(
        CENTS, F.rint(F.col("total_amount").cast("double") * 100).cast("long")
    )


def _hours(seconds: Column) -> Column:
    return seconds / F.lit(3600.0)


def _money_mean(cents_sum: str, count: str) -> Column:
    """Mean of money rounded half-up to cents, in integer arithmetic so no intermediate rounding creeps in.

    Amounts are never negative (rule 5), so floor((2s + n) / 2n) is the half-up rounding of s / n; a sum too
    large for that arithmetic gives null rather than a wrapped-around number.
    """
    return F.expr(f"cast(try_add(try_multiply({cents_sum}, 2), {count}) div ({count} * 2) as decimal(20,0)) / 100")


def _money(cents_sum: str) -> Column:
    """A sum of cents as money; null when it overflowed (as a decimal sum too large for its column would be)."""
    return F.col(cents_sum).cast("decimal(20,0)") / 100


def _money_aggregates() -> list[Column]:
    """Count, cents, and the largest and smallest amount of a group of rentals (`_count`, `_cents`, ...)."""
    return [
        F.count(F.lit(1)).alias(COUNT),
        F.try_sum(CENTS).alias("_cents"),
        F.max("total_amount").alias("max_transaction_amount"),
        F.min("total_amount").alias("min_transaction_amount"),
    ]


def _summed_money_aggregates() -> list[Column]:
    """`_money_aggregates` of groups of groups: what each part counted, added up."""
    overflowed = F.count_if(F.col("_cents").isNull()) > 0  # a part's sum is null only when it overflowed
    return [
        F.sum(COUNT).alias(COUNT),
        F.when(~overflowed, F.try_sum("_cents")).alias("_cents"),
        F.max("max_transaction_amount").alias("max_transaction_amount"),
        F.min("min_transaction_amount").alias("min_transaction_amount"),
    ]


def _finish(frame: DataFrame, total_name: str, count_name: str) -> DataFrame:
    return (
        frame.withColumn(total_name, _money("_cents"))
        .withColumn("avg_transaction_amount", _money_mean("_cents", COUNT))
        .withColumnRenamed(COUNT, count_name)
    )


def history_summary(rentals: DataFrame) -> DataFrame:
    """One row: `rentals`, the count, and `window_hours`, from the earliest start to the latest end."""
    return rentals.agg(
        F.count(F.lit(1)).alias("rentals"),
        _hours(F.expr("timestampdiff(SECOND, min(rental_start_time), max(rental_end_time))").cast("double")).alias(
            "window_hours"
        ),
    )


def location_performance(rentals: DataFrame, locations: DataFrame, window_hours: float) -> DataFrame:
    """One row per pickup location with at least one valid rental."""
    # Summed per (location, vehicle) first: a location's vehicles are then its rows, counted without the
    # distinct count that would copy every rental once for it and once for the other aggregates.
    per_vehicle = (
        with_measures(rentals)
        .groupBy(F.col("pickup_location").alias("location_id"), "vehicle_id")
        .agg(*_money_aggregates(), F.sum(SECONDS).alias("_seconds"))
    )
    per_location = per_vehicle.groupBy("location_id").agg(
        *_summed_money_aggregates(),
        F.sum("_seconds").alias("_seconds"),
        F.count("vehicle_id").alias("unique_vehicles"),  # as a distinct count would, a null id is no vehicle
    )
    hours = _hours(F.col("_seconds"))
    utilization = F.round(hours / (F.col("unique_vehicles") * F.lit(window_hours)), 4)
    names = locations.select("location_id", "location_name", "city", "state")
    return conform(
        _finish(per_location, "total_revenue", "transaction_count")
        .withColumn("total_rental_hours", hours)
        .withColumn("utilization_rate", F.when(F.lit(window_hours) > 0, utilization))
        .join(names, "location_id", "left"),
        ANALYTICS_SCHEMAS[LOCATION_PERFORMANCE],
    )


def user_metrics(rentals: DataFrame, users: DataFrame) -> DataFrame:
    """One row per user with at least one valid rental."""
    per_user = (
        with_measures(rentals)
        .groupBy("user_id")
        .agg(
            *_money_aggregates(),
            F.sum(SECONDS).alias("_seconds"),
            F.min("rental_start_time").alias("first_rental_at"),
            F.max("rental_start_time").alias("last_rental_at"),
        )
    )
    names = users.select("user_id", "first_name", "last_name", "email")
    return conform(
        _finish(per_user, "total_spent", "rental_count")
        .withColumn("total_rental_hours", _hours(F.col("_seconds")))
        .withColumn("avg_rental_duration", _hours(F.col("_seconds")) / F.col("rental_count"))
        .join(names, "user_id", "left"),
        ANALYTICS_SCHEMAS[USER_METRICS],
    )


def vehicle_type_performance(rentals: DataFrame, vehicles: DataFrame) -> DataFrame:
    """One row per vehicle_type."""
    # Summed per vehicle first: each task folds its rentals into one row per vehicle before the shuffle, and
    # a type's vehicles are then its rows, with no distinct count to copy every rental for.
    per_vehicle = (
        with_measures(rentals)
        .groupBy("vehicle_id")
        .agg(
            *_money_aggregates(),
            F.sum(SECONDS).alias("_vehicle_seconds"),
            F.max(SECONDS).alias("_vehicle_max_seconds"),
            F.min(SECONDS).alias("_vehicle_min_seconds"),
        )
    )
    typed = per_vehicle.join(vehicles.select("vehicle_id", "vehicle_type"), "vehicle_id", "left")
    per_type = typed.groupBy("vehicle_type").agg(
        *_summed_money_aggregates(),
        F.sum("_vehicle_seconds").alias("_seconds"),
        F.max("_vehicle_max_seconds").alias("_max_seconds"),
        F.min("_vehicle_min_seconds").alias("_min_seconds"),
        F.count("vehicle_id").alias("unique_vehicles"),  # as a distinct count would, a null id is no vehicle
    )
    return conform(
        _finish(per_type, "total_revenue", "rental_count")
        .withColumn("avg_rental_duration", _hours(F.col("_seconds")) / F.col("rental_count"))
        .withColumn("max_rental_duration", _hours(F.col("_max_seconds")))
        .withColumn("min_rental_duration", _hours(F.col("_min_seconds"))),
        ANALYTICS_SCHEMAS[VEHICLE_TYPE_PERFORMANCE],
    )


def _distinct_per_day(rentals: DataFrame, column: str, name: str) -> DataFrame:
    """How many distinct non-null values of `column` each rental_date has, as `name`."""
    pairs = rentals.where(F.col(column).isNotNull()).select("rental_date", column).distinct()
    return pairs.groupBy("rental_date").agg(F.count(F.lit(1)).alias(name))


def daily_metrics(rentals: DataFrame) -> DataFrame:
    """One row per rental_date."""
    # Summed per (date, user) first: a day's users are then its rows, and its money is what they spent. Two
    # distinct counts in one aggregation would make Spark copy every row once for each.
    per_user = with_measures(rentals).groupBy("rental_date", "user_id").agg(*_money_aggregates())
    per_day = per_user.groupBy("rental_date").agg(
        *_summed_money_aggregates(),
        F.count("user_id").alias("active_users"),  # as a distinct count would, a null id is no user
    )
    per_day = per_day.join(_distinct_per_day(rentals, "vehicle_id", "unique_vehicles"), "rental_date", "left")
    return conform(
        _finish(per_day, "total_revenue", "transaction_count").fillna(0, subset=["unique_vehicles"]),
        ANALYTICS_SCHEMAS[DAILY_METRICS],
    )
