"""The car-rental Spark application: read a batch once, apply the rules, merge, and compute analytics."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import reduce
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from rental_analytics.car_rental import kpis, rules
from rental_analytics.car_rental.contract import (
    DAILY_METRICS,
    DATASETS,
    DEFAULT_MAX_REJECT_RATE,
    LOCATION_PERFORMANCE,
    LOCATIONS,
    PROCESSED_PARTITIONS,
    PROCESSED_SCHEMAS,
    REFERENCE_DATASETS,
    REFERENCE_REASONS,
    RENTAL_TRANSACTIONS,
    TRANSACTION_REASONS,
    USER_METRICS,
    USERS,
    VEHICLE_TYPE_PERFORMANCE,
    VEHICLES,
    Dataset,
)
from rental_analytics.car_rental.spark_types import struct_type
from rental_analytics.platform import hadoop_fs
from rental_analytics.platform.progress import Progress
from rental_analytics.platform.publication import Publication, commit, recover

OUTCOME_FILE = "job_outcome.json"
# Reference id sets up to this many rows go whole to every task (a few tens of MB of short strings), so the
# rentals are checked against them without being shuffled by each id in turn.
BROADCAST_ID_ROWS = 2_000_000
# Datasets up to this many rows skip the job that finds their repeated ids, and tagged rentals up to this many
# are cached: on a small batch each Spark job's fixed cost outweighs the rows it saves (docs/benchmarks.md).
SMALL_DATASET_ROWS = 200_000


class BatchInputError(Exception):
    """The batch folder does not hold the four datasets the job needs."""


@dataclass(frozen=True)
class FileLayout:
    """How many fields a file's header has, and where each of the contract's columns sits among them."""

    fields: int
    positions: Mapping[str, int]


@dataclass(frozen=True)
class BatchJob:
    """Where one batch comes from and where its results go (local folders or s3:// prefixes)."""

    input_dir: str
    output_dir: str
    batch_id: str
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE
    # Rows per dataset as the upload gate counted them; the job fails rather than read a different number.
    expected_rows: Mapping[str, int] | None = None
    # Per dataset, whether the gate saw a line break inside a quoted field; unknown datasets read multi-line.
    multiline: Mapping[str, bool] | None = None
    # Per dataset, the file's layout as the gate read its header; Spark reads the header of any other.
    layouts: Mapping[str, FileLayout] | None = None

    def reads_multiline(self, dataset: str) -> bool:
        """Whether the dataset's file must be read multi-line: yes unless the gate saw no quoted line break."""
        return True if self.multiline is None else self.multiline.get(dataset, True)

    def layout(self, dataset: str) -> FileLayout | None:
        """The dataset's file layout as the gate read its header, or None for Spark to read the header."""
        return None if self.layouts is None else self.layouts.get(dataset)

    def counted_at_most(self, dataset: str, rows: int) -> bool:
        """Whether the gate counted the dataset's file at up to `rows` rows; a count the job lacks is not."""
        counted = None if self.expected_rows is None else self.expected_rows.get(dataset)
        return counted is not None and counted <= rows

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
    rows_read: dict[str, int] = field(default_factory=dict)  # per dataset, identical rows included
    identical_rows_collapsed: dict[str, int] = field(default_factory=dict)

    @property
    def rejected_transactions(self) -> int:
        """Transaction rows the row rules rejected."""
        return sum(self.rejected_by_reason.values())

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form."""
        return asdict(self)


def manifest_verdicts(manifest_text: str) -> dict[str, Mapping[str, Any]]:
    """The gate's verdict on each dataset, from the manifest it staged beside the files."""
    return {dataset: file["verdict"] for dataset, file in json.loads(manifest_text)["files"].items()}


def held_to_the_gate(job: BatchJob, verdicts: Mapping[str, Mapping[str, Any]]) -> BatchJob:
    """The job held to the gate's verdicts: row count and header layout per dataset, multi-line reads where needed."""
    return replace(
        job,
        expected_rows={dataset: int(verdict["rows"]) for dataset, verdict in verdicts.items()},
        # A verdict from before the gate reported line breaks says nothing: read that file multi-line.
        multiline={dataset: bool(verdict.get("multiline_fields", True)) for dataset, verdict in verdicts.items()},
        # A verdict from before the gate reported the layout leaves Spark to read that file's header.
        layouts={
            dataset: FileLayout(int(verdict["header_fields"]), dict(verdict["columns"]))
            for dataset, verdict in verdicts.items()
            if verdict.get("header_fields")
        },
    )


def _silent(_: str) -> None:
    return None


def read_dataset(
    spark: SparkSession,
    input_dir: str,
    dataset: Dataset,
    present: set[str],
    multiline: bool = True,
    layout: FileLayout | None = None,
) -> DataFrame:
    """Read one dataset of the batch as strings under the contract's column names.

    `present` is the batch folder's listing, taken once per batch. A multi-line read makes each file one
    task on one core; a file with no line break inside a quoted field is read line by line, in splits.
    With the file's `layout` known, Spark is given the schema and skips the job that would read the header.
    """
    names = [name for name in dataset.file_names if name in present]
    if not names:
        raise BatchInputError(f"{input_dir} has no {dataset.name}.csv or {dataset.name}.csv.gz")
    reader = spark.read
    if layout is not None:
        reader = reader.schema(StructType([StructField(f"_c{i}", StringType()) for i in range(layout.fields)]))
    raw = reader.csv(
        f"{input_dir.rstrip('/')}/{names[0]}",
        header=True,  # with a schema given, the header line is skipped and not compared
        inferSchema=False,
        multiLine=multiline,  # RFC 4180 allows line breaks inside quoted fields
        escape='"',  # RFC 4180 doubles a quote inside a quoted field
        encoding="UTF-8",
        mode="PERMISSIVE",
    )
    return rules.canonical_columns(raw, dataset, layout.positions if layout is not None else None)


def _repeated_ids(job: BatchJob, raw: Mapping[str, DataFrame]) -> tuple[DataFrame | None, dict[str, DataFrame | None]]:
    """Per dataset, the ids whose rows must be compared (`rules.repeated_ids`), found for all of them in one job.

    A dataset the gate counted at up to SMALL_DATASET_ROWS rows gets None instead: comparing all its rows in
    one shuffle costs less than a job to find the ids first. Usually a large dataset has no repeated ids, and
    gets a frame filtered by a constant false: Spark knows it is empty and drops the comparison from the plan,
    so every row is read once and never shuffled. Up to BROADCAST_ID_ROWS ids are sent whole to every task.
    The first frame returned holds them all, cached until the caller unpersists it; None when no job ran.
    """
    repeated: dict[str, DataFrame | None] = dict.fromkeys(raw)
    large = [name for name in raw if not job.counted_at_most(name, SMALL_DATASET_ROWS)]
    if not large:
        return None, repeated
    found = reduce(
        DataFrame.unionByName,
        [rules.repeated_ids(raw[name], DATASETS[name]).withColumn("dataset", F.lit(name)) for name in large],
    ).persist(StorageLevel.MEMORY_AND_DISK_DESER)
    counts = {row["dataset"]: row["count"] for row in found.groupBy("dataset").count().collect()}
    for name in large:
        rows = counts.get(name, 0)
        # A constant false filter is what Spark's optimiser knows to be empty; a cached frame it must run first.
        of_dataset = found.where(F.col("dataset") == name if rows else F.lit(False)).select(rules.ID_KEY)
        repeated[name] = F.broadcast(of_dataset) if rows <= BROADCAST_ID_ROWS else of_dataset
    return found, repeated


def _tallies(reasons: Sequence[str]) -> list[Column]:
    """Aggregates that count a tagged dataset: the rows read, and the distinct rows kept and of each reason."""
    return [
        F.coalesce(F.sum(rules.COPIES), F.lit(0)).alias("read"),
        F.count_if(F.col(rules.REASON).isNull()).alias("kept"),
        *[F.count_if(F.col(rules.REASON) == reason).alias(reason) for reason in reasons],
    ]


def _note_counts(outcome: BatchOutcome, name: str, tally: Mapping[str, Any], reasons: Sequence[str]) -> None:
    """Record one dataset's `_tallies` in the outcome: rows read, identical rows collapsed, rows per reason."""
    rejected = {reason: int(tally[reason]) for reason in sorted(reasons) if tally[reason]}
    rows = int(tally["kept"]) + sum(rejected.values())
    outcome.rows_read[name] = int(tally["read"])
    outcome.identical_rows_collapsed[name] = outcome.rows_read[name] - rows
    if name == RENTAL_TRANSACTIONS.name:
        outcome.transaction_rows, outcome.rejected_by_reason = rows, rejected
        outcome.valid_transactions = rows - outcome.rejected_transactions
        outcome.reject_rate = outcome.rejected_transactions / rows if rows else 0.0
    else:
        outcome.reference_rows[name], outcome.reference_rejected[name] = rows, rejected


def _count_cached(tagged: Mapping[str, DataFrame], outcome: BatchOutcome) -> None:
    """Count the rows of every cached tagged dataset (read, kept, and per reason), in one Spark job."""
    reasons = sorted({*REFERENCE_REASONS, *TRANSACTION_REASONS})
    totals = reduce(
        DataFrame.unionByName,
        [frame.agg(F.lit(name).alias("dataset"), *_tallies(reasons)) for name, frame in tagged.items()],
    )
    for row in totals.collect():
        _note_counts(outcome, row["dataset"], row.asDict(), reasons)


def _spilled(tagged: DataFrame, folder: str, outcome: BatchOutcome) -> DataFrame:
    """Write many tagged rentals once to a scratch folder, counting them on the way; the rest reads them from there.

    The quarantine and the merge each need the tagged rentals. Reading and tagging the CSV is most of a pass's
    cost; reading the spill back is a fraction of it, and a cache of that many rows in the driver's heap took
    longer to build than a second pass over the CSV (docs/benchmarks.md). The counts are taken in the write's
    own tasks, with no shuffle above them: adaptive execution drops the plan above a shuffle that carries no
    rows, and an observation with it. Spark applies each task's update once, even when a task is retried.
    """
    counted = Observation()  # a name of its own: Spark matches metrics to an observation by name
    tagged.observe(counted, *_tallies(TRANSACTION_REASONS)).write.mode("overwrite").parquet(folder)
    _note_counts(outcome, RENTAL_TRANSACTIONS.name, counted.get, TRANSACTION_REASONS)
    return tagged.sparkSession.read.schema(tagged.schema).parquet(folder)


def _row_count_mismatch(job: BatchJob, outcome: BatchOutcome) -> str | None:
    """Why the job must stop when Spark read a file differently from the gate, or None when it did not."""
    expected = job.expected_rows or {}
    mismatched = [
        f"{name}: the upload gate counted {count:,} rows, Spark read {outcome.rows_read.get(name, 0):,}"
        for name, count in sorted(expected.items())
        if outcome.rows_read.get(name, 0) != count
    ]
    if not mismatched:
        return None
    return "; ".join(mismatched) + ": the files were not read as the gate read them; nothing was changed"


def _stage_quarantine(
    job: BatchJob, publication: Publication, tagged: Mapping[str, DataFrame], outcome: BatchOutcome
) -> None:
    """Stage the rows of each dataset the rules rejected; a re-run replaces the rows an earlier run rejected."""
    target = job.path("quarantine", job.batch_id, "rows")
    rejected = {RENTAL_TRANSACTIONS.name: outcome.rejected_by_reason, **outcome.reference_rejected}
    if not any(rejected.values()):
        publication.delete(target)
        return
    staged = publication.stage("quarantine-rows", target)
    for name, frame in tagged.items():
        if rejected[name]:
            _write_table(rules.rejected_rows(frame, DATASETS[name]), f"{staged}/{name}")


def _write_table(frame: DataFrame, path: str, partitions: tuple[str, ...] = ()) -> None:
    # One file per table (per partition), gathered by a shuffle: coalescing to one partition instead would run
    # the aggregation and joins before it in a single task, on one core.
    frame.repartition(1).write.mode("overwrite").partitionBy(*partitions).parquet(path)


def _write_by_date(rentals: DataFrame, path: str) -> None:
    # One task per date writes that date's file: without the shuffle every task writes a small file into
    # every date it holds (tasks x dates files), and writing and reading them back costs more than the shuffle.
    rentals.repartition("rental_date").write.mode("overwrite").partitionBy("rental_date").parquet(path)


def stage_merged_transactions(job: BatchJob, publication: Publication, batch_rows: DataFrame) -> DataFrame:
    """Merge the batch's valid rentals into the processed history by rental_id; the later batch wins.

    Only the rental_date partitions that gain or lose a row are rebuilt, in the staging folder; the
    returned frame is the whole history as it will be once the publication is committed.
    """
    spark = batch_rows.sparkSession
    target = job.path("processed", "rental_transactions")
    schema = struct_type(PROCESSED_SCHEMAS["rental_transactions"])
    if not hadoop_fs.exists(spark, target):
        staged = publication.stage("processed/rental_transactions", target)
        _write_by_date(batch_rows, staged)
        return spark.read.schema(schema).parquet(staged)
    history = spark.read.schema(schema).parquet(target)
    batch_ids = batch_rows.select("rental_id")
    replaced = history.join(batch_ids, "rental_id", "left_semi")
    affected = [
        row.rental_date
        for row in batch_rows.select("rental_date").union(replaced.select("rental_date")).distinct().collect()
    ]
    merged = (
        history.where(F.col("rental_date").isin(affected))
        .join(batch_ids, "rental_id", "left_anti")
        .unionByName(batch_rows)
    )
    staged = f"{publication.root}/processed/rental_transactions"
    _write_by_date(merged, staged)
    partitions = {name for name in hadoop_fs.list_names(spark, staged) if name.startswith("rental_date=")}
    for day in affected:
        partition = f"rental_date={day}"
        if partition in partitions:
            publication.moves.append((f"{staged}/{partition}", f"{target}/{partition}"))
        else:
            # A partition whose only rentals moved to another date must go, or they would count twice.
            publication.delete(f"{target}/{partition}")
    kept = history.where(~F.col("rental_date").isin(affected)) if affected else history
    return kept.unionByName(spark.read.schema(schema).parquet(staged))


def stage_analytics(
    job: BatchJob, publication: Publication, history: DataFrame, references: dict[str, DataFrame]
) -> int:
    """The four analytics tables over the whole history to be published; returns the history's row count.

    The history is read from its files by each table rather than cached: each reads only the columns it
    needs, and filling a cache would cost a pass of its own.
    """
    summary = kpis.history_summary(history).first()
    window_hours = float(summary["window_hours"] or 0.0) if summary else 0.0
    tables = {
        LOCATION_PERFORMANCE: kpis.location_performance(history, references[LOCATIONS.name], window_hours),
        USER_METRICS: kpis.user_metrics(history, references[USERS.name]),
        VEHICLE_TYPE_PERFORMANCE: kpis.vehicle_type_performance(history, references[VEHICLES.name]),
        DAILY_METRICS: kpis.daily_metrics(history),
    }
    for name, frame in tables.items():
        _write_table(frame, publication.stage(f"analytics/{name}", job.path("analytics", name)))
    return int(summary["rentals"]) if summary else 0


def _stage_tables(
    job: BatchJob,
    publication: Publication,
    reference_tags: Mapping[str, DataFrame],
    tagged: DataFrame,
    outcome: BatchOutcome,
    progress: Progress,
) -> None:
    """Stage the processed tables, the merged rentals and the analytics of a batch the rules accepted."""
    progress("writing processed tables")
    references = {
        USERS.name: rules.processed_users(reference_tags[USERS.name]),
        LOCATIONS.name: rules.processed_locations(reference_tags[LOCATIONS.name]),
        VEHICLES.name: rules.processed_vehicles(reference_tags[VEHICLES.name]),
    }
    for name, frame in references.items():
        staged = publication.stage(f"processed/{name}", job.path("processed", name))
        _write_table(frame, staged, PROCESSED_PARTITIONS[name])
    progress("merging rentals into the processed history")
    history = stage_merged_transactions(job, publication, rules.processed_transactions(tagged, job.batch_id))
    progress("computing analytics tables")
    outcome.history_transactions = stage_analytics(job, publication, history, references)
    outcome.succeeded = True
    outcome.message = (
        f"{outcome.valid_transactions} of {outcome.transaction_rows} transaction rows accepted; "
        f"analytics recomputed over {outcome.history_transactions} rentals"
    )


def run_batch(spark: SparkSession, job: BatchJob, progress: Progress = _silent) -> BatchOutcome:
    """Run one batch end to end; nothing under processed/ or analytics/ changes when it fails.

    Every folder the run changes is staged and then published in one step (`platform.publication`): a run
    that is stopped leaves the previous tables, or tables that the next run finishes publishing first.
    """
    staging = job.path("tmp", "publish")
    recover(spark, staging, progress)
    publication = Publication(f"{staging}/{job.batch_id}")
    progress("reading the batch and applying the row rules")
    present = set(hadoop_fs.list_names(spark, job.input_dir))

    def read(dataset: Dataset) -> DataFrame:
        return read_dataset(
            spark, job.input_dir, dataset, present, job.reads_multiline(dataset.name), job.layout(dataset.name)
        )

    raw = {d.name: read(d) for d in DATASETS.values()}
    found, repeated = _repeated_ids(job, raw)
    reference_tags = {
        d.name: rules.tag_reference(raw[d.name], d, repeated[d.name]).persist(StorageLevel.MEMORY_AND_DISK_DESER)
        for d in REFERENCE_DATASETS
    }
    # Sized by the gate's count, so the decision needs no Spark job; AQE still broadcasts small sets it meets.
    broadcast = {name for name in reference_tags if job.counted_at_most(name, BROADCAST_ID_ROWS)}
    tagged = rules.tag_transactions(
        raw[RENTAL_TRANSACTIONS.name],
        rules.kept(reference_tags[USERS.name]),
        rules.kept(reference_tags[VEHICLES.name]),
        rules.kept(reference_tags[LOCATIONS.name]),
        broadcast=broadcast,
        repeated=repeated[RENTAL_TRANSACTIONS.name],
    )
    outcome = BatchOutcome(job.batch_id, False, "", max_reject_rate=job.max_reject_rate)
    if job.counted_at_most(RENTAL_TRANSACTIONS.name, SMALL_DATASET_ROWS):
        # A few rentals are cached and counted with the reference datasets: one Spark job for all four.
        tagged = tagged.persist(StorageLevel.MEMORY_AND_DISK_DESER)
        _count_cached({**reference_tags, RENTAL_TRANSACTIONS.name: tagged}, outcome)
    else:
        _count_cached(reference_tags, outcome)
        tagged = _spilled(tagged, f"{publication.root}/scratch/{RENTAL_TRANSACTIONS.name}", outcome)
        if found is not None:
            found.unpersist()
    mismatch = _row_count_mismatch(job, outcome)
    if mismatch is not None:
        outcome.message = mismatch
        hadoop_fs.delete(spark, publication.root)
    else:
        progress("writing rejected rows to the quarantine")
        _stage_quarantine(job, publication, {**reference_tags, RENTAL_TRANSACTIONS.name: tagged}, outcome)
        if outcome.reject_rate > job.max_reject_rate:
            outcome.message = (
                f"{outcome.rejected_transactions} of {outcome.transaction_rows} transaction rows were rejected "
                f"({outcome.reject_rate:.2%}), above max_reject_rate {job.max_reject_rate:.2%}; "
                "processed/ and analytics/ were not changed"
            )
        else:
            _stage_tables(job, publication, reference_tags, tagged, outcome, progress)
        progress("publishing the new tables")
        commit(spark, publication)
    for cached in [*reference_tags.values(), tagged, found]:
        if cached is not None:
            cached.unpersist()
    hadoop_fs.write_text(
        spark,
        job.path("reports", job.batch_id, OUTCOME_FILE),
        json.dumps(outcome.as_dict(), indent=2, sort_keys=True),
    )
    return outcome
