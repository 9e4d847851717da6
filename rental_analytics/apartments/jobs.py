"""The apartments jobs that read and write the zones: extract, data quality and transform (the model)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from rental_analytics.apartments import model, quality
from rental_analytics.apartments.contract import (
    APARTMENTS,
    BOOKINGS,
    CURATED_SCHEMAS,
    DQ_RESULTS_SCHEMA,
    LOCATION_CLASS,
    SOURCE_TABLES,
    USER_VIEWING,
    ModelOrderError,
    SourceTable,
)
from rental_analytics.apartments.db_url import DatabaseUrl
from rental_analytics.apartments.extract import max_key, read_source_table
from rental_analytics.platform import hadoop_fs
from rental_analytics.platform.progress import Progress
from rental_analytics.platform.publication import Publication, commit, recover
from rental_analytics.platform.unusual import Finding, UnusualDataRule, check_all


def _silent(_: str) -> None:
    """No progress display."""


@dataclass(frozen=True)
class Zones:
    """Where the apartments pipeline keeps its data: a local folder or an `s3://bucket` root."""

    root: str

    def _path(self, zone: str, table: str) -> str:
        return f"{self.root.rstrip('/')}/{zone}/apartments/{table}"

    def raw(self, table: str) -> str:
        """Extracted rows, one `load_date=` partition per run."""
        return self._path("raw", table)

    def processed(self, table: str) -> str:
        """Rows that passed the quality rules, one partition per run."""
        return self._path("processed", table)

    def quarantine(self, table: str) -> str:
        """Rows that failed, with their reason, one partition per run."""
        return self._path("quarantine", table)

    def curated(self, table: str) -> str:
        """The dimensional model."""
        return f"{self.root.rstrip('/')}/curated/{table}"

    @property
    def dq_results(self) -> str:
        """Every run's quality metrics."""
        return self.processed("dq_results")

    @property
    def applied(self) -> str:
        """The load dates the curated model holds, published with it: what decides the order of load dates."""
        return self.curated("_load_history")

    def backup(self, table: str) -> str:
        """A curated table as it was before the last applied load date: what `undo apartments` restores."""
        return self.curated(f"_undo/{table}")

    @property
    def undo_pending(self) -> str:
        """The undo under way, written before the warehouse is rewound and removed once the curated zone is too."""
        return self.backup("_PENDING.json")

    @property
    def staging(self) -> str:
        """Where a job builds the folders it publishes in one step (`platform.publication`).

        Under curated/, which the jobs' role may write and whose `_next/` the bucket's lifecycle expires.
        """
        return self.curated("_next")

    @property
    def legacy_staging(self) -> str:
        """Where versions before `staging` staged their publications: finished and removed by the next job."""
        return f"{self.root.rstrip('/')}/tmp/apartments/publish"

    @property
    def local(self) -> bool:
        """True for a folder on this machine, False for an `s3://` (or other URI) root."""
        return "://" not in self.root or self.root.startswith("file:")


APPLIED_SCHEMA = "load_date date"


def finish_publications(spark: SparkSession, zones: Zones, progress: Progress) -> None:
    """Finish (or drop) what a stopped job was publishing, before anything reads the zones it changes.

    Earlier versions staged under `tmp/apartments/publish/` (journals hold whole paths, so recovery finishes
    them where they are). Only a local data root can hold one: in AWS the jobs' role never could write there,
    and may not even look there now.
    """
    if zones.local:
        recover(spark, zones.legacy_staging, progress)
        hadoop_fs.delete(spark, zones.legacy_staging)
    recover(spark, zones.staging, progress)


def _load_dates(spark: SparkSession, path: str) -> list[date]:
    if not hadoop_fs.exists(spark, path):
        return []
    return sorted(row["load_date"] for row in spark.read.parquet(path).collect())


def applied_load_dates(spark: SparkSession, zones: Zones) -> list[date]:
    """The load dates the curated model was built from, oldest first."""
    return _load_dates(spark, zones.applied)


def check_load_date(spark: SparkSession, zones: Zones, load_date: date, today: date | None = None) -> None:
    """Refuse a load date older than the last one applied, or later than tomorrow in UTC (a typo, not a plan).

    Tomorrow is allowed: a marketplace east of UTC is already there.
    """
    today = today or datetime.now(timezone.utc).date()
    if load_date > today + timedelta(days=1):
        raise ModelOrderError(f"load date {load_date} is in the future (today is {today} in UTC)")
    applied = applied_load_dates(spark, zones)
    if applied and applied[-1] > load_date:
        raise ModelOrderError(
            f"load date {applied[-1]} is already applied; {load_date} is older and cannot be applied "
            "(`rental-analytics undo-apartments` takes back the last applied date)"
        )


