"""Every commit of the apartments pipeline is atomic, and load dates move forward by what was applied."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from rental_analytics.apartments import jobs, warehouse
from rental_analytics.apartments.contract import CURATED_SCHEMAS, SOURCE_TABLES
from rental_analytics.platform import hadoop_fs
from tests.apartments.test_model import key
from tests.apartments.test_warehouse import MODEL, load, rows, target, write_model  # noqa: F401

pytestmark = pytest.mark.spark

D1, D2, D3 = date(2024, 6, 1), date(2024, 6, 2), date(2024, 6, 3)
T0 = "2024-01-01 00:00:00"


class Killed(BaseException):
    """A kill -9 at a commit step: nothing after it runs, not even `except Exception`."""


def write_zone(spark, path: str, table: str, data: Sequence[tuple]) -> None:
    """One load date's rows of a source table, as the extract (raw) or the quality job (processed) lands them."""
    schema = ", ".join(f"{name} {kind}" for name, kind in SOURCE_TABLES[table].spark_schema)
    spark.createDataFrame(list(data), schema).write.mode("overwrite").parquet(path)


def checked(spark, zones: jobs.Zones, day: date, apartments: Sequence[tuple], bookings: Sequence[tuple] = ()) -> None:
    """A load date that passed data quality: its processed partitions (no attributes, no viewings)."""
    tables = {"apartments": apartments, "apartment_attributes": [], "user_viewing": [], "bookings": bookings}
    for table, data in tables.items():
        write_zone(spark, jobs.partition(zones.processed(table), day), table, data)


def apartment(apartment_id: int, location: str, price: str, status: str = "active") -> tuple:
    from datetime import datetime

    return (apartment_id, location, Decimal(price), status, datetime.fromisoformat(T0))


def booking(booking_id: int, apartment_id: int, user_id: int, start: date, nights: int, amount: str) -> tuple:
    return (booking_id, apartment_id, user_id, start, start + timedelta(days=nights), Decimal(amount))


def curated(spark, zones: jobs.Zones) -> dict[str, object]:
    return {name: spark.read.parquet(zones.curated(name)).localCheckpoint() for name in CURATED_SCHEMAS}


def kill_at(monkeypatch, step: int) -> None:
    """Kill the job inside its `step`-th folder move, after the target is deleted and before the rename."""
    real = hadoop_fs.replace
    calls = []

    def replace(spark, source: str, target_path: str) -> None:
        calls.append(target_path)
        if len(calls) == step:
            hadoop_fs.delete(spark, target_path)
            raise Killed(target_path)
        real(spark, source, target_path)

    monkeypatch.setattr(hadoop_fs, "replace", replace)


def test_a_transform_killed_while_publishing_is_finished_by_the_next_job(spark, tmp_path: Path, monkeypatch):
    zones = jobs.Zones(str(tmp_path))
    checked(spark, zones, D1, [apartment(1, "Accra", "100"), apartment(2, "Lagos", "80")])
    jobs.run_transform(spark, zones, D1)
    day2 = [apartment(1, "Accra", "120"), apartment(2, "Lagos", "80")]
    checked(spark, zones, D2, day2, [booking(10, 1, 501, D2, 2, "240")])
    kill_at(monkeypatch, 3)
    with pytest.raises(Killed):
        jobs.run_transform(spark, zones, D2)
    monkeypatch.undo()

    jobs.run_transform(spark, zones, D2)  # the re-run: it finds the model of D2, not a model with a table gone
    model = curated(spark, zones)
    expected = spark.createDataFrame(
        [
            (key(1, D1), 1, 1, Decimal("100.00"), "active", D1, D1, False),
            (key(2, D1), 2, 2, Decimal("80.00"), "active", D1, None, True),
            (key(1, D2), 1, 1, Decimal("120.00"), "active", D2, None, True),
        ],
        CURATED_SCHEMAS["dim_apartments"],
    )
    assertDataFrameEqual(model["dim_apartments"], expected)
    assert [tuple(r) for r in model["fact_bookings"].collect()] == [(1, 10, key(1, D2), 1, D2, Decimal("240.00"), 2)]
    assert jobs.applied_load_dates(spark, zones) == [D1, D2]
    assert hadoop_fs.list_names(spark, zones.staging) == []


