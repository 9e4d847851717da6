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


def with_measures(rentals: DataFrame) -> DataFrame:
    """Add whole seconds and whole cents, so sums are exact and independent of row order."""
    return rentals.withColumn(SECONDS, F.expr("timestampdiff(SECOND, rental_start_time, rental_end_time)")).withColumn(
        CENTS, (F.col("total_amount") * 100).cast("long")
    )


def _hours(seconds: Column) -> Column:
    return seconds / F.lit(3600.0)


def _money_mean(cents_sum: str, count: str) -> Column:
    """Mean of money rounded half-up to cents, in integer arithmetic so no intermediate rounding creeps in.

    Amounts are never negative (rule 5), so floor((2s + n) / 2n) is the half-up rounding of s / n.
    """
    return F.expr(f"cast(({cents_sum} * 2 + {count}) div ({count} * 2) as decimal(20,0)) / 100")


def _money_aggregates(prefix_total: str) -> list[Column]:
    return [
        F.sum("total_amount").alias(prefix_total),
        F.count(F.lit(1)).alias("_count"),
        F.sum(CENTS).alias("_cents"),
        F.max("total_amount").alias("max_transaction_amount"),
        F.min("total_amount").alias("min_transaction_amount"),
    ]


def _finish(frame: DataFrame, count_name: str) -> DataFrame:
    return frame.withColumn("avg_transaction_amount", _money_mean("_cents", "_count")).withColumnRenamed(
        "_count", count_name
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
    measured = with_measures(rentals)
    per_location = measured.groupBy(F.col("pickup_location").alias("location_id")).agg(
        *_money_aggregates("total_revenue"),
        F.countDistinct("vehicle_id").alias("unique_vehicles"),
        F.sum(SECONDS).alias("_seconds"),
    )
    hours = _hours(F.col("_seconds"))
    utilization = F.round(hours / (F.col("unique_vehicles") * F.lit(window_hours)), 4)
    names = locations.select("location_id", "location_name", "city", "state")
    return conform(
        _finish(per_location, "transaction_count")
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
            *_money_aggregates("total_spent"),
            F.sum(SECONDS).alias("_seconds"),
            F.min("rental_start_time").alias("first_rental_at"),
            F.max("rental_start_time").alias("last_rental_at"),
        )
    )
    names = users.select("user_id", "first_name", "last_name", "email")
    return conform(
        _finish(per_user, "rental_count")
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
            *_money_aggregates("_revenue"),
            F.sum(SECONDS).alias("_vehicle_seconds"),
            F.max(SECONDS).alias("_vehicle_max_seconds"),
            F.min(SECONDS).alias("_vehicle_min_seconds"),
        )
    )
    typed = per_vehicle.join(vehicles.select("vehicle_id", "vehicle_type"), "vehicle_id", "left")
    per_type = typed.groupBy("vehicle_type").agg(
        F.sum("_revenue").alias("total_revenue"),
        F.sum("_count").alias("_count"),
        F.sum("_cents").alias("_cents"),
        F.max("max_transaction_amount").alias("max_transaction_amount"),
        F.min("min_transaction_amount").alias("min_transaction_amount"),
        F.sum("_vehicle_seconds").alias("_seconds"),
        F.max("_vehicle_max_seconds").alias("_max_seconds"),
        F.min("_vehicle_min_seconds").alias("_min_seconds"),
        F.count("vehicle_id").alias("unique_vehicles"),  # as a distinct count would, a null id is no vehicle
    )
    return conform(
        _finish(per_type, "rental_count")
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
    measured = with_measures(rentals)
    per_day = measured.groupBy("rental_date").agg(*_money_aggregates("total_revenue"))
    # Two distinct counts in one aggregation make Spark copy every row once for each; counting each from its
    # own distinct pairs reads the rentals twice more but shuffles less, and took half the time at 5M rentals.
    counts = [
        _distinct_per_day(measured, "user_id", "active_users"),
        _distinct_per_day(measured, "vehicle_id", "unique_vehicles"),
    ]
    for frame in counts:
        per_day = per_day.join(frame, "rental_date", "left")
    return conform(
        _finish(per_day, "transaction_count").fillna(0, subset=["active_users", "unique_vehicles"]),
        ANALYTICS_SCHEMAS[DAILY_METRICS],
    )
