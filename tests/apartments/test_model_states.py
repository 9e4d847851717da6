"""The curated model and the warehouse against a reference written here: random snapshots, dates, kills, faults."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from rental_analytics.apartments import jobs, warehouse
from rental_analytics.apartments.contract import CURATED_SCHEMAS
from rental_analytics.platform import hadoop_fs
from tests.apartments.test_commits import Killed, apartment, checked, write_zone
from tests.apartments.test_warehouse import SERVER, _client, rows

pytestmark = pytest.mark.spark

START = date(2024, 6, 1)
IDS = (1, 2, 3)
# Spellings MySQL's default collations hold equal, and one that differs.
LOCATIONS = ("Austin", "austin ", "AUSTIN", "Lagos")
PRICES = ("100", "120")
# A row is present and sound, present and quarantined (a bad row), or absent (deleted at the source).
ROWS = st.tuples(st.sampled_from(LOCATIONS), st.sampled_from(PRICES), st.sampled_from(("sound", "bad", "absent")))
SNAPSHOT = st.fixed_dictionaries({i: ROWS for i in IDS})


def reference_apply(versions: list[dict], day: date, snapshot: dict) -> list[dict]:
    """SCD2 as the contract says it, on plain dicts: close what changed or went, open what changed or came."""
    out = [dict(v) for v in versions]
    current = {v["id"]: v for v in out if v["end"] is None}
    for apartment_id, (location, price, kind) in snapshot.items():
        values = (location.rstrip().lower(), price)
        version = current.get(apartment_id)
        if kind == "bad" or (version is not None and kind == "sound" and version["values"] == values):
            continue  # a bad row is not a deletion; an unchanged row changes nothing
        if version is not None:
            version["end"] = day - timedelta(days=1)
        if kind == "sound":
            out.append({"id": apartment_id, "values": values, "start": day, "end": None})
    return out


class ModelMachine(RuleBasedStateMachine):
    """Apply snapshots on load dates forward, again, or backward (refused), killing some publications half way."""

    spark: Any = None  # the tests' one session, and a folder for each example's zones: set by the test below
    base: Path | None = None

    def __init__(self) -> None:
        super().__init__()
        self.zones = jobs.Zones(mkdtemp(prefix="zones-", dir=self.base))
        self.applied: list[tuple[date, dict]] = []
        self.loaded: list[tuple[date, dict]] = []  # what the warehouse was last loaded with
        self.database = f"ra_states_{uuid.uuid4().hex[:10]}"
        admin = _client(SERVER.database)
        admin.run(f"CREATE DATABASE {self.database}")
        admin.close()

    def teardown(self) -> None:
        admin = _client(SERVER.database)
        admin.run(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
        admin.close()

    @staticmethod
    def reference(applied: list[tuple[date, dict]]) -> list[dict]:
        versions: list[dict] = []
        for day, snapshot in applied:
            versions = reference_apply(versions, day, snapshot)
        return versions

    def write(self, day: date, snapshot: dict) -> None:
        rows = {i: apartment(i, loc, price) for i, (loc, price, kind) in snapshot.items() if kind != "absent"}
        checked(self.spark, self.zones, day, [r for i, r in rows.items() if snapshot[i][2] == "sound"])
        bad = [r for i, r in rows.items() if snapshot[i][2] == "bad"]
        write_zone(self.spark, jobs.partition(self.zones.quarantine("apartments"), day), "apartments", bad)

    @initialize(snapshot=SNAPSHOT)
    def first(self, snapshot: dict) -> None:
        self.apply(0, snapshot, False)

    @rule(step=st.sampled_from((0, 0, 2, 5)), snapshot=SNAPSHOT, again=st.booleans())
    def apply(self, step: int, snapshot: dict, again: bool) -> None:
        last = self.applied[-1][0] if self.applied else None
        day = last if (again and last) else (last or START) + timedelta(days=1)
        self.write(day, snapshot)
        real = hadoop_fs.replace
        calls: list[str] = []

        def replace(spark, source: str, target: str) -> None:
            calls.append(target)
            if len(calls) == step:  # killed inside the move: the target is gone, the rename never happened
                hadoop_fs.delete(spark, target)
                raise Killed(target)
            real(spark, source, target)

        hadoop_fs.replace = replace
        try:
            jobs.run_transform(self.spark, self.zones, day)
        except Killed:
            pass  # past the journal: the next job finishes the publication
        finally:
            hadoop_fs.replace = real
        jobs.finish_publications(self.spark, self.zones, lambda _: None)
        self.applied = [(d, s) for d, s in self.applied if d != day] + [(day, snapshot)]

    @rule(back=st.integers(min_value=1, max_value=3))
    def apply_an_older_date(self, back: int) -> None:
        if not self.applied:
            return
        day = self.applied[-1][0] - timedelta(days=back)
        with pytest.raises(jobs.ModelOrderError):
            jobs.run_transform(self.spark, self.zones, day)

    @rule(fail=st.booleans())
    def load(self, fail: bool) -> None:
        """Load the curated model; with `fail`, its transaction's last statement (a KPI refresh) fails."""
        if not self.applied:
            return
        url = SERVER.with_database(self.database)
        curated = {name: self.zones.curated(name) for name in CURATED_SCHEMAS}
        kpis = warehouse.KPI_TABLES
        if fail:
            warehouse.KPI_TABLES = (*kpis, "kpi_that_is_not_there")
        try:
            with warehouse.connect(self.spark, url, warehouse.POSTGRESQL) as connection:
                warehouse.migrate(connection)
                warehouse.load_model(self.spark, connection, curated, self.applied[-1][0])
            self.loaded = list(self.applied)
        except Exception as error:
            assert fail, error
        finally:
            warehouse.KPI_TABLES = kpis

    @invariant()
    def the_warehouse_holds_the_last_load_whole(self) -> None:
        if not self.loaded:
            return
        url = SERVER.with_database(self.database)
        held = rows(
            url,
            "SELECT a.apartment_id, LOWER(RTRIM(l.location_name)), CAST(CAST(a.current_price AS INTEGER) AS TEXT), "
            "a.effective_date, a.end_date FROM analytics.dim_apartments a "
            "JOIN analytics.dim_locations l USING (location_key)",
        )
        expected = sorted((v["id"], *v["values"], v["start"], v["end"]) for v in self.reference(self.loaded))
        assert sorted(tuple(r) for r in held) == expected
        assert rows(url, "SELECT MAX(load_date) FROM analytics.load_history") == [[self.loaded[-1][0]]]
        listings = rows(url, "SELECT COALESCE(SUM(current_listings), 0) FROM analytics.kpi_average_listing_price")
        assert listings == [[sum(1 for v in self.reference(self.loaded) if v["end"] is None)]]

    @invariant()
    def the_model_equals_the_reference(self) -> None:
        if not self.applied:
            return
        dim = self.spark.read.parquet(self.zones.curated("dim_apartments"))
        locations = self.spark.read.parquet(self.zones.curated("dim_locations")).collect()
        names = {r.location_key: r.location_name.rstrip().lower() for r in locations}
        model = sorted(
            (r.apartment_id, names[r.location_key], str(int(r.current_price)), r.effective_date, r.end_date)
            for r in dim.collect()
        )
        expected = sorted((v["id"], *v["values"], v["start"], v["end"]) for v in self.reference(self.applied))
        assert model == expected
        assert jobs.applied_load_dates(self.spark, self.zones) == [d for d, _ in self.applied]
        assert hadoop_fs.list_names(self.spark, self.zones.staging) == []  # nothing left half published


@pytest.mark.databases
def test_the_model_follows_its_reference_through_random_runs_and_kills(spark, tmp_path: Path):
    ModelMachine.spark, ModelMachine.base = spark, tmp_path
    machine = settings(
        max_examples=2,
        stateful_step_count=3,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )(ModelMachine)
    machine.TestCase().runTest()
