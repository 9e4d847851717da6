"""The car-rental Spark application: read a batch once, apply the rules, merge, and compute analytics."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial, reduce
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from rental_analytics.car_rental import kpis, rules
from rental_analytics.car_rental.contract import (
    DAILY_METRICS,
    DATASETS,
    DEFAULT_MAX_REJECT_RATE,
    LOCATION_PERFORMANCE,
    LOCATIONS,
    PROCESSED_PARTITIONS,
    PROCESSED_SCHEMAS,
    QUARANTINE_ROWS,
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
from rental_analytics.car_rental.reading import FileFacts, read_dataset
from rental_analytics.car_rental.spark_types import struct_type
from rental_analytics.platform import hadoop_fs
from rental_analytics.platform.progress import Progress
from rental_analytics.platform.publication import Publication, commit, recover
from rental_analytics.platform.side_by_side import side_by_side

OUTCOME_FILE = "job_outcome.json"
# Reference id sets up to this many rows go whole to every task (a few tens of MB of short strings), so the
# rentals are checked against them without being shuffled by each id in turn.
BROADCAST_ID_ROWS = 2_000_000
# Datasets up to this many rows skip the job that finds their repeated ids, and tagged rentals up to this many
# are cached: on a small batch each Spark job's fixed cost outweighs the rows it saves (docs/benchmarks.md).
SMALL_DATASET_ROWS = 200_000


@dataclass(frozen=True)
class BatchJob:
    """Where one batch comes from and where its results go (local folders or s3:// prefixes)."""

    input_dir: str
    output_dir: str
    batch_id: str
    max_reject_rate: float = DEFAULT_MAX_REJECT_RATE
    # Per dataset, what the upload gate learned of its file (`held_to_the_gate`); none for a job on its own.
    files: Mapping[str, FileFacts] | None = None

    def facts(self, dataset: str) -> FileFacts | None:
        """What the gate learned of the dataset's file, or None when the job has no verdict for it."""
        return None if self.files is None else self.files.get(dataset)

    def counted_at_most(self, dataset: str, rows: int) -> bool:
        """Whether the gate counted the dataset's file at up to `rows` rows; a count the job lacks is not."""
        facts = self.facts(dataset)
        return facts is not None and facts.rows <= rows

    def vouched_unique(self, dataset: str) -> bool:
        """Whether the gate found an id on every row of the dataset's file and no id on two rows."""
        facts = self.facts(dataset)
        return facts is not None and facts.unique_ids

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
    """The job held to the gate's verdicts: each file's row count, and how it may be read (`FileFacts`)."""
    return replace(job, files={dataset: FileFacts.from_verdict(verdict) for dataset, verdict in verdicts.items()})


def _silent(_: str) -> None:
    return None


def _repeated_ids(job: BatchJob, raw: Mapping[str, DataFrame]) -> tuple[DataFrame | None, dict[str, DataFrame | None]]:
    """Per dataset, the ids whose rows must be compared (`rules.repeated_ids`), found for all of them in one job.

    A dataset whose ids the gate vouched for (`BatchJob.vouched_unique`) has none, and no job looks. One the
    gate counted at up to SMALL_DATASET_ROWS rows gets None instead: comparing all its rows in one shuffle costs
    less than a job to find the ids first. A dataset without repeated ids gets a frame filtered by a constant
    false: Spark knows it is empty and drops the comparison from the plan, so every row is read once and never
    shuffled. Up to BROADCAST_ID_ROWS ids are sent whole to every task. The first frame returned holds the ids
    found, cached until the caller unpersists it; None when no job ran.
    """
    repeated: dict[str, DataFrame | None] = {
        name: _none_repeated(frame, DATASETS[name]) if job.vouched_unique(name) else None for name, frame in raw.items()
    }
    large = [name for name in raw if repeated[name] is None and not job.counted_at_most(name, SMALL_DATASET_ROWS)]
    if not large:
        return None, repeated
    found = reduce(
        DataFrame.unionByName,
        [rules.repeated_ids(raw[name], DATASETS[name]).withColumn("dataset", F.lit(name)) for name in large],
    ).persist(StorageLevel.MEMORY_AND_DISK_DESER)
    counts = {row["dataset"]: row["count"] for row in found.groupBy("dataset").count().collect()}
    for name in large:
        rows = counts.get(name, 0)
        if not rows:
            repeated[name] = _none_repeated(raw[name], DATASETS[name])
            continue
        of_dataset = found.where(F.col("dataset") == name).select(rules.ID_KEY)
        repeated[name] = F.broadcast(of_dataset) if rows <= BROADCAST_ID_ROWS else of_dataset
    return found, repeated


def _none_repeated(raw: DataFrame, dataset: Dataset) -> DataFrame:
    # A constant false filter is what Spark's optimiser knows to be empty; a cached frame it must run first.
    return rules.repeated_ids(raw, dataset).where(F.lit(False))


def _tallies(reasons: Sequence[str]) -> list[Column]:
    """Aggregates that count a tagged dataset: the rows read, and the distinct rows kept and of each reason."""
    return [
        F.coalesce(F.sum(rules.COPIES), F.lit(0)).alias("read"),
        F.count_if(F.col(rules.REASON).isNull()).alias("kept"),
        *[F.count_if(F.col(rules.REASON) == reason).alias(reason) for reason in reasons],
    ]


def _no_rows(reasons: Sequence[str]) -> dict[str, int]:
    """The `_tallies` of a dataset without rows, which Spark gives no group or observation at all."""
    return dict.fromkeys(["read", "kept", *reasons], 0)


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
    """Count the rows of every cached tagged dataset (read, kept, and per reason), in one Spark job.

    The datasets' rows go through one aggregation by name, which is one shuffle for all of them.
    """
    reasons = sorted({*REFERENCE_REASONS, *TRANSACTION_REASONS})
    rows = reduce(
        DataFrame.unionByName,
        [frame.select(F.lit(name).alias("dataset"), rules.COPIES, rules.REASON) for name, frame in tagged.items()],
    )
    counted = {row["dataset"]: row.asDict() for row in rows.groupBy("dataset").agg(*_tallies(reasons)).collect()}
    for name in tagged:
        _note_counts(outcome, name, counted.get(name, _no_rows(reasons)), reasons)


def _write_counted_rentals(tagged: DataFrame, batch_id: str, folder: str, outcome: BatchOutcome) -> None:
    """Write the batch's valid rentals by date to `folder`, counting every tagged row on the way.

    The counts (rows read, kept, and per reason) are taken by a Spark observation below the shuffle that
    gathers each date's rows: adaptive execution drops the plan above a shuffle that carries no rows, and an
    observation with it. Spark applies each task's update once, even when a task is retried.
    """
    counted = Observation()  # a name of its own: Spark matches metrics to an observation by name
    observed = tagged.observe(counted, *_tallies(TRANSACTION_REASONS))
    _write_by_date(rules.processed_transactions(observed, batch_id), folder)
    tally = {**_no_rows(TRANSACTION_REASONS), **counted.get}
    _note_counts(outcome, RENTAL_TRANSACTIONS.name, tally, TRANSACTION_REASONS)


def _row_count_mismatch(job: BatchJob, outcome: BatchOutcome) -> str | None:
    """Why the job must stop when Spark read a file differently from the gate, or None when it did not."""
    mismatched = [
        f"{name}: the upload gate counted {facts.rows:,} rows, Spark read {outcome.rows_read.get(name, 0):,}"
        for name, facts in sorted((job.files or {}).items())
        if outcome.rows_read.get(name, 0) != facts.rows
    ]
    if not mismatched:
        return None
    return "; ".join(mismatched) + ": the files were not read as the gate read them; nothing was changed"


def _stage_quarantine(
    job: BatchJob, publication: Publication, tagged: Mapping[str, DataFrame], outcome: BatchOutcome
) -> None:
    """Stage the rows of each dataset the rules rejected; a re-run replaces the rows an earlier run rejected."""
    target = job.path("quarantine", job.batch_id, QUARANTINE_ROWS)
    rejected = {RENTAL_TRANSACTIONS.name: outcome.rejected_by_reason, **outcome.reference_rejected}
    if not any(rejected.values()):
        publication.delete(target)
        return
    staged = publication.stage("quarantine-rows", target)
    for name, frame in tagged.items():
        if rejected[name]:
            _write_table(rules.rejected_rows(frame, DATASETS[name]), f"{staged}/{name}")


# Per processed table, the columns whose values almost never repeat within a file: Parquet would fill a
# dictionary of them, find it too large, and write the values plainly after all, having spent up to a third of
# the write on the attempt.
UNREPEATED_COLUMNS: dict[str, tuple[str, ...]] = {
    RENTAL_TRANSACTIONS.name: ("rental_id", "user_id", "vehicle_id", "rental_start_time", "rental_end_time"),
    USERS.name: ("user_id", "email"),
    VEHICLES.name: ("vehicle_id", "vehicle_license_number", "permit_license_number"),
    LOCATIONS.name: ("location_id",),
}


def _plain(dataset: str) -> dict[str, str]:
    """Parquet writer options that leave the dataset's unrepeated columns without a dictionary."""
    return {f"parquet.enable.dictionary#{column}": "false" for column in UNREPEATED_COLUMNS.get(dataset, ())}


def _write_table(frame: DataFrame, path: str, partitions: tuple[str, ...] = (), dataset: str = "") -> None:
    # One file per table (per partition), gathered by a shuffle: coalescing to one partition instead would run
    # the aggregation and joins before it in a single task, on one core. A partitioned table is gathered by its
    # partition columns, so that its partitions are written side by side.
    gathered = frame.repartition(*partitions) if partitions else frame.repartition(1)
    gathered.write.mode("overwrite").options(**_plain(dataset)).partitionBy(*partitions).parquet(path)


def _write_by_date(rentals: DataFrame, path: str) -> None:
    # One task per date writes that date's file: without the shuffle every task writes a small file into
    # every date it holds (tasks x dates files), and writing and reading them back costs more than the shuffle.
    # As many shuffle partitions as configured, not fewer: adaptive execution would merge a small batch's dates
    # into one task, which then writes every date's file alone, one after another.
    partitions = int(rentals.sparkSession.conf.get("spark.sql.shuffle.partitions") or 1)
    gathered = rentals.repartition(partitions, "rental_date")
    writer = gathered.write.mode("overwrite").options(**_plain(RENTAL_TRANSACTIONS.name))
    writer.partitionBy("rental_date").parquet(path)


def stage_merged_transactions(
    spark: SparkSession, job: BatchJob, publication: Publication, batch_folder: str
) -> DataFrame:
    """Merge the batch's valid rentals (written by date to `batch_folder`) into the processed history.

    The merge is by rental_id, and the later batch wins. A date that only the batch has is published from
    `batch_folder` as it is; only dates that also hold older rentals, or lose one to the batch, are rebuilt in
    the staging folder. The returned frame is the whole history as it will be once the publication is committed.
    """
    target = job.path("processed", "rental_transactions")
    schema = struct_type(PROCESSED_SCHEMAS["rental_transactions"])
    batch = spark.read.schema(schema).parquet(batch_folder)
    if not hadoop_fs.exists(spark, target):
        publication.moves.append((batch_folder, target))
        return batch
    history = spark.read.schema(schema).parquet(target)
    batch_ids = batch.select("rental_id")
    replaced = history.join(batch_ids, "rental_id", "left_semi").select("rental_date").distinct()
    batch_days = _dates_in(spark, batch_folder)
    affected = batch_days | {str(row.rental_date) for row in replaced.collect()}
    rebuilt = sorted(affected & _dates_in(spark, target))
    for day in sorted(batch_days - set(rebuilt)):
        publication.moves.append((f"{batch_folder}/rental_date={day}", f"{target}/rental_date={day}"))
    new_history = history.where(~F.col("rental_date").isin(sorted(affected))) if affected else history
    new_history = new_history.unionByName(batch.where(~F.col("rental_date").isin(rebuilt)) if rebuilt else batch)
    if not rebuilt:
        return new_history
    merged = (
        history.where(F.col("rental_date").isin(rebuilt))
        .join(batch_ids, "rental_id", "left_anti")
        .unionByName(batch.where(F.col("rental_date").isin(rebuilt)))
    )
    staged = f"{publication.root}/processed/rental_transactions"
    _write_by_date(merged, staged)
    written = _dates_in(spark, staged)
    for day in rebuilt:
        partition = f"rental_date={day}"
        if day in written:
            publication.moves.append((f"{staged}/{partition}", f"{target}/{partition}"))
        else:
            # A date whose only rentals moved to another date must go, or they would count twice.
            publication.delete(f"{target}/{partition}")
    return new_history.unionByName(spark.read.schema(schema).parquet(staged))


def _dates_in(spark: SparkSession, folder: str) -> set[str]:
    """The dates of a folder's `rental_date=` partitions."""
    return hadoop_fs.partition_values(spark, folder, "rental_date")


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
    writes = []
    for name, frame in tables.items():
        staged = publication.stage(f"analytics/{name}", job.path("analytics", name))
        if name == USER_METRICS:
            # A row per user: as many rows as the history has users, written by the tasks that summed them.
            writes.append(partial(frame.write.mode("overwrite").parquet, staged))
        else:
            writes.append(partial(_write_table, frame, staged))
    side_by_side(writes)
    return int(summary["rentals"]) if summary else 0


def _stage_tables(
    spark: SparkSession,
    job: BatchJob,
    publication: Publication,
    reference_tags: Mapping[str, DataFrame],
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
    writes = []
    for name, frame in references.items():
        staged = publication.stage(f"processed/{name}", job.path("processed", name))
        writes.append(partial(_write_table, frame, staged, PROCESSED_PARTITIONS[name], name))

    # The tables are staged above, before the threads start: from here on only the merge and the analytics
    # change the publication, one after the other. The analytics need the merged history and the reference
    # frames, not their files, so they start while the reference tables are still being written.
    def merge_and_analyse() -> None:
        progress("merging rentals into the processed history")
        history = stage_merged_transactions(spark, job, publication, _batch_rentals(publication))
        progress("computing analytics tables")
        outcome.history_transactions = stage_analytics(job, publication, history, references)

    side_by_side([*writes, merge_and_analyse])
    outcome.succeeded = True
    outcome.message = (
        f"{outcome.valid_transactions} of {outcome.transaction_rows} transaction rows accepted; "
        f"analytics recomputed over {outcome.history_transactions} rentals"
    )


def _batch_rentals(publication: Publication) -> str:
    """Where a run writes its batch's valid rentals, by date, before they are merged into the history."""
    return f"{publication.root}/scratch/{RENTAL_TRANSACTIONS.name}"


def run_batch(spark: SparkSession, job: BatchJob, progress: Progress = _silent) -> BatchOutcome:
    """Run one batch end to end; nothing under processed/ or analytics/ changes when it fails.

    Every folder the run changes is staged and then published in one step (`platform.publication`): a run
    that is stopped leaves the previous tables, or tables that the next run finishes publishing first.
    """
    staging = job.path("tmp", "publish")
    recover(spark, staging, progress)
    publication = Publication(f"{staging}/{job.batch_id}")
    progress("reading the batch and applying the row rules")
    # Files only: the upload gate judges files, so a folder named like a dataset's file is none of the batch.
    present = set(hadoop_fs.list_file_names(spark, job.input_dir))

    raw = {
        d.name: read_dataset(
            spark, job.input_dir, d, present, job.facts(d.name), f"{publication.root}/scratch/narrow/{d.name}"
        )
        for d in DATASETS.values()
    }
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
    batch_rentals = _batch_rentals(publication)
    if job.counted_at_most(RENTAL_TRANSACTIONS.name, SMALL_DATASET_ROWS):
        # A few rentals are cached and counted with the reference datasets: one Spark job for all four.
        tagged = tagged.persist(StorageLevel.MEMORY_AND_DISK_DESER)
        side_by_side(
            [
                partial(_count_cached, {**reference_tags, RENTAL_TRANSACTIONS.name: tagged}, outcome),
                partial(_write_by_date, rules.processed_transactions(tagged, job.batch_id), batch_rentals),
            ]
        )
    else:
        # Many rentals are read and tagged once on the way to their processed form, and counted as they pass;
        # a second pass finds the rejected rows only when the counts say there are some.
        side_by_side(
            [
                partial(_count_cached, reference_tags, outcome),
                partial(_write_counted_rentals, tagged, job.batch_id, batch_rentals, outcome),
            ]
        )
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
            _stage_tables(spark, job, publication, reference_tags, outcome, progress)
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
