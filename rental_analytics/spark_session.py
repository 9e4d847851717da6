"""The local Spark session of the embedded default, configured in one place for the CLI and the tests."""

from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import SparkSession

# Settings the jobs rely on wherever they run; EMR gets the same through the cluster configuration.
JOB_SETTINGS: dict[str, bool | float | int | str | None] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.parquet.compression.codec": "snappy",
}


# Debian's libmariadb-java and libpostgresql-jdbc-java; Glue and EMR bring their own drivers.
DEBIAN_JDBC_JARS = ("/usr/share/java/mariadb-java-client.jar", "/usr/share/java/postgresql.jar")


def jdbc_jars() -> list[str]:
    """The JDBC driver jars for a local session: RENTAL_ANALYTICS_JDBC_JARS (comma-separated) or Debian's."""
    configured = os.environ.get("RENTAL_ANALYTICS_JDBC_JARS")
    if configured:
        return [jar for jar in configured.split(",") if jar]
    return [jar for jar in DEBIAN_JDBC_JARS if Path(jar).is_file()]


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
        # JDBC hands timestamps over in the JVM's zone: UTC keeps MySQL's wall-clock values as they are.
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
    )
    jars = jdbc_jars()
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    session = builder.config(map=JOB_SETTINGS).getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def job_session(app_name: str) -> SparkSession:
    """The session of a job on EMR or Glue: the cluster's own settings plus the ones the jobs rely on."""
    return SparkSession.builder.appName(app_name).config(map=JOB_SETTINGS).getOrCreate()