def check_warehouse_agrees(spark: SparkSession, zones: Zones, warehouse_last: date | None, load_date: date) -> None:
    """Refuse `load_date` while the warehouse's `max(load_history)` and the curated zone disagree on what was applied.

    The warehouse must hold the curated zone's last date before `load_date` (or `load_date` itself, a re-run).
    They part when an undo is stopped between its two commits, or a load fails after the transform published.
    """
    pending = read_pending_undo(spark, zones)
    if pending is not None:
        raise ModelOrderError(
            f"the undo of load date {pending.undone} was stopped half way: "
            "run `rental-analytics undo-apartments` to finish it"
        )
    applied = applied_load_dates(spark, zones)
    before = [day for day in applied if day < load_date]
    expected = before[-1] if before else None
    if warehouse_last in (expected, load_date):
        return
    if warehouse_last is not None and (expected is None or warehouse_last > expected):
        fix = f"run `rental-analytics run apartments --load-date {warehouse_last}` to apply it to the curated zone"
    elif expected is not None and applied[-1] > expected:  # a later date was published on top
        fix = f"run `rental-analytics undo-apartments`, then load date {applied[-1]} again"
    else:
        fix = f"run `rental-analytics run apartments --load-date {expected}` again to load it"
    raise ModelOrderError(
        f"the curated zone has applied load date {expected} but the warehouse's load_history ends at "
        f"{warehouse_last or 'no load date'}: {fix}"
    )


def partition(table_path: str, load_date: date) -> str:
    """One load date's folder of a zone table."""
    return f"{table_path}/load_date={load_date.isoformat()}"


def _empty(spark: SparkSession, schema: str) -> DataFrame:
    return spark.createDataFrame([], schema)


def _read_or_empty(spark: SparkSession, path: str, schema: str) -> DataFrame:
    return spark.read.parquet(path) if hadoop_fs.exists(spark, path) else _empty(spark, schema)


@dataclass
class ExtractOutcome:
    """Rows extracted per table, and where each incremental table started."""

    rows: dict[str, int] = field(default_factory=dict)
    watermarks: dict[str, int | None] = field(default_factory=dict)


def run_extract(
    spark: SparkSession,
    source: DatabaseUrl,
    zones: Zones,
    load_date: date,
    full: bool = False,
    partitions: int = 8,
    progress: Progress = _silent,
) -> ExtractOutcome:
    """RDS_TO_S3_job: snapshots of apartments and attributes, increments of viewings and bookings.

    Each table lands in its `load_date=` partition of the raw zone, replacing what a previous run of the same
    load date put there.
    """
    finish_publications(spark, zones, progress)
    check_load_date(spark, zones, load_date)
    outcome = ExtractOutcome()
    for table in SOURCE_TABLES.values():
        watermark = None
        if table.incremental and not full:
            watermark = _watermark(spark, zones, table, load_date)
        target = partition(zones.raw(table.name), load_date)
        read_source_table(spark, source, table, watermark, partitions).write.mode("overwrite").parquet(target)
        outcome.rows[table.name] = spark.read.parquet(target).count()
        outcome.watermarks[table.name] = watermark
        since = "all rows" if watermark is None else f"above {table.key} {watermark}"
        progress(f"extract: {table.name} {outcome.rows[table.name]:,} rows ({since})")
    return outcome


def _watermark(spark: SparkSession, zones: Zones, table: SourceTable, load_date: date) -> int | None:
    """Where an increment starts: above every row that earlier load dates' quality checks passed or quarantined.

    Only dates that passed count: rows of a run that breached the checks, or was stopped before they ended,
    are extracted again by the next load date rather than skipped for good. A quarantined row of a passed
    date counts too, or the highest id, failing, would be read (and fail) again by every later increment.
    """
    passed = sorted(hadoop_fs.partition_values(spark, zones.processed(table.name), "load_date"))
    if not passed:
        return None
    keys = spark.read.parquet(zones.processed(table.name)).select(table.key, "load_date")
    if hadoop_fs.exists(spark, zones.quarantine(table.name)):
        quarantined = spark.read.parquet(zones.quarantine(table.name)).select(table.key, "load_date")
        keys = keys.unionByName(quarantined.filter(F.col("load_date").cast("string").isin(*passed)))
    return max_key(keys, table, load_date)


