"""The local Spark session of the embedded default, configured in one place for the CLI and the tests."""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

# Settings the jobs rely on wherever they run; EMR gets the same through the cluster configuration.
JOB_SETTINGS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.parquet.compression.codec": "snappy",
}


def local_session(
    app_name: str = "rental-analytics",
    shuffle_partitions: int = 8,
    driver_memory: str | None = None,
) -> SparkSession:
    """A local-mode session using every core; memory comes from RENTAL_ANALYTICS_SPARK_MEMORY or 4g."""
    builder = (
        SparkSession.builder.master(os.environ.get("RENTAL_ANALYTICS_SPARK_MASTER", "local[*]"))
        .appName(app_name)
        .config("spark.driver.memory", driver_memory or os.environ.get("RENTAL_ANALYTICS_SPARK_MEMORY", "4g"))
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Local runs need no Hive metastore; keeping Derby out stops stray metastore_db folders.
        .config("spark.sql.catalogImplementation", "in-memory")
    )
    for key, value in JOB_SETTINGS.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
