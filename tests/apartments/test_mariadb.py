"""The apartments jobs against the real MariaDB server: extract, increments, quality, and the model over time."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pymysql
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from rental_analytics.apartments import jobs
from rental_analytics.apartments.contract import CURATED_SCHEMAS, SOURCE_TABLES
from rental_analytics.apartments.db_url import DatabaseUrl
from rental_analytics.apartments.extract import read_source_table
from rental_analytics.apartments.generate import (
    ChangeOptions,
    MarketplaceOptions,
    change_marketplace,
    generate_marketplace,
)

pytestmark = [pytest.mark.spark, pytest.mark.databases]

D1, D2, D3 = date(2024, 6, 1), date(2024, 6, 2), date(2024, 6, 3)


def _source_rows(url: DatabaseUrl, table: str) -> list[tuple]:
    connection = pymysql.connect(
        host=url.host, port=url.port, user=url.user, password=url.password, database=url.database
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {', '.join(SOURCE_TABLES[table].column_names)} FROM {table}")
            return [tuple(row) for row in cursor.fetchall()]
    finally:
        connection.close()


def _rows(spark, path: str, key: str) -> list[tuple]:
    frame = spark.read.parquet(path)
    # The extract's own columns: invalid_text (null for sound rows) and the source's location_class.
    columns = [c for c in frame.columns if c not in ("invalid_text", "location_class")]
    return [tuple(r) for r in frame.select(columns).orderBy(key).collect()]


def test_extract_copies_every_table_in_parallel_key_ranges(spark, source, tmp_path: Path):
    generate_marketplace(source, MarketplaceOptions(apartments=200))
    zones = jobs.Zones(str(tmp_path))
    outcome = jobs.run_extract(spark, source, zones, D1, partitions=4)

    for name, table in SOURCE_TABLES.items():
        extracted = _rows(spark, jobs.partition(zones.raw(name), D1), table.key)
        assert extracted == sorted(_source_rows(source, name)), name
        assert outcome.rows[name] == len(extracted)
    assert read_source_table(spark, source, SOURCE_TABLES["bookings"], None, 4).rdd.getNumPartitions() == 4
    raw = spark.read.parquet(zones.raw("bookings"))
    assert raw.select("load_date").distinct().collect()[0].load_date == D1


def test_increments_start_above_the_last_load_and_reruns_replace_their_partition(spark, source, tmp_path: Path):
    generate_marketplace(source, MarketplaceOptions(apartments=200))
    zones = jobs.Zones(str(tmp_path))
    jobs.run_extract(spark, source, zones, D1)
    assert jobs.run_quality(spark, zones, D1, "run-1").passed
    before = {row[0] for row in _source_rows(source, "bookings")}
    change_marketplace(source, ChangeOptions(as_of=D2))
    added = sorted(row for row in _source_rows(source, "bookings") if row[0] not in before)

    second = jobs.run_extract(spark, source, zones, D2)
    again = jobs.run_extract(spark, source, zones, D2)

    assert second.watermarks["bookings"] == max(before)
    assert _rows(spark, jobs.partition(zones.raw("bookings"), D2), "booking_id") == added
    assert again.rows == second.rows
    bookings = spark.read.parquet(zones.raw("bookings"))
    assert bookings.count() == len(before) + len(added)  # the re-run replaced D2, it did not add to it
    assert jobs.run_extract(spark, source, zones, D3, full=True).rows["bookings"] == len(before) + len(added)


def _execute(url: DatabaseUrl, statement: str) -> None:
    connection = pymysql.connect(
        host=url.host, port=url.port, user=url.user, password=url.password, database=url.database, autocommit=True
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


def test_rows_of_a_load_date_that_breached_the_checks_are_extracted_again_by_the_next(spark, source, tmp_path: Path):
    generate_marketplace(source, MarketplaceOptions(apartments=200, bad_share=0.0))
    zones = jobs.Zones(str(tmp_path))
    jobs.run_extract(spark, source, zones, D1)
    assert jobs.run_quality(spark, zones, D1, "run-1").passed
    first = {row[0] for row in _source_rows(source, "bookings")}
    # D2 brings 50 bookings with negative amounts: a breach, and D2 loads nothing.
    _execute(
        source,
        "INSERT INTO bookings SELECT booking_id + 100000, apartment_id, user_id, start_date, end_date, -total_amount "
        "FROM bookings ORDER BY booking_id LIMIT 50",
    )
    jobs.run_extract(spark, source, zones, D2)
    assert not jobs.run_quality(spark, zones, D2, "run-2").passed
    _execute(source, "UPDATE bookings SET total_amount = -total_amount WHERE booking_id > 100000")  # fixed

    third = jobs.run_extract(spark, source, zones, D3)
    assert third.watermarks["bookings"] == max(first)
    assert third.rows["bookings"] == 50
    assert jobs.run_quality(spark, zones, D3, "run-3").passed
    processed = spark.read.parquet(zones.processed("bookings"))
    assert processed.count() == len(first) + 50 == processed.select("booking_id").distinct().count()


def test_quality_quarantines_each_broken_row_with_its_reason(spark, source, tmp_path: Path):
    generated = generate_marketplace(source, MarketplaceOptions(apartments=400, bad_share=0.0025))
    zones = jobs.Zones(str(tmp_path))
    jobs.run_extract(spark, source, zones, D1)
    outcome = jobs.run_quality(spark, zones, D1, "run-1")

    quarantined: Counter[str] = Counter()
    for name in SOURCE_TABLES:
        for row in spark.read.parquet(jobs.partition(zones.quarantine(name), D1)).groupBy("reason").count().collect():
            quarantined[f"{name}.{row.reason}"] = row["count"]
    for key, count in generated.broken.items():
        assert quarantined[key] == count, key
    assert not outcome.passed
    assert outcome.message.startswith("Data Quality Breach: apartments completeness is 97.5000% (10 of 400 rows fail)")


def test_a_breach_writes_its_metrics_and_no_processed_rows(spark, source, tmp_path: Path):
    generate_marketplace(source, MarketplaceOptions(apartments=300, bad_share=0.01))
    zones = jobs.Zones(str(tmp_path))
    jobs.run_extract(spark, source, zones, D1)
    outcome = jobs.run_quality(spark, zones, D1, "run-breach")

    assert {(m.table, m.metric) for m in outcome.breaches} >= {("apartments", "accuracy"), ("bookings", "accuracy")}
    for name in SOURCE_TABLES:
        assert not (tmp_path / "processed" / "apartments" / name / "load_date=2024-06-01").exists()
    results = spark.read.parquet(zones.dq_results).filter("run_id = 'run-breach'")
    assert results.count() == len(outcome.metrics) == 10
    failed = {(r.table_name, r.metric) for r in results.filter("NOT passed").collect()}
    assert failed == {(m.table, m.metric) for m in outcome.breaches}


def _pipeline(spark, source: DatabaseUrl, zones: jobs.Zones, load_date: date) -> None:
    jobs.run_extract(spark, source, zones, load_date)
    outcome = jobs.run_quality(spark, zones, load_date, f"run-{load_date}")
    assert outcome.passed, outcome.message
    jobs.run_transform(spark, zones, load_date)


def _curated(spark, zones: jobs.Zones) -> dict[str, object]:
    return {name: spark.read.parquet(zones.curated(name)).localCheckpoint() for name in CURATED_SCHEMAS}


def test_three_load_dates_build_a_model_that_a_rerun_leaves_alone(spark, source, tmp_path: Path):
    generate_marketplace(source, MarketplaceOptions(apartments=300, bad_share=0))
    zones = jobs.Zones(str(tmp_path))
    _pipeline(spark, source, zones, D1)
    first = change_marketplace(source, ChangeOptions(seed=1, as_of=D2))
    _pipeline(spark, source, zones, D2)
    change_marketplace(source, ChangeOptions(seed=2, as_of=D3))
    _pipeline(spark, source, zones, D3)
    after_d3 = _curated(spark, zones)
    _pipeline(spark, source, zones, D3)
    rerun = _curated(spark, zones)

    for name in CURATED_SCHEMAS:
        assertDataFrameEqual(rerun[name], after_d3[name])
    apartments = rerun["dim_apartments"]
    assert apartments.select("apartment_key").distinct().count() == apartments.count()
    assert apartments.filter("is_current").groupBy("apartment_id").count().filter("count > 1").count() == 0
    assert apartments.filter("end_date < effective_date").count() == 0
    # The apartments deleted before D2 are closed the day before D2 and have no current version.
    live = {row[0] for row in _source_rows(source, "apartments")}
    current = {r.apartment_id for r in apartments.filter("is_current").collect()}
    assert current <= live
    closed_on_d2 = apartments.filter(F.col("end_date") == F.lit(D1)).count()
    assert closed_on_d2 >= first.rows["deleted"] + first.rows["price_changed"]
    # Every booking carries the version in effect on its start date, when one is.
    chosen = rerun["fact_bookings"].join(apartments.select("apartment_key", "apartment_id"), "apartment_key")
    covering = apartments.select(
        "apartment_id", F.col("apartment_key").alias("covering_key"), "effective_date", "end_date"
    )
    in_effect = chosen.join(covering, "apartment_id").filter(
        (F.col("booking_date") >= F.col("effective_date"))
        & (F.col("end_date").isNull() | (F.col("booking_date") <= F.col("end_date")))
    )
    assert in_effect.count() > 0
    assert in_effect.filter(F.col("covering_key") != F.col("apartment_key")).count() == 0
    assert rerun["fact_bookings"].filter(F.col("apartment_key").isNull() | F.col("user_key").isNull()).count() == 0


def test_an_older_load_date_is_refused_before_it_is_extracted(spark, source, tmp_path: Path):
    generate_marketplace(source, MarketplaceOptions(apartments=50, bad_share=0))
    zones = jobs.Zones(str(tmp_path))
    _pipeline(spark, source, zones, D2)
    with pytest.raises(jobs.ModelOrderError, match="2024-06-02"):
        jobs.run_extract(spark, source, zones, D1)
    assert not (tmp_path / "raw" / "apartments" / "bookings" / "load_date=2024-06-01").exists()


def test_the_generate_command_fills_and_then_changes_the_source(source, capsys):
    from rental_analytics.cli import main

    url = str(source)  # the server takes no password
    common = ["generate", "apartments", "--mysql-url", url, "--as-of", "2024-06-01"]
    assert main([*common, "--apartments", "120", "--bookings", "500", "--bad-share", "0.01"]) == 0
    assert len(_source_rows(source, "bookings")) == 500
    assert "Rows broken on purpose: apartment_attributes.missing_required" in capsys.readouterr().out
    assert main([*common, "--change", "--seed", "3"]) == 0
    assert len(_source_rows(source, "bookings")) == 525
    assert "price_changed 11" in capsys.readouterr().out
    assert main(["generate", "apartments", "--mysql-url", "oracle://x@y/z"]) == 2