@dataclass
class QualityOutcome:
    """Every metric of the run, and the breaches among them."""

    run_id: str
    metrics: list[quality.QualityMetric] = field(default_factory=list)
    quarantined: dict[str, int] = field(default_factory=dict)
    unusual: list[Finding] = field(default_factory=list)
    refused: str | None = None  # why the load date may not go on although no metric breached

    @property
    def breaches(self) -> list[quality.QualityMetric]:
        """Metrics below their threshold."""
        return [m for m in self.metrics if not m.passed]

    @property
    def passed(self) -> bool:
        """True when no metric is below its threshold and nothing refused the load date."""
        return not self.breaches and self.refused is None

    @property
    def message(self) -> str:
        """The alert text: "Data Quality Breach" and each breached metric, or a one-line all-clear."""
        if self.passed:
            return f"data quality passed: {len(self.metrics)} metrics at or above their thresholds"
        reasons = [m.describe() for m in self.breaches] + ([self.refused] if self.refused else [])
        return "Data Quality Breach: " + "; ".join(reasons)


def publish_quality_metrics(cloudwatch: Any, namespace: str, outcome: QualityOutcome) -> None:
    """Breaches and every metric's value as CloudWatch metrics: the "Data Quality Breach" alarm watches them."""
    data = [
        {"MetricName": "DataQualityBreaches", "Value": float(len(outcome.breaches)), "Unit": "Count"},
        {"MetricName": "UnusualDataFindings", "Value": float(len(outcome.unusual)), "Unit": "Count"},
    ]
    data += [
        {
            "MetricName": "DataQuality",
            "Dimensions": [{"Name": "Table", "Value": m.table}, {"Name": "Metric", "Value": m.metric}],
            "Value": m.value,
            "Unit": "None",
        }
        for m in outcome.metrics
    ]
    for start in range(0, len(data), 20):  # PutMetricData takes up to 20 values per call here
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + 20])


def _known_apartments(spark: SparkSession, zones: Zones, snapshot: DataFrame) -> DataFrame:
    """What references may point at: the source snapshot's apartments and every apartment the model has known.

    A row's own quality does not matter here (consistency is referential integrity against the source), and
    a booking of a since-deleted apartment still resolves.
    """
    known = snapshot.select("apartment_id").where(F.col("apartment_id").isNotNull())
    dim = zones.curated("dim_apartments")
    if hadoop_fs.exists(spark, dim):
        known = known.unionByName(spark.read.parquet(dim).select("apartment_id"))
    return known.distinct()


def run_quality(
    spark: SparkSession,
    zones: Zones,
    load_date: date,
    run_id: str,
    rules: quality.QualityRules | None = None,
    progress: Progress = _silent,
) -> QualityOutcome:
    """Check one load date's raw partitions; quarantine failing rows and append the metrics to dq_results.

    The processed and quarantine partitions are published together, and only when no metric breaches its
    threshold (a breach on a date never checked before publishes its quarantine alone). A breach never takes
    away what an earlier run of the same date passed: the model, and the next increment, still stand on it.
    """
    rules = rules or quality.QualityRules()
    finish_publications(spark, zones, progress)
    check_load_date(spark, zones, load_date)
    outcome = QualityOutcome(run_id)
    tagged: dict[str, DataFrame] = {}
    known: DataFrame | None = None
    publication = Publication(f"{zones.staging}/quality-{load_date}")
    checked_before = hadoop_fs.exists(spark, partition(zones.processed(APARTMENTS.name), load_date))
    for table in SOURCE_TABLES.values():
        rows = spark.read.parquet(partition(zones.raw(table.name), load_date))
        tagged[table.name] = quality.tag_rows(rows, table, load_date, rules, known).cache()
        if table is APARTMENTS:
            known = _known_apartments(spark, zones, rows).cache()
        outcome.metrics += quality.measure(tagged[table.name], table, rules)
        staged = publication.stage(f"quarantine/{table.name}", partition(zones.quarantine(table.name), load_date))
        quality.failing(tagged[table.name]).write.mode("overwrite").parquet(staged)
        outcome.quarantined[table.name] = spark.read.parquet(staged).count()
        progress(f"quality: {table.name} {outcome.quarantined[table.name]:,} rows quarantined")
    if not rules.allow_empty_apartments and outcome.metrics and _emptied(spark, zones, outcome.metrics):
        outcome.refused = (
            "the apartments extract is empty and would close every apartment of the model; "
            "if the marketplace really has none left, run again with --allow-empty-apartments"
        )
    outcome.unusual = _unusual_row_counts(spark, zones, load_date, outcome.metrics)
    for finding in outcome.unusual:
        progress(f"quality: WARNING unusual data: {finding.describe()}")
    results = [
        (run_id, m.table, m.metric, m.value, m.threshold, m.passed, m.rows, m.failed_rows, load_date)
        for m in outcome.metrics
    ]
    spark.createDataFrame(results, DQ_RESULTS_SCHEMA).coalesce(1).write.mode("append").partitionBy("load_date").parquet(
        zones.dq_results
    )
    if outcome.passed:
        for table in SOURCE_TABLES.values():
            target = partition(zones.processed(table.name), load_date)
            quality.passing(tagged[table.name]).write.mode("overwrite").parquet(
                publication.stage(f"processed/{table.name}", target)
            )
    for frame in [*tagged.values(), *([known] if known is not None else [])]:
        frame.unpersist()
    if outcome.passed or not checked_before:
        commit(spark, publication)
    else:
        # The partitions an earlier run passed stay as they were, quarantine included: the next increment's
        # starting id is read from both.
        hadoop_fs.delete(spark, publication.root)
    progress(f"quality: {outcome.message}")
    return outcome


