"""The car-rental Spark application: read a batch once, apply the rules, merge, and compute analytics."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from rental_analytics import hadoop_fs
from rental_analytics.car_rental import kpis, rules
from rental_analytics.contract import (
    DAILY_METRICS,
    DATASETS,
    DEFAULT_MAX_REJECT_RATE,
    LOCATION_PERFORMANCE,
    LOCATIONS,
    PROCESSED_PARTITIONS,
    PROCESSED_SCHEMAS,
    REFERENCE_DATASETS,
    RENTAL_TRANSACTIONS,
    USER_METRICS,
    USERS,
    VEHICLE_TYPE_PERFORMANCE,
    VEHICLES,
    Dataset,
)
from rental_analytics.progress import Progress
from rental_analytics.spark_types import struct_type

OUTCOME_FILE = "job_outcome.json"


class BatchInputError(Exception):
    """The batch folder does not hold the four datasets the job needs."""


@dataclass(frozen=True)
class BatchJob:
    """Where one batch comes from and where its results go (local folders or s3:// prefixes)."""

    input_dir: str
    output_dir: str
    batch_id: str
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE

    def path(self, *parts: str) -> str:
        """A path below the output root."""
        return "/".join([self.output_dir.rstrip("/"), *parts])


@dataclass
class BatchOutcome:
    """What the job did with a batch; written beside the reports as `job_outcome.json`."""

    batch_id: str
    succeeded: bool
    message: str
    transaction_rows: int = 0
    valid_transactions: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    reference_rows: dict[str, int] = field(default_factory=dict)
    reference_rejected: dict[str, dict[str, int]] = field(default_factory=dict)
    reject_rate: float = 0.0
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE
    history_transactions: int = 0

    @property
    def rejected_transactions(self) -> int:
        """Transaction rows the row rules rejected."""
        return sum(self.rejected_by_reason.values())

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form."""
        return asdict(self)


def _silent(_: str) -> None:
    return None


def read_dataset(spark: SparkSession, input_dir: str, dataset: Dataset, present: set[str]) -> DataFrame:
    """Read one dataset of the batch as strings under the contract's column names.

    `present` is the batch folder's listing, taken once per batch.
    """
    names = [name for name in dataset.file_names if name in present]
    if not names:
        raise BatchInputError(f"{input_dir} has no {dataset.name}.csv or {dataset.name}.csv.gz")
    raw = spark.read.csv(
        f"{input_dir.rstrip('/')}/{names[0]}",
        header=True,
        inferSchema=False,
        multiLine=True,  # RFC 4180 allows line breaks inside quoted fields
        escape='"',  # RFC 4180 doubles a quote inside a quoted field
        encoding="UTF-8",
        mode="PERMISSIVE",
    )
    return rules.canonical_columns(raw, dataset)


def _reason_counts(tagged: DataFrame) -> tuple[int, dict[str, int]]:
    counts = {row[rules.REASON]: row["count"] for row in tagged.groupBy(rules.REASON).count().collect()}
    total = sum(counts.values())
    return total, {reason: counts[reason] for reason in sorted(r for r in counts if r is not None)}


def _write_quarantine(job: BatchJob, tagged: dict[str, DataFrame], outcome: BatchOutcome) -> None:
    spark = next(iter(tagged.values())).sparkSession
    root = job.path("quarantine", job.batch_id, "rows")
    hadoop_fs.delete(spark, root)  # a re-run replaces the rows an earlier run of this batch rejected
    for name, frame in tagged.items():
        rejected = outcome.rejected_by_reason if name == RENTAL_TRANSACTIONS.name else outcome.reference_rejected[name]
        if rejected:
            rules.rejected_rows(frame, DATASETS[name]).coalesce(1).write.mode("overwrite").parquet(f"{root}/{name}")


def _write_table(frame: DataFrame, path: str, partitions: tuple[str, ...] = ()) -> None:
    frame.coalesce(1).write.mode("overwrite").partitionBy(*partitions).parquet(path)


def merge_transactions(job: BatchJob, batch_rows: DataFrame) -> None:
    """Merge the batch's valid rentals into the processed history by rental_id; the later batch wins.

    Only the rental_date partitions that gain or lose a row are rewritten. They are built in a staging
    folder first, because Spark cannot overwrite the partitions it is reading.
    """
    spark = batch_rows.sparkSession
    target = job.path("processed", "rental_transactions")
    schema = struct_type(PROCESSED_SCHEMAS["rental_transactions"])
    if not hadoop_fs.exists(spark, target):
        batch_rows.write.mode("overwrite").partitionBy("rental_date").parquet(target)
        return
    history = spark.read.schema(schema).parquet(target)
    batch_ids = batch_rows.select("rental_id")
    replaced = history.join(batch_ids, "rental_id", "left_semi")
    affected = {
        row.rental_date
        for row in batch_rows.select("rental_date").union(replaced.select("rental_date")).distinct().collect()
    }
    merged = (
        history.where(F.col("rental_date").isin(list(affected)))
        .join(batch_ids, "rental_id", "left_anti")
        .unionByName(batch_rows)
    )
    staging = job.path("tmp", "staging", job.batch_id, "rental_transactions")
    merged.write.mode("overwrite").partitionBy("rental_date").parquet(staging)
    staged = {name for name in hadoop_fs.list_names(spark, staging) if name.startswith("rental_date=")}
    spark.read.schema(schema).parquet(staging).write.mode("overwrite").option(
        "partitionOverwriteMode", "dynamic"
    ).partitionBy("rental_date").parquet(target)
    for day in affected:
        # A partition whose only rentals moved to another date must go, or they would count twice.
        if f"rental_date={day}" not in staged:
            hadoop_fs.delete(spark, f"{target}/rental_date={day}")
    hadoop_fs.delete(spark, job.path("tmp", "staging", job.batch_id))


def write_analytics(job: BatchJob, references: dict[str, DataFrame]) -> int:
    """Recompute the four analytics tables from the whole processed history; returns its row count."""
    spark = references[USERS.name].sparkSession
    history = (
        spark.read.schema(struct_type(PROCESSED_SCHEMAS["rental_transactions"]))
        .parquet(job.path("processed", "rental_transactions"))
        .persist(StorageLevel.MEMORY_AND_DISK_DESER)
    )
    window = kpis.rental_window_hours(history).first()
    window_hours = float(window["window_hours"] or 0.0) if window else 0.0
    tables = {
        LOCATION_PERFORMANCE: kpis.location_performance(history, references[LOCATIONS.name], window_hours),
        USER_METRICS: kpis.user_metrics(history, references[USERS.name]),
        VEHICLE_TYPE_PERFORMANCE: kpis.vehicle_type_performance(history, references[VEHICLES.name]),
        DAILY_METRICS: kpis.daily_metrics(history),
    }
    for name, frame in tables.items():
        _write_table(frame, job.path("analytics", name))
    count = history.count()
    history.unpersist()
    return count


def run_batch(spark: SparkSession, job: BatchJob, progress: Progress = _silent) -> BatchOutcome:
    """Run one batch end to end; nothing under processed/ or analytics/ changes when it fails."""
    progress("reading the batch and applying the row rules")
    present = set(hadoop_fs.list_names(spark, job.input_dir))
    reference_tags = {
        d.name: rules.tag_reference(read_dataset(spark, job.input_dir, d, present), d).persist(
            StorageLevel.MEMORY_AND_DISK_DESER
        )
        for d in REFERENCE_DATASETS
    }
    outcome = BatchOutcome(job.batch_id, False, "", max_reject_rate=job.max_reject_rate)
    for name, frame in reference_tags.items():
        outcome.reference_rows[name], outcome.reference_rejected[name] = _reason_counts(frame)
    tagged = rules.tag_transactions(
        read_dataset(spark, job.input_dir, RENTAL_TRANSACTIONS, present),
        rules.kept(reference_tags[USERS.name]),
        rules.kept(reference_tags[VEHICLES.name]),
        rules.kept(reference_tags[LOCATIONS.name]),
    ).persist(StorageLevel.MEMORY_AND_DISK_DESER)
    outcome.transaction_rows, outcome.rejected_by_reason = _reason_counts(tagged)
    outcome.valid_transactions = outcome.transaction_rows - outcome.rejected_transactions
    if outcome.transaction_rows:
        outcome.reject_rate = outcome.rejected_transactions / outcome.transaction_rows

    progress("writing rejected rows to the quarantine")
    _write_quarantine(job, {**reference_tags, RENTAL_TRANSACTIONS.name: tagged}, outcome)
    if outcome.reject_rate > job.max_reject_rate:
        outcome.message = (
            f"{outcome.rejected_transactions} of {outcome.transaction_rows} transaction rows were rejected "
            f"({outcome.reject_rate:.2%}), above max_reject_rate {job.max_reject_rate:.2%}; "
            "processed/ and analytics/ were not changed"
        )
    else:
        progress("writing processed tables")
        references = {
            USERS.name: rules.processed_users(reference_tags[USERS.name]),
            LOCATIONS.name: rules.processed_locations(reference_tags[LOCATIONS.name]),
            VEHICLES.name: rules.processed_vehicles(reference_tags[VEHICLES.name]),
        }
        for name, frame in references.items():
            _write_table(frame, job.path("processed", name), PROCESSED_PARTITIONS[name])
        progress("merging rentals into the processed history")
        merge_transactions(job, rules.processed_transactions(tagged, job.batch_id))
        tagged.unpersist()
        progress("computing analytics tables")
        outcome.history_transactions = write_analytics(job, references)
        outcome.succeeded = True
        outcome.message = (
            f"{outcome.valid_transactions} of {outcome.transaction_rows} transaction rows accepted; "
            f"analytics recomputed over {outcome.history_transactions} rentals"
        )
    for frame in [*reference_tags.values(), tagged]:
        frame.unpersist()
    hadoop_fs.write_text(
        spark,
        job.path("reports", job.batch_id, OUTCOME_FILE),
        json.dumps(outcome.as_dict(), indent=2, sort_keys=True),
    )
    return outcome
