"""The warehouse against the real PostgreSQL: DDL, the staged merge, KPIs by hand, two load dates and a re-run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pg8000.native
import pytest

from rental_analytics.apartments import warehouse
from rental_analytics.apartments.contract import CURATED_SCHEMAS
from rental_analytics.apartments.db_url import DatabaseUrl

pytestmark = [pytest.mark.spark, pytest.mark.databases]

SERVER = DatabaseUrl.parse("postgresql://postgres@127.0.0.1:5432/test")
D1, D2 = date(2024, 6, 1), date(2024, 6, 2)


def _client(database: str) -> pg8000.native.Connection:
    return pg8000.native.Connection(SERVER.user, host=SERVER.host, port=SERVER.port, database=database)


@pytest.fixture
def target() -> Iterator[DatabaseUrl]:
    """A database of its own on the real server, dropped afterwards."""
    name = f"ra_wh_{uuid.uuid4().hex[:10]}"
    admin = _client(SERVER.database)
    admin.run(f"CREATE DATABASE {name}")
    try:
        yield SERVER.with_database(name)
    finally:
        admin.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def rows(url: DatabaseUrl, sql: str) -> list[list]:
    client = _client(url.database)
    try:
        return client.run(sql)
    finally:
        client.close()


# A model small enough to work every KPI out by hand. Apartment 1 moved from Accra to Lagos on June 1.
MODEL = {
    "dim_locations": [(1, "Accra"), (2, "Lagos")],
    "dim_users": [(1, 501), (2, 502)],
    "dim_apartments": [
        (1, 1, 1, Decimal("100.00"), "active", date(2024, 1, 1), date(2024, 5, 31), False),
        (3, 1, 2, Decimal("120.00"), "active", date(2024, 6, 1), None, True),
        (2, 2, 1, Decimal("80.00"), "active", date(2024, 1, 1), None, True),
    ],
    "fact_bookings": [
        # user 501: May 30 for 3 nights (2 in May, 1 in June) in Accra, then June 20 for 2 nights in Lagos: a repeat.
        (1, 9001, 1, 1, date(2024, 5, 30), Decimal("300.00"), 3),
        (2, 9002, 3, 1, date(2024, 6, 20), Decimal("240.00"), 2),
        # user 502: one booking in Accra.
        (3, 9003, 2, 2, date(2024, 6, 10), Decimal("80.00"), 1),
    ],
    "fact_viewings": [(1, 7001, 2, 2, None)],
}


def write_model(spark, root: Path, model: dict[str, list]) -> dict[str, str]:
    paths = {}
    for table, data in model.items():
        paths[table] = str(root / table)
        spark.createDataFrame(data, CURATED_SCHEMAS[table]).write.mode("overwrite").parquet(paths[table])
    return paths


def load(spark, url: DatabaseUrl, paths: dict[str, str], load_date: date) -> dict[str, int]:
    with warehouse.connect(spark, url, warehouse.POSTGRESQL) as connection:
        warehouse.migrate(connection)
        return warehouse.load_model(spark, connection, paths, load_date).tables


def test_the_kpis_of_a_small_model(spark, target, tmp_path: Path):
    load(spark, target, write_model(spark, tmp_path, MODEL), D1)

    assert rows(
        target,
        "SELECT location_name, current_listings, average_price FROM analytics.kpi_average_listing_price ORDER BY 1",
    ) == [
        ["Accra", 1, Decimal("80.00")],
        ["Lagos", 1, Decimal("120.00")],
    ]
    assert rows(
        target,
        "SELECT location_name, month_start, booked_nights, available_nights, occupancy_rate FROM analytics.kpi_occupancy_rate ORDER BY 1, 2",
    ) == [
        ["Accra", date(2024, 5, 1), 2, 31, pytest.approx(2 / 31)],
        ["Accra", date(2024, 6, 1), 2, 30, pytest.approx(2 / 30)],
        ["Lagos", date(2024, 6, 1), 2, 30, pytest.approx(2 / 30)],
    ]
    assert rows(
        target, "SELECT location_name, bookings, popularity_rank FROM analytics.kpi_popular_locations ORDER BY 3, 1"
    ) == [
        ["Accra", 2, 1],
        ["Lagos", 1, 2],
    ]
    assert rows(
        target,
        "SELECT apartment_id, location_name, revenue, bookings, revenue_rank FROM analytics.kpi_top_listings ORDER BY 5",
    ) == [
        [1, "Lagos", Decimal("540.00"), 2, 1],
        [2, "Accra", Decimal("80.00"), 1, 2],
    ]
    assert rows(target, "SELECT user_id, bookings, total_amount FROM analytics.kpi_bookings_per_user ORDER BY 1") == [
        [501, 2, Decimal("540.00")],
        [502, 1, Decimal("80.00")],
    ]
    assert rows(target, "SELECT bookings, average_duration_days FROM analytics.kpi_average_booking_duration") == [
        [3, 2.0]
    ]
    assert rows(
        target, "SELECT customers, repeat_customers, repeat_customer_rate FROM analytics.kpi_repeat_customer_rate"
    ) == [[2, 1, 0.5]]


def test_kpi_tables_whose_columns_are_in_another_order_get_each_value_in_its_column(spark, target, tmp_path: Path):
    # Found by attack 30 (F7): the refresh inserted by position, so a reordered or widened table took the
    # values in the wrong columns (or refused the load).
    for ddl in (
        "CREATE SCHEMA analytics",
        "CREATE TABLE analytics.kpi_average_listing_price (average_price DECIMAL(12,2), note TEXT, "
        "current_listings BIGINT NOT NULL, location_name VARCHAR(255) NOT NULL)",
        "CREATE TABLE analytics.kpi_repeat_customer_rate (repeat_customer_rate DOUBLE PRECISION, "
        "repeat_customers BIGINT NOT NULL, customers BIGINT NOT NULL)",
    ):
        rows(target, ddl)
    load(spark, target, write_model(spark, tmp_path, MODEL), D1)

    assert rows(
        target,
        "SELECT location_name, current_listings, average_price, note FROM analytics.kpi_average_listing_price "
        "ORDER BY 1",
    ) == [["Accra", 1, Decimal("80.00"), None], ["Lagos", 1, Decimal("120.00"), None]]
    assert rows(
        target, "SELECT customers, repeat_customers, repeat_customer_rate FROM analytics.kpi_repeat_customer_rate"
    ) == [[2, 1, 0.5]]


def test_a_booking_dated_years_away_from_the_others_costs_the_occupancy_kpi_its_own_months_only(
    spark, target, tmp_path: Path
):
    # Found by attack 30 (F4): the occupancy KPI built a calendar of every month from the first booking to the
    # last checkout and joined every stay to it, so one booking in 9999 made the refresh take seconds per few
    # hundred bookings (5 s or more for these) and, on a real marketplace, run into the statement timeout. Data
    # quality now quarantines such dates; the KPI also expands each stay into its own months only (milliseconds).
    june = [(10 + i, 9010 + i, 2, 2, date(2024, 6, 1 + i % 30), Decimal("80.00"), 1) for i in range(1000)]
    far = (4, 9004, 2, 2, date(9999, 12, 30), Decimal("80.00"), 1)
    paths = write_model(spark, tmp_path, {**MODEL, "fact_bookings": [*MODEL["fact_bookings"], *june, far]})
    with warehouse.connect(spark, target, warehouse.POSTGRESQL) as connection:
        warehouse.migrate(connection)
        connection.statement_timeout = 2  # seconds: a hundred times what the refresh takes
        warehouse.load_model(spark, connection, paths, D1)

    assert rows(
        target,
        "SELECT location_name, month_start, booked_nights, available_nights FROM analytics.kpi_occupancy_rate "
        "ORDER BY 1, 2",
    ) == [
        ["Accra", date(2024, 5, 1), 2, 31],
        ["Accra", date(2024, 6, 1), 1002, 30],
        ["Accra", date(9999, 12, 1), 1, 31],
        ["Lagos", date(2024, 6, 1), 2, 30],
    ]


def test_two_load_dates_merge_and_a_rerun_changes_nothing(spark, target, tmp_path: Path):
    first = write_model(spark, tmp_path / "d1", MODEL)
    load(spark, target, first, D1)
    # D2: apartment 2's price changes (a new version), booking 9003 is corrected, a booking arrives.
    second_model = {
        **MODEL,
        "dim_apartments": [
            *MODEL["dim_apartments"][:2],
            (2, 2, 1, Decimal("80.00"), "active", date(2024, 1, 1), date(2024, 6, 1), False),
            (4, 2, 1, Decimal("85.00"), "active", D2, None, True),
        ],
        "fact_bookings": [
            *MODEL["fact_bookings"][:2],
            (3, 9003, 2, 2, date(2024, 6, 10), Decimal("90.00"), 1),
            (4, 9004, 4, 2, date(2024, 6, 25), Decimal("170.00"), 2),
        ],
    }
    second = write_model(spark, tmp_path / "d2", second_model)
    load(spark, target, second, D2)
    snapshot = {t: rows(target, f"SELECT * FROM analytics.{t} ORDER BY 1") for t in CURATED_SCHEMAS}
    kpis = {t: rows(target, f"SELECT * FROM analytics.{t} ORDER BY 1, 2") for t in warehouse.KPI_TABLES}
    assert load(spark, target, second, D2)["fact_bookings"] == 4

    assert {t: rows(target, f"SELECT * FROM analytics.{t} ORDER BY 1") for t in CURATED_SCHEMAS} == snapshot
    assert {t: rows(target, f"SELECT * FROM analytics.{t} ORDER BY 1, 2") for t in warehouse.KPI_TABLES} == kpis
    assert [r[0] for r in snapshot["dim_apartments"]] == [1, 2, 3, 4]
    assert snapshot["fact_bookings"][2][5] == Decimal("90.00")
    assert rows(target, "SELECT COUNT(*) FROM analytics.stage_fact_bookings") == [[0]]
    history = rows(target, "SELECT load_date, COUNT(*) FROM analytics.load_history GROUP BY load_date ORDER BY 1")
    assert history == [[D1, 5], [D2, 5]]  # the re-run replaced D2's records instead of adding to them


def test_a_rolled_back_version_leaves_the_warehouse_too(spark, target, tmp_path: Path):
    load(spark, target, write_model(spark, tmp_path / "a", MODEL), D1)
    fewer = {**MODEL, "dim_apartments": MODEL["dim_apartments"][:2]}
    load(spark, target, write_model(spark, tmp_path / "b", fewer), D1)
    assert [r[0] for r in rows(target, "SELECT apartment_key FROM analytics.dim_apartments ORDER BY 1")] == [1, 3]


def test_migrations_apply_once(spark, target):
    with warehouse.connect(spark, target, warehouse.POSTGRESQL) as connection:
        assert warehouse.migrate(connection) == ["001_model.sql", "002_kpis.sql"]
        assert warehouse.migrate(connection) == []
    columns = rows(
        target,
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'analytics' "
        "ORDER BY table_name, ordinal_position",
    )
    for table, schema in CURATED_SCHEMAS.items():
        assert [c for t, c in columns if t == table] == [part.split()[0] for part in schema.split(", ")]


def test_the_dialects_spell_date_arithmetic_their_own_way():
    sql = "SELECT DAYS_BETWEEN(a, ADD_MONTHS(ADD_DAYS(b, 3), 1))"
    assert warehouse.POSTGRESQL.render(sql) == "SELECT ((CAST((((b) + (3))) + (1) * INTERVAL '1 month' AS DATE)) - (a))"
    assert warehouse.REDSHIFT.render(sql) == (
        "SELECT DATEDIFF(day, a, CAST(ADD_MONTHS(CAST(DATEADD(day, 3, b) AS DATE), 1) AS DATE))"
    )


def test_the_glue_scripts_load_and_refresh(spark, target, tmp_path: Path, capsys):
    from spark_scripts import apartments_kpis, apartments_load

    curated = tmp_path / "curated"
    write_model(spark, curated, MODEL)
    url = str(target)  # the server takes no password
    common = ["--output", str(tmp_path), "--load-date", "2024-06-01", "--warehouse-url", url, "--dialect", "postgresql"]
    assert apartments_load.main([*common, "--JOB_NAME", "glue_to_redshift_job"]) == 0
    assert apartments_kpis.main(common) == 0
    printed = capsys.readouterr().out
    assert "[load] loaded dim_locations 2, dim_users 2, dim_apartments 3, fact_bookings 3, fact_viewings 1" in printed
    assert rows(target, "SELECT repeat_customer_rate FROM analytics.kpi_repeat_customer_rate") == [[0.5]]


def test_run_apartments_end_to_end_over_two_load_dates(spark, source, target, tmp_path: Path, capsys):
    from rental_analytics.cli import main

    mysql, warehouse_url = str(source), str(target)  # the servers take no password
    out = str(tmp_path / "zones")
    assert main(["generate", "apartments", "--mysql-url", mysql, "--apartments", "150", "--as-of", "2024-06-01"]) == 0
    common = ["run", "apartments", "--mysql-url", mysql, "--warehouse-url", warehouse_url, "--output", out]
    assert main([*common, "--load-date", "2024-06-01"]) == 0
    assert main(["generate", "apartments", "--mysql-url", mysql, "--change", "--as-of", "2024-06-02"]) == 0
    assert main([*common, "--load-date", "2024-06-02"]) == 0
    # A re-run of a date changes nothing: test_two_load_dates_merge_and_a_rerun_changes_nothing (the warehouse)
    # and test_mariadb.py's three load dates (the model) show it without a third whole run here.
    assert "SUCCEEDED: load date 2024-06-02 is in the warehouse" in capsys.readouterr().out
    closed = rows(target, "SELECT COUNT(*) FROM analytics.dim_apartments WHERE end_date = DATE '2024-06-01'")
    assert closed[0][0] > 0
    assert rows(target, "SELECT COUNT(*) FROM analytics.kpi_occupancy_rate WHERE occupancy_rate > 0")[0][0] > 0


def test_a_quality_breach_stops_the_local_run_before_the_warehouse(source, target, tmp_path: Path, capsys):
    from rental_analytics.cli import main

    generate = ["generate", "apartments", "--mysql-url", str(source), "--apartments", "100", "--bad-share", "0.02"]
    main([*generate, "--as-of", "2024-06-01"])
    code = main(["run", "apartments", "--mysql-url", str(source), "--warehouse-url", str(target),
                 "--output", str(tmp_path), "--load-date", "2024-06-01"])  # fmt: skip

    assert code == 1
    assert "FAILED in data quality: Data Quality Breach:" in capsys.readouterr().out
    # The run's checks apply the warehouse's DDL (they compare its load_history with the curated zone), but
    # nothing of the breached date is loaded.
    loaded = ("load_history", *CURATED_SCHEMAS)
    assert {t: rows(target, f"SELECT COUNT(*) FROM analytics.{t}")[0][0] for t in loaded} == dict.fromkeys(loaded, 0)


def test_redshift_copies_each_curated_folder_into_its_stage_with_the_namespaces_role():
    role = "arn:aws:iam::123456789012:role/rental-analytics-copy"
    assert warehouse.redshift_copy_sql("fact_bookings", "s3://data-bucket/curated/fact_bookings", role) == (
        "COPY analytics.stage_fact_bookings FROM 's3://data-bucket/curated/fact_bookings/' "
        "IAM_ROLE 'arn:aws:iam::123456789012:role/rental-analytics-copy' FORMAT AS PARQUET"
    )
    china = "arn:aws-cn:iam::123456789012:role/service-role/copy"
    assert f"IAM_ROLE '{china}'" in warehouse.redshift_copy_sql("dim_users", "s3://b.example/curated/dim_users/", china)


@pytest.mark.parametrize(
    ("path", "role", "refused"),
    [
        ("/tmp/curated/dim_users", "arn:aws:iam::123456789012:role/copy", "from S3 only"),
        ("s3://b/curated/x' IAM_ROLE 'other", "arn:aws:iam::123456789012:role/copy", "from S3 only"),
        ("s3://bucket/curated/dim_users", "copy-role", "IAM role ARN"),
        ("s3://bucket/curated/dim_users", "arn:aws:iam::123456789012:user/someone", "IAM role ARN"),
        ("s3://bucket/curated/dim_users", "arn:aws:iam::123456789012:role/a' CREDENTIALS 'x", "IAM role ARN"),
    ],
)
def test_the_copy_text_takes_only_an_s3_path_and_a_role_arn(path: str, role: str, refused: str):
    from rental_analytics.platform.config import ConfigError

    with pytest.raises(ConfigError, match=refused):
        warehouse.redshift_copy_sql("dim_users", path, role)


def test_a_redshift_load_without_its_copy_role_stops_before_spark(tmp_path: Path, capsys, monkeypatch):
    from spark_scripts import apartments_load

    monkeypatch.setattr(apartments_load, "job_session", None)  # a call would raise: Spark must not start
    argv = ["--output", str(tmp_path), "--warehouse-url", "redshift://loader@wg.example:5439/dev"]
    assert apartments_load.main([*argv, "--dialect", "redshift"]) == 2
    assert "pass --copy-role-arn" in capsys.readouterr().out
    role = ["--copy-role-arn", "arn:aws:iam::123456789012:role/copy"]
    assert apartments_load.parse_args([*argv, *role]).copy_role_arn == role[1]


def test_the_postgresql_copy_keeps_every_value_as_it_was(spark, target, tmp_path: Path):
    awkward = ["", " leading and trailing ", 'say "hi", then go', "two\nlines", "back\\slash", "Zürich, 5°"]
    model = {
        **MODEL,
        "dim_locations": [(i + 1, name) for i, name in enumerate(awkward)],
        "fact_viewings": [
            (1, 7001, 2, 2, None),
            (2, 7002, None, 1, datetime(2024, 6, 1, 23, 59, 59, 123456)),
        ],
    }
    load(spark, target, write_model(spark, tmp_path, model), D1)

    assert rows(target, "SELECT location_key, location_name FROM analytics.dim_locations ORDER BY 1") == [
        [i + 1, name] for i, name in enumerate(awkward)
    ]
    assert rows(target, "SELECT COUNT(*) FROM analytics.dim_locations WHERE location_name IS NULL") == [[0]]
    assert rows(target, "SELECT viewing_key, apartment_key, viewing_date FROM analytics.fact_viewings ORDER BY 1") == [
        [1, 2, None],
        [2, None, datetime(2024, 6, 1, 23, 59, 59, 123456)],
    ]
    assert rows(target, "SELECT current_price, is_current FROM analytics.dim_apartments ORDER BY apartment_key") == [
        [Decimal("100.00"), False],
        [Decimal("80.00"), True],
        [Decimal("120.00"), True],
    ]


def test_a_load_that_fails_leaves_the_stages_and_the_tables_as_they_were(spark, target, tmp_path: Path):
    load(spark, target, write_model(spark, tmp_path / "good", MODEL), D1)
    before = {t: rows(target, f"SELECT * FROM analytics.{t} ORDER BY 1") for t in CURATED_SCHEMAS}
    # Two rows with one key: the merge's insert breaks the primary key after every stage has been filled.
    broken = {**MODEL, "fact_viewings": [(1, 7001, 2, 2, None), (1, 7002, 2, 1, None)]}
    with pytest.raises(Exception, match="duplicate key"):
        load(spark, target, write_model(spark, tmp_path / "broken", broken), D2)

    assert {t: rows(target, f"SELECT * FROM analytics.{t} ORDER BY 1") for t in CURATED_SCHEMAS} == before
    for table in CURATED_SCHEMAS:
        assert rows(target, f"SELECT COUNT(*) FROM analytics.stage_{table}") == [[0]], table
    assert rows(target, "SELECT DISTINCT load_date FROM analytics.load_history") == [[D1]]


def test_values_from_jdbc_keep_their_python_types():
    from decimal import Decimal

    from rental_analytics.apartments.warehouse import _python

    class JavaDate:
        def toString(self) -> str:
            return "2024-06-01"

    assert _python(Decimal("12.50")) == Decimal("12.50")
    assert (_python(7), _python(None), _python(JavaDate())) == (7, None, "2024-06-01")
