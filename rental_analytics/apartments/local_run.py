"""`rental-analytics run apartments`: extract, quality, transform, load and KPIs on a laptop, stage by stage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from rental_analytics.apartments import jobs, report, warehouse
from rental_analytics.apartments.contract import CURATED_SCHEMAS, ModelOrderError
from rental_analytics.apartments.db_url import DatabaseUrl
from rental_analytics.apartments.quality import QualityRules
from rental_analytics.platform.errors import as_stage_error
from rental_analytics.platform.progress import Progress, follow_spark
from rental_analytics.platform.run_lock import holding_run_lock


@dataclass
class ApartmentsRun:
    """How the run ended, and what each stage did."""

    succeeded: bool = False
    failed_stage: str | None = None
    stage: str = "start"  # the stage under way: what a failure names
    message: str = ""
    lines: list[str] = field(default_factory=list)
    report: Path | None = None  # the run's HTML page


def run_apartments(
    source: DatabaseUrl,
    target: DatabaseUrl,
    output: Path,
    load_date: date,
    progress: Progress,
    rules: QualityRules | None = None,
    full: bool = False,
) -> ApartmentsRun:
    """Run the five jobs in order; stop at the first that fails and say which and why. The page goes with it."""
    started = datetime.now(timezone.utc)
    run = ApartmentsRun()
    stages: dict[str, Any] = {"source": str(source), "warehouse": str(target), "output": str(output.resolve())}

    def write_page() -> None:
        summary = report.build_summary(
            load_date, run.succeeded, run.message, started, datetime.now(timezone.utc), stages, run.failed_stage
        )
        run.report = report.write_report(report.report_dir(output, load_date), summary)
        run.lines.append(f"Report: {run.report.resolve()}")

    try:
        # One run at a time per data root, as for car-rental: each job's recovery would drop a live run's staging.
        with holding_run_lock(output, f"apartments load date {load_date}", progress):
            _run_stages(run, stages, source, target, output, load_date, progress, rules, full)
    except Exception as error:
        # The page still says how far the run got and why it stopped; the command line reports the failure too.
        failure = as_stage_error(error, run.stage)
        run.failed_stage, run.message = failure.stage, failure.what
        write_page()
        raise failure from error
    write_page()
    return run


def _run_stages(
    run: ApartmentsRun,
    stages: dict[str, Any],
    source: DatabaseUrl,
    target: DatabaseUrl,
    output: Path,
    load_date: date,
    progress: Progress,
    rules: QualityRules | None,
    full: bool,
) -> None:
    """The stages, each noting in `stages` what the report shows of it."""
    from rental_analytics.platform.spark_session import local_session

    zones = jobs.Zones(str(output.resolve()))
    progress("starting Spark (local mode)")
    spark = local_session("apartments", log_dir=output / "logs")
    follow_spark(progress, spark)
    jobs.finish_publications(spark, zones, progress)
    run.stage = "checks"
    try:
        jobs.check_load_date(spark, zones, load_date)
        # Before anything is extracted: a warehouse that lost step with the curated zone would take this
        # date's model on top of a date it never recorded (or one that was undone).
        with warehouse.connect(spark, target, warehouse.POSTGRESQL) as connection:
            applied = warehouse.migrate(connection)
            if applied:
                run.lines.append("Warehouse DDL applied: " + ", ".join(applied))
            jobs.check_warehouse_agrees(spark, zones, warehouse.last_load_date(connection), load_date)
    except ModelOrderError as error:
        run.failed_stage, run.message = "checks", str(error)
        return
    run.stage = "extract"
    progress(f"extract from {source} for load date {load_date}")
    extracted = jobs.run_extract(spark, source, zones, load_date, full, progress=progress)
    stages["extracted"] = extracted.rows
    run.lines.append("Extracted: " + ", ".join(f"{t} {n:,}" for t, n in extracted.rows.items()))
    run.stage = "data quality"
    checked = jobs.run_quality(spark, zones, load_date, f"{load_date}-{uuid.uuid4().hex[:8]}", rules, progress)
    stages["quality"] = report.quality_summary(checked)
    run.lines.append(checked.message)
    if not checked.passed:
        run.failed_stage, run.message = "data quality", checked.message
        return
    run.stage = "transform"
    progress("transform: build the model")
    modelled = jobs.run_transform(spark, zones, load_date, progress)
    stages["model"] = modelled
    run.lines.append("Model: " + ", ".join(f"{t} {n:,}" for t, n in modelled.items()))
    run.stage = "load"
    progress(f"load into {target} (schema {warehouse.SCHEMA})")
    with warehouse.connect(spark, target, warehouse.POSTGRESQL) as connection:
        curated = {name: zones.curated(name) for name in CURATED_SCHEMAS}
        try:
            loaded = warehouse.load_model(spark, connection, curated, load_date)
        except ModelOrderError as error:
            run.failed_stage, run.message = "load", str(error)
            return
        stages["loaded"] = loaded.tables
        run.lines.append("Loaded: " + ", ".join(f"{t} {n:,}" for t, n in loaded.tables.items()))
        stages["kpi_rows"] = loaded.kpis
        stages["kpis"] = report.read_kpis(connection)
        run.lines.append("KPIs: " + ", ".join(f"{t} {n:,}" for t, n in loaded.kpis.items()))
    run.succeeded, run.message = True, f"load date {load_date} is in the warehouse"


def undo_last_load_date(target: DatabaseUrl, output: Path, progress: Progress) -> str:
    """`rental-analytics undo-apartments`: the warehouse, then the curated zone, as before the last load date.

    The plan is written down first, then the warehouse goes, in one transaction, then the curated zone. Every
    run refuses while the plan is there; the next `undo-apartments` finishes it (the warehouse's rewind can
    be repeated).
    """
    with holding_run_lock(output, "apartments undo", progress):
        return _undo_last_load_date(target, output, progress)


def _undo_last_load_date(target: DatabaseUrl, output: Path, progress: Progress) -> str:
    from rental_analytics.platform.spark_session import local_session

    zones = jobs.Zones(str(output.resolve()))
    progress("starting Spark (local mode)")
    spark = local_session("apartments-undo", log_dir=output / "logs")
    undo = jobs.plan_undo(spark, zones, progress)
    if not jobs.curated_restored(spark, zones, undo):  # else the warehouse was rewound before the stop
        progress(f"undo load date {undo.undone} in {target} (schema {warehouse.SCHEMA})")
        with warehouse.connect(spark, target, warehouse.POSTGRESQL) as connection:
            warehouse.migrate(connection)
            warehouse.load_model(spark, connection, jobs.backup_paths(zones), undo.back_to, rewind=True)
    progress(f"undo load date {undo.undone} in the curated zone")
    jobs.restore_backup(spark, zones, undo)
    return f"load date {undo.undone} is undone: the warehouse and the curated zone are as {undo.back_to} left them"
