"""`rental-analytics run apartments`: extract, quality, transform, load and KPIs on a laptop, stage by stage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from rental_analytics.apartments import jobs, warehouse
from rental_analytics.apartments.contract import CURATED_SCHEMAS
from rental_analytics.apartments.quality import QualityRules
from rental_analytics.db_url import DatabaseUrl
from rental_analytics.progress import Progress


@dataclass
class ApartmentsRun:
    """How the run ended, and what each stage did."""

    succeeded: bool = False
    failed_stage: str | None = None
    message: str = ""
    lines: list[str] = field(default_factory=list)


def run_apartments(
    source: DatabaseUrl,
    target: DatabaseUrl,
    output: Path,
    load_date: date,
    progress: Progress,
    rules: QualityRules | None = None,
) -> ApartmentsRun:
    """Run the five jobs in order; stop at the first that fails and say which and why."""
    from rental_analytics.spark_session import local_session

    run = ApartmentsRun()
    zones = jobs.Zones(str(output.resolve()))
    progress("starting Spark (local mode)")
    spark = local_session("apartments")
    progress(f"extract from {source} for load date {load_date}")
    extracted = jobs.run_extract(spark, source, zones, load_date, progress=progress)
    run.lines.append("Extracted: " + ", ".join(f"{t} {n:,}" for t, n in extracted.rows.items()))
    checked = jobs.run_quality(spark, zones, load_date, f"{load_date}-{uuid.uuid4().hex[:8]}", rules, progress)
    run.lines.append(checked.message)
    if not checked.passed:
        run.failed_stage, run.message = "data quality", checked.message
        return run
    try:
        modelled = jobs.run_transform(spark, zones, load_date, progress)
    except jobs.ModelOrderError as error:
        run.failed_stage, run.message = "transform", str(error)
        return run
    run.lines.append("Model: " + ", ".join(f"{t} {n:,}" for t, n in modelled.items()))
    with warehouse.connect(spark, target, warehouse.POSTGRESQL) as connection:
        progress(f"load into {target} (schema {warehouse.SCHEMA})")
        applied = warehouse.migrate(connection)
        if applied:
            run.lines.append("Warehouse DDL applied: " + ", ".join(applied))
        curated = {name: zones.curated(name) for name in CURATED_SCHEMAS}
        loaded = warehouse.load_model(spark, target, connection, curated, load_date)
        run.lines.append("Loaded: " + ", ".join(f"{t} {n:,}" for t, n in loaded.items()))
        progress("refresh the KPI tables")
        kpis = warehouse.refresh_kpis(connection)
        run.lines.append("KPIs: " + ", ".join(f"{t} {n:,}" for t, n in kpis.items()))
    run.succeeded, run.message = True, f"load date {load_date} is in the warehouse"
    return run