def test_a_publication_stopped_where_earlier_versions_staged_is_finished_too(spark, tmp_path: Path, monkeypatch):
    # Found by attack 30 (F5): a journalled staging under tmp/apartments/publish, from before the staging moved
    # to curated/_next, was never finished nor removed; the model it was moving stayed without a table.
    zones = jobs.Zones(str(tmp_path))
    checked(spark, zones, D1, [apartment(1, "Accra", "100"), apartment(2, "Lagos", "80")])
    jobs.run_transform(spark, zones, D1)
    checked(spark, zones, D2, [apartment(1, "Accra", "120"), apartment(2, "Lagos", "80")])
    legacy = f"{tmp_path}/tmp/apartments/publish"
    monkeypatch.setattr(jobs.Zones, "staging", property(lambda self: legacy))
    kill_at(monkeypatch, 6)  # after the journal: dim_apartments is in _undo, its staged copy not moved in yet
    with pytest.raises(Killed):
        jobs.run_transform(spark, zones, D2)
    monkeypatch.undo()
    expected = spark.read.parquet(f"{legacy}/transform-{D2}/dim_apartments").localCheckpoint()

    jobs.run_transform(spark, zones, D2)

    assertDataFrameEqual(spark.read.parquet(zones.curated("dim_apartments")), expected)
    assert jobs.applied_load_dates(spark, zones) == [D1, D2]
    assert not hadoop_fs.exists(spark, legacy)


def test_load_dates_are_ordered_by_what_was_applied_and_never_in_the_future(spark, tmp_path: Path):
    zones = jobs.Zones(str(tmp_path))
    snapshot = [apartment(1, "Accra", "100")]
    checked(spark, zones, D1, snapshot)
    jobs.run_transform(spark, zones, D1)
    checked(spark, zones, D3, snapshot)
    jobs.run_transform(spark, zones, D3)  # no version opens on D3: only load_history knows it was applied
    checked(spark, zones, D2, snapshot)

    with pytest.raises(jobs.ModelOrderError, match="2024-06-03 is already applied; 2024-06-02 is older"):
        jobs.run_transform(spark, zones, D2)
    with pytest.raises(jobs.ModelOrderError, match="2204-06-02 is in the future"):
        jobs.run_transform(spark, zones, date(2204, 6, 2))
    assert jobs.applied_load_dates(spark, zones) == [D1, D3]


def test_a_breach_never_takes_away_what_an_earlier_run_of_the_date_passed(spark, tmp_path: Path):
    zones = jobs.Zones(str(tmp_path))
    good = [booking(10, 1, 501, D1, 2, "200"), booking(11, 1, 502, D1, 1, "100")]
    raw = {"apartments": [apartment(1, "Accra", "100")], "apartment_attributes": [], "user_viewing": []}
    for table, data in {**raw, "bookings": good}.items():
        write_zone(spark, jobs.partition(zones.raw(table), D1), table, data)
    assert jobs.run_quality(spark, zones, D1, "first").passed
    broken = [booking(12, 1, 503, D1, 1, "-5"), booking(13, 1, 503, D1, 1, "-5")]
    write_zone(spark, jobs.partition(zones.raw("bookings"), D1), "bookings", broken)

    assert not jobs.run_quality(spark, zones, D1, "again").passed
    processed = spark.read.parquet(jobs.partition(zones.processed("bookings"), D1))
    assert sorted(r.booking_id for r in processed.collect()) == [10, 11]


@pytest.mark.databases
def test_the_model_its_kpis_and_load_history_commit_together(spark, target, tmp_path: Path, monkeypatch):  # noqa: F811
    load(spark, target, write_model(spark, tmp_path / "d1", MODEL), D1)
    tables = (*CURATED_SCHEMAS, *warehouse.KPI_TABLES, "load_history")
    before = {t: rows(target, f"SELECT * FROM analytics.{t} ORDER BY 1, 2") for t in tables}
    more = {**MODEL, "fact_bookings": [*MODEL["fact_bookings"], (4, 9004, 2, 2, D2, Decimal("50.00"), 1)]}
    # The last KPI's refresh fails: everything of D2 before it must go back with it.
    monkeypatch.setattr(warehouse, "KPI_TABLES", (*warehouse.KPI_TABLES, "kpi_that_is_not_there"))
    with pytest.raises(Exception, match="kpi_that_is_not_there"):
        load(spark, target, write_model(spark, tmp_path / "d2", more), D2)

    assert {t: rows(target, f"SELECT * FROM analytics.{t} ORDER BY 1, 2") for t in tables} == before


def load_curated(spark, zones: jobs.Zones, url, day: date) -> None:
    load(spark, url, {name: zones.curated(name) for name in CURATED_SCHEMAS}, day)