def _emptied(spark: SparkSession, zones: Zones, metrics: list[quality.QualityMetric]) -> bool:
    """True when the apartments snapshot has no rows while the model has current apartments."""
    extracted = next(m.rows for m in metrics if m.table == APARTMENTS.name)
    dim = zones.curated("dim_apartments")
    return extracted == 0 and hadoop_fs.exists(spark, dim) and spark.read.parquet(dim).filter("is_current").count() > 0


def _unusual_row_counts(
    spark: SparkSession, zones: Zones, load_date: date, metrics: list[quality.QualityMetric]
) -> list[Finding]:
    """Each table's extracted rows against the earlier load dates' counts, as recorded in dq_results."""
    today = {m.table: float(m.rows) for m in metrics}
    if not hadoop_fs.exists(spark, zones.dq_results):
        return []
    earlier = (
        spark.read.parquet(zones.dq_results)
        .filter(F.col("load_date") < F.lit(load_date).cast("date"))
        .groupBy("load_date", "table_name")
        .agg(F.max("rows").alias("rows"))
        .collect()
    )
    by_date: dict[date, dict[str, float]] = {}
    for row in earlier:
        by_date.setdefault(row["load_date"], {})[row["table_name"]] = float(row["rows"])
    return check_all([by_date[day] for day in sorted(by_date)], today, UnusualDataRule())


def _history(spark: SparkSession, zones: Zones, table: str, key: str, load_date: date) -> DataFrame:
    rows = spark.read.parquet(zones.processed(table)).filter(F.col("load_date") <= F.lit(load_date).cast("date"))
    return model.latest_rows(rows, key)


def _quarantined_apartments(spark: SparkSession, zones: Zones, load_date: date) -> DataFrame | None:
    """The apartment ids of the load date's quarantined apartment rows: held, not deleted."""
    path = partition(zones.quarantine(APARTMENTS.name), load_date)
    if not hadoop_fs.exists(spark, path):
        return None
    return spark.read.parquet(path).select("apartment_id").where(F.col("apartment_id").isNotNull()).distinct()


def run_transform(spark: SparkSession, zones: Zones, load_date: date, progress: Progress = _silent) -> dict[str, int]:
    """Build the curated model from the processed zone as of one load date; returns the rows per table."""
    finish_publications(spark, zones, progress)
    check_load_date(spark, zones, load_date)
    applied = applied_load_dates(spark, zones)
    previous = {
        name: _read_or_empty(spark, zones.curated(name), schema).cache() for name, schema in CURATED_SCHEMAS.items()
    }
    snapshot = spark.read.parquet(partition(zones.processed(APARTMENTS.name), load_date))
    snapshot = snapshot.withColumn(LOCATION_CLASS, model.location_class(snapshot))
    locations, location_keys = model.extend_locations(
        previous["dim_locations"], snapshot.select(F.col("location").alias("location_name"), LOCATION_CLASS)
    )
    keyed_snapshot = snapshot.join(location_keys, LOCATION_CLASS).select(
        "apartment_id", "location_key", F.col("price").alias("current_price"), "status"
    )
    bookings = _history(spark, zones, BOOKINGS.name, BOOKINGS.key, load_date)
    viewings = _history(spark, zones, USER_VIEWING.name, USER_VIEWING.key, load_date)
    apartments = model.scd2_apartments(
        previous["dim_apartments"], keyed_snapshot, load_date, _quarantined_apartments(spark, zones, load_date)
    ).cache()
    users = model.extend_dimension(
        previous["dim_users"],
        bookings.select("user_id").unionByName(viewings.select("user_id")),
        "user_key",
        "user_id",
    ).cache()
    facts = {
        "fact_bookings": model.fact_bookings(bookings, apartments, users, previous["fact_bookings"]).cache(),
        "fact_viewings": model.fact_viewings(viewings, apartments, users, previous["fact_viewings"]).cache(),
    }
    # Only what the model refers to: a location or user that a corrected source no longer has leaves with it.
    tables = {
        "dim_locations": locations.join(apartments.select("location_key"), "location_key", "left_semi"),
        "dim_users": users.join(
            facts["fact_bookings"].select("user_key").unionByName(facts["fact_viewings"].select("user_key")),
            "user_key",
            "left_semi",
        ),
        "dim_apartments": apartments,
        **facts,
    }
    # A new load date keeps the model it replaces, for `undo apartments`; a re-run keeps the backup it has.
    forward = not applied or applied[-1] < load_date
    publication = Publication(f"{zones.staging}/transform-{load_date}")
    counts: dict[str, int] = {}
    for name, frame in tables.items():
        backup = zones.backup(name) if forward else None
        staged = publication.stage(name, zones.curated(name), backup)
        frame.write.mode("overwrite").parquet(staged)
        counts[name] = spark.read.parquet(staged).count()
        progress(f"transform: {name} {counts[name]:,} rows")
    history = spark.createDataFrame([(day,) for day in sorted({*applied, load_date})], APPLIED_SCHEMA)
    history.coalesce(1).write.mode("overwrite").parquet(
        publication.stage("_load_history", zones.applied, zones.backup("_load_history") if forward else None)
    )
    for frame in [*previous.values(), apartments, users, *facts.values()]:
        frame.unpersist()
    # Every table is staged before any replaces its predecessor, and the journal lets the next job finish
    # a publication that was stopped half way.
    commit(spark, publication)
    return counts


