"""Bounded waits and honest failures: timeouts on every connection, the failed stage named, nothing stuck."""

from __future__ import annotations

import socket
import threading
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from rental_analytics.apartments import jobs, warehouse
from rental_analytics.apartments.db_url import DatabaseUrl, Timeouts
from rental_analytics.apartments.quality import QualityRules
from tests.apartments.test_commits import apartment, checked, write_zone
from tests.apartments.test_warehouse import _client, rows, target  # noqa: F401

pytestmark = [pytest.mark.spark]

D1, D2 = date(2024, 6, 1), date(2024, 6, 2)
SHORT = Timeouts(connect=1, socket=2, statement=1)


@pytest.mark.databases
def test_a_statement_past_its_timeout_is_cancelled(spark, target):  # noqa: F811
    with (
        warehouse.connect(spark, replace(target, timeouts=SHORT), warehouse.POSTGRESQL) as connection,
        pytest.raises(Exception, match="canceling statement"),
    ):
        connection.query("SELECT pg_sleep(5)")


def test_a_server_that_never_answers_fails_the_connection_instead_of_hanging_it(spark):
    # A port that accepts TCP connections (the kernel's backlog) and never says a word.
    silent = socket.create_server(("127.0.0.1", 0))
    url = replace(DatabaseUrl.parse(f"postgresql://etl@127.0.0.1:{silent.getsockname()[1]}/db"), timeouts=SHORT)
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            with warehouse.connect(spark, url, warehouse.POSTGRESQL):
                outcome.append(None)
        except Exception as error:
            outcome.append(error)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(60)  # a bound for the test itself: without timeouts the driver waits for ever
    silent.close()
    assert len(outcome) == 1 and outcome[0] is not None


@pytest.mark.databases
def test_a_kpi_table_dropped_by_hand_is_made_again(spark, target):  # noqa: F811
    with warehouse.connect(spark, target, warehouse.POSTGRESQL) as connection:
        warehouse.migrate(connection)
    client = _client(target.database)
    client.run("DROP TABLE analytics.kpi_top_listings")
    client.close()
    with warehouse.connect(spark, target, warehouse.POSTGRESQL) as connection:
        assert warehouse.migrate(connection) == ["002_kpis.sql"]
        assert warehouse.migrate(connection) == []
    assert rows(target, "SELECT COUNT(*) FROM analytics.kpi_top_listings") == [[0]]


def test_an_empty_apartments_extract_is_refused_unless_asked_for(spark, tmp_path: Path):
    zones = jobs.Zones(str(tmp_path))
    checked(spark, zones, D1, [apartment(1, "Accra", "100")])
    jobs.run_transform(spark, zones, D1)
    for table in ("apartments", "apartment_attributes", "user_viewing", "bookings"):
        write_zone(spark, jobs.partition(zones.raw(table), D2), table, [])

    refused = jobs.run_quality(spark, zones, D2, "empty")
    assert not refused.passed
    assert "the apartments extract is empty" in refused.message
    assert jobs.run_quality(spark, zones, D2, "asked", QualityRules(allow_empty_apartments=True)).passed


@pytest.mark.databases
def test_a_warehouse_lost_mid_run_fails_the_run_in_the_load(source, target, tmp_path: Path, capsys, monkeypatch):  # noqa: F811
    from rental_analytics.cli import main

    real_transform = jobs.run_transform

    def transform_then_lose_the_warehouse(*args, **kwargs):
        counts = real_transform(*args, **kwargs)
        admin = _client("test")
        admin.run(f"DROP DATABASE {target.database} WITH (FORCE)")
        admin.close()
        return counts

    main(["generate", "apartments", "--mysql-url", str(source), "--apartments", "20", "--as-of", "2024-06-01"])
    monkeypatch.setattr(jobs, "run_transform", transform_then_lose_the_warehouse)
    code = main(["run", "apartments", "--mysql-url", str(source), "--warehouse-url", str(target),
                 "--output", str(tmp_path), "--load-date", "2024-06-01"])  # fmt: skip

    assert code == 1  # the contract's failed run, not a usage error
    assert "rental-analytics: [load] " in capsys.readouterr().err