@pytest.mark.databases
def test_undo_takes_back_the_last_applied_date_in_the_warehouse_and_the_curated_zone(spark, target, tmp_path: Path):  # noqa: F811
    from rental_analytics.cli import main

    zones = jobs.Zones(str(tmp_path))
    checked(spark, zones, D1, [apartment(1, "Accra", "100")], [booking(10, 1, 501, D1, 2, "200")])
    jobs.run_transform(spark, zones, D1)
    load_curated(spark, zones, target, D1)
    model_d1 = curated(spark, zones)
    tables = (*CURATED_SCHEMAS, *warehouse.KPI_TABLES)
    warehouse_d1 = {t: rows(target, f"SELECT * FROM analytics.{t} ORDER BY 1, 2") for t in tables}
    checked(spark, zones, D2, [apartment(1, "Lagos", "90")], [booking(11, 1, 502, D2, 1, "90")])
    jobs.run_transform(spark, zones, D2)
    load_curated(spark, zones, target, D2)

    undo = ["undo-apartments", "--warehouse-url", str(target), "--output", str(tmp_path)]
    assert main(undo) == 0
    assert {t: rows(target, f"SELECT * FROM analytics.{t} ORDER BY 1, 2") for t in tables} == warehouse_d1
    assert rows(target, "SELECT DISTINCT load_date FROM analytics.load_history") == [[D1]]
    for name, frame in curated(spark, zones).items():
        assertDataFrameEqual(frame, model_d1[name])
    assert jobs.applied_load_dates(spark, zones) == [D1]
    assert not hadoop_fs.exists(spark, jobs.partition(zones.processed("bookings"), D2))
    assert main(undo) == 1  # one step back only: the model before D1 was never kept


@pytest.mark.databases
def test_a_model_without_bookings_loads_with_its_kpis(spark, target, tmp_path: Path):  # noqa: F811
    # Found by test_model_states: SUM over no customers is NULL, which kpi_repeat_customer_rate refused.
    load(spark, target, write_model(spark, tmp_path, {**MODEL, "fact_bookings": []}), D1)
    assert rows(target, "SELECT * FROM analytics.kpi_repeat_customer_rate") == [[0, 0, None]]


def transformed(spark, zones: jobs.Zones, *days: date) -> None:
    """Each of `days` checked and transformed, one apartment whose price changes every day."""
    for day in days:
        checked(spark, zones, day, [apartment(1, "Accra", str(100 - day.day))])
        jobs.run_transform(spark, zones, day)


def warehouse_last(spark, url) -> date | None:
    with warehouse.connect(spark, url, warehouse.POSTGRESQL) as connection:
        return warehouse.last_load_date(connection)


@pytest.mark.databases
def test_an_undo_stopped_between_its_commits_stops_every_run_until_undo_ends_it(spark, target, tmp_path, monkeypatch):  # noqa: F811
    from rental_analytics.cli import main

    zones = jobs.Zones(str(tmp_path))
    transformed(spark, zones, D1, D2)
    load_curated(spark, zones, target, D2)

    def killed(*_: object) -> None:
        raise Killed("after the warehouse's rewind, before the curated zone's")

    monkeypatch.setattr(jobs, "restore_backup", killed)
    undo = ["undo-apartments", "--warehouse-url", str(target), "--output", str(tmp_path)]
    with pytest.raises(Killed):
        main(undo)
    monkeypatch.undo()
    assert warehouse_last(spark, target) == D1 and jobs.applied_load_dates(spark, zones) == [D1, D2]

    # Found by attack 30: the next run took the curated zone's D2 back into the warehouse with D3.
    with pytest.raises(jobs.ModelOrderError, match=r"undo of load date 2024-06-02 .* undo-apartments`"):
        jobs.check_warehouse_agrees(spark, zones, warehouse_last(spark, target), D3)
    assert main(undo) == 0
    assert rows(target, "SELECT DISTINCT load_date FROM analytics.load_history") == [[D1]]
    assert jobs.applied_load_dates(spark, zones) == [D1]
    jobs.check_warehouse_agrees(spark, zones, warehouse_last(spark, target), D3)


def test_a_load_that_failed_after_the_transform_stops_later_dates_until_it_is_loaded(spark, tmp_path: Path):
    zones = jobs.Zones(str(tmp_path))
    transformed(spark, zones, D1, D2)  # and D2's load failed: the warehouse's load_history ends at D1

    # Found by attack 30: D3 went on, and the warehouse held D2's versions with no D2 in its load_history.
    with pytest.raises(jobs.ModelOrderError, match="--load-date 2024-06-02` again to load it"):
        jobs.check_warehouse_agrees(spark, zones, D1, D3)
    jobs.check_warehouse_agrees(spark, zones, D1, D2)  # the re-run of D2 is what loads it
    transformed(spark, zones, D3)  # on AWS the transform runs before the load job checks
    with pytest.raises(jobs.ModelOrderError, match="`rental-analytics undo-apartments`, then load date 2024-06-03"):
        jobs.check_warehouse_agrees(spark, zones, D1, D3)
    with pytest.raises(jobs.ModelOrderError, match="ends at 2024-06-05: run `rental-analytics run apartments"):
        jobs.check_warehouse_agrees(spark, zones, date(2024, 6, 5), date(2024, 6, 6))
