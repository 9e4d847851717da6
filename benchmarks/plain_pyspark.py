"""A plain, untuned PySpark job for the same four tables and the partitioned processed write, for timing.

It is what a first Spark version of this pipeline looks like: read the CSVs, `distinct`, one window over
rental_id, three joins, four `groupBy`s, write. No quarantine, no history merge, no report, default settings
(200 shuffle partitions, no explicit broadcast or caching). Only the bench runs it.
"""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?$"
DECIMAL = r"^[+-]?(\d+(\.\d*)?|\.\d+)$"


def main(argv: list[str]) -> None:
    """argparse, read, transform, write: the same batch folder and output layout as `run car-rental`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--driver-memory", default="4g")
    args = parser.parse_args(argv)
    spark = (
        SparkSession.builder.master("local[*]")
        .appName("plain-pyspark")
        .config("spark.driver.memory", args.driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")

    def read(name: str) -> DataFrame:
        frame = spark.read.csv(f"{args.input}/{name}.csv", header=True)
        return frame.select([F.trim(F.col(c)).alias(c) for c in frame.columns]).distinct()

    def unique_ids(frame: DataFrame, key: str) -> DataFrame:
        counted = frame.withColumn("n", F.count(F.lit(1)).over(Window.partitionBy(key)))
        return counted.where((F.col(key) != "") & (F.col("n") == 1)).drop("n")

    users = unique_ids(read("users"), "user_id")
    vehicles = unique_ids(read("vehicles"), "vehicle_id")
    locations = unique_ids(read("locations"), "location_id")
    rentals = read("rental_transactions").withColumn("n", F.count(F.lit(1)).over(Window.partitionBy("rental_id")))
    start = F.to_timestamp(F.regexp_replace("rental_start_time", "T", " "))
    end = F.to_timestamp(F.regexp_replace("rental_end_time", "T", " "))
    valid = (
        rentals.where(
            (F.col("n") == 1)
            & F.col("rental_start_time").rlike(TIMESTAMP)
            & F.col("rental_end_time").rlike(TIMESTAMP)
            & F.col("total_amount").rlike(DECIMAL)
        )
        .withColumn("rental_start_time", start)
        .withColumn("rental_end_time", end)
        .withColumn("total_amount", F.col("total_amount").cast("decimal(12,2)"))
        .where((F.col("rental_end_time") >= F.col("rental_start_time")) & (F.col("total_amount") >= 0))
        .join(users.select("user_id", "first_name", "last_name", "email"), "user_id")
        .join(vehicles.select("vehicle_id", "vehicle_type"), "vehicle_id")
        .join(locations.select(F.col("location_id").alias("pickup_location"), "location_name", "city", "state"),
              "pickup_location")
        .withColumn("secs", F.col("rental_end_time").cast("long") - F.col("rental_start_time").cast("long"))
        .withColumn("rental_date", F.to_date("rental_start_time"))
        .drop("n")
    )  # fmt: skip
    valid.write.mode("overwrite").partitionBy("rental_date").parquet(f"{args.output}/processed/rental_transactions")
    money = [F.sum("total_amount").alias("total_revenue"), F.count(F.lit(1)).alias("rentals"),
             F.avg("total_amount").alias("avg_amount"), F.max("total_amount"), F.min("total_amount")]  # fmt: skip
    tables = {
        "location_performance": valid.groupBy("pickup_location", "location_name", "city", "state").agg(
            *money, F.countDistinct("vehicle_id"), F.sum("secs")
        ),
        "user_metrics": valid.groupBy("user_id", "first_name", "last_name", "email").agg(
            *money, F.sum("secs"), F.min("rental_start_time"), F.max("rental_start_time")
        ),
        "vehicle_type_performance": valid.groupBy("vehicle_type").agg(
            *money, F.sum("secs"), F.max("secs"), F.min("secs"), F.countDistinct("vehicle_id")
        ),
        "daily_metrics": valid.groupBy("rental_date").agg(
            *money, F.countDistinct("user_id"), F.countDistinct("vehicle_id")
        ),
    }
    for name, frame in tables.items():
        frame.write.mode("overwrite").parquet(f"{args.output}/analytics/{name}")
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