@dataclass(frozen=True)
class Undo:
    """Taking back the last applied load date: the model goes back to the one `back_to` left."""

    undone: date
    back_to: date


def read_pending_undo(spark: SparkSession, zones: Zones) -> Undo | None:
    """The undo that was stopped before the curated zone was restored, if any."""
    text = hadoop_fs.read_text(spark, zones.undo_pending)
    if not text:
        return None  # none, or cut short while being written: the warehouse was not touched yet
    pending = json.loads(text)
    return Undo(date.fromisoformat(pending["undone"]), date.fromisoformat(pending["back_to"]))


def plan_undo(spark: SparkSession, zones: Zones, progress: Progress = _silent) -> Undo:
    """Which load date an undo takes back, refused when the curated zone keeps no model from before it.

    An undo stopped half way is taken up again; otherwise the plan is written down before the warehouse is
    rewound, so that a stop between the two commits is noticed by every later run.
    """
    finish_publications(spark, zones, progress)
    pending = read_pending_undo(spark, zones)
    if pending is not None:
        progress(f"finishing the interrupted undo of load date {pending.undone}")
        return pending
    applied = applied_load_dates(spark, zones)
    before = _load_dates(spark, zones.backup("_load_history"))
    if not applied or not before or before[-1] >= applied[-1]:
        last = applied[-1] if applied else "no load date"
        raise ModelOrderError(
            f"{last} cannot be undone: the curated zone keeps the model of the load date before the last one only, "
            "once, and not before the first"
        )
    undo = Undo(applied[-1], before[-1])
    record = {"undone": undo.undone.isoformat(), "back_to": undo.back_to.isoformat()}
    hadoop_fs.write_text(spark, zones.undo_pending, json.dumps(record))
    return undo


def backup_paths(zones: Zones) -> dict[str, str]:
    """The curated tables as they were before the last applied load date."""
    return {name: zones.backup(name) for name in CURATED_SCHEMAS}


def curated_restored(spark: SparkSession, zones: Zones, undo: Undo) -> bool:
    """True when the curated zone is back at `undo.back_to`: an undo stopped after its last commit."""
    return applied_load_dates(spark, zones)[-1] != undo.undone


def restore_backup(spark: SparkSession, zones: Zones, undo: Undo) -> None:
    """Publish the model kept from before `undo.undone` and remove that date's checked and quarantined rows.

    Without them the next extract starts its increments where `undo.back_to` left them, and the undone date
    can be run again.
    """
    publication = Publication(f"{zones.staging}/undo-{undo.undone}")
    if not curated_restored(spark, zones, undo):
        for name in [*CURATED_SCHEMAS, "_load_history"]:
            publication.moves.append((zones.backup(name), zones.curated(name)))
        for table in SOURCE_TABLES.values():
            publication.delete(partition(zones.processed(table.name), undo.undone))
            publication.delete(partition(zones.quarantine(table.name), undo.undone))
        commit(spark, publication)
    hadoop_fs.delete(spark, zones.undo_pending)
