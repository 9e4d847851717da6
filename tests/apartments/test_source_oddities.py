"""What a real MariaDB source holds beyond the happy path: duplicate keys, collations, zero days, wide values."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pymysql
import pytest

from rental_analytics.apartments import jobs
from rental_analytics.apartments.db_url import DatabaseUrl
from rental_analytics.apartments.quality import QualityRules

pytestmark = [pytest.mark.spark, pytest.mark.databases]

D1, D2 = date(2024, 6, 1), date(2024, 6, 2)
# The metrics are not under test here: every odd row is, so no threshold may stop the run.
LENIENT = QualityRules({"completeness": 0.0, "accuracy": 0.0, "consistency": 0.0})
CREATED = datetime(2024, 1, 1)

# No primary keys and a widened price: the source as an operator may have altered it.
DDL = [
    "CREATE TABLE apartments (apartment_id INT, location VARCHAR(255), price DECIMAL(16,2), status VARCHAR(50), "
    "created_at TIMESTAMP NULL)",
    "CREATE TABLE apartment_attributes (attribute_id INT PRIMARY KEY, apartment_id INT, attribute_name VARCHAR(100), "
    "attribute_value VARCHAR(255))",
    "CREATE TABLE user_viewing (viewing_id INT PRIMARY KEY, user_id INT, apartment_id INT, viewing_date TIMESTAMP NULL)",
    "CREATE TABLE bookings (booking_id INT, apartment_id INT, user_id INT, start_date DATE, end_date DATE, "
    "total_amount DECIMAL(10,2))",
]


def execute(url: DatabaseUrl, *statements: tuple[str, list[tuple]] | str) -> None:
    connection = pymysql.connect(host=url.host, port=url.port, user=url.user, database=url.database, autocommit=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = ''")  # MySQL's zero days are what this test is about
            for statement in statements:
                if isinstance(statement, str):
                    cursor.execute(statement)
                else:
                    cursor.executemany(*statement)
    finally:
        connection.close()


def apartments(*rows: tuple) -> tuple[str, list[tuple]]:
    return ("INSERT INTO apartments VALUES (%s, %s, %s, %s, %s)", [(*row, CREATED) for row in rows])


def bookings(*rows: tuple) -> tuple[str, list[tuple]]:
    return ("INSERT INTO bookings VALUES (%s, %s, %s, %s, %s, %s)", list(rows))


def run(spark, source: DatabaseUrl, zones: jobs.Zones, day: date) -> jobs.ExtractOutcome:
    extracted = jobs.run_extract(spark, source, zones, day)
    assert jobs.run_quality(spark, zones, day, f"run-{day}", LENIENT).passed
    jobs.run_transform(spark, zones, day)
    return extracted


def quarantined(spark, zones: jobs.Zones, table: str, day: date, key: str) -> list[tuple]:
    frame = spark.read.parquet(jobs.partition(zones.quarantine(table), day))
    return sorted((r[key], r.reason, r.asDict().get("invalid_text")) for r in frame.collect())


def test_odd_source_rows_are_quarantined_and_never_poison_the_model_or_later_runs(spark, source, tmp_path: Path):
    execute(
        source,
        *DDL,
        apartments(
            (1, "Austin", "100", "active"),
            (2, "Austin ", "110", "active"),
            (3, "austin", "120", "active"),
            (4, "AUSTIN", "130", "active"),
            (5, "Lagos", "90", "active"),
            (6, "Lagos", "95", "active"),
            (6, "Accra", "96", "active"),  # one id twice: neither copy is the apartment
            (7, "Accra", "123456789012.00", "active"),  # beyond DECIMAL(10,2)
            (8, "Accra\x00", "80", "active"),  # MariaDB stores the NUL, PostgreSQL would refuse it
            (9, "é" * 200, "80", "active"),  # 200 characters, 400 bytes: too long for Redshift's VARCHAR(255)
        ),
        bookings(
            (9, 5, 500, "2024-06-10", "9999-12-31", "100"),  # a placeholder, not a stay (attack 30 F4)
            (10, 1, 501, "2024-05-00", "2024-05-03", "300"),  # a zero day
            (11, 5, 501, "2024-06-10", "2024-06-12", "180"),
            (11, 5, 502, "2024-06-10", "2024-06-12", "180"),
            (12, 5, 503, "2024-06-20", "2024-06-21", "-5"),  # the highest id fails
            (13, 1, 504, "2024-06-20", "2024-06-21", "90"),
        ),
    )
    zones = jobs.Zones(str(tmp_path))
    run(spark, source, zones, D1)

    assert quarantined(spark, zones, "apartments", D1, "apartment_id") == [
        (6, "duplicate_key", None),
        (6, "duplicate_key", None),
        (7, "invalid_value", "price=123456789012.00"),
        (8, "unstorable_value", None),
        (9, "unstorable_value", None),
    ]
    assert quarantined(spark, zones, "bookings", D1, "booking_id") == [
        (9, "invalid_value", None),  # the date reads; the row keeps it as the source had it
        (10, "invalid_value", "start_date=2024-05-00"),
        (11, "duplicate_key", None),
        (11, "duplicate_key", None),
        (12, "negative_amount", None),
    ]
    locations = spark.read.parquet(zones.curated("dim_locations")).collect()
    assert [(r.location_key, r.location_name) for r in locations] == [(1, "AUSTIN"), (2, "Lagos")]
    dim = spark.read.parquet(zones.curated("dim_apartments"))
    assert sorted((r.apartment_id, r.location_key) for r in dim.collect()) == [(1, 1), (2, 1), (3, 1), (4, 1), (5, 2)]
    assert [r.booking_id for r in spark.read.parquet(zones.curated("fact_bookings")).collect()] == [13]

    # D2: apartment 5's row goes bad (a bad row is not a deletion), 8 is fixed, a booking arrives.
    execute(
        source,
        "UPDATE apartments SET location = NULL WHERE apartment_id = 5",
        "UPDATE apartments SET location = 'Accra' WHERE apartment_id = 8",
        bookings((14, 8, 505, "2024-06-22", "2024-06-23", "80")),
    )
    second = run(spark, source, zones, D2)

    assert second.watermarks["bookings"] == 13 and second.rows["bookings"] == 1
    dim = spark.read.parquet(zones.curated("dim_apartments"))
    versions = sorted((r.apartment_id, r.effective_date, r.end_date) for r in dim.collect())
    assert versions == [(i, D1, None) for i in range(1, 6)] + [(8, D2, None)]
    fact = spark.read.parquet(zones.curated("fact_bookings"))
    assert sorted((r.booking_id, r.amount) for r in fact.collect()) == [(13, Decimal("90.00")), (14, Decimal("80.00"))]


def test_a_zero_timestamp_is_quarantined_as_invalid_with_the_sources_text(spark, source, tmp_path: Path):
    # Found by attack 30: both rows went to quarantine as missing_required, their text lost.
    zero = "0000-00-00 00:00:00"
    execute(
        source,
        *DDL,
        f"INSERT INTO apartments VALUES (1, 'Accra', 100, 'active', '{zero}'), (2, 'Accra', 90, 'active', NULL)",
        f"INSERT INTO user_viewing VALUES (20, 501, 1, '{zero}'), (21, 501, 1, '2024-05-31 23:59:58')",
    )
    zones = jobs.Zones(str(tmp_path))
    jobs.run_extract(spark, source, zones, D1)
    jobs.run_quality(spark, zones, D1, "zero", LENIENT)

    assert quarantined(spark, zones, "apartments", D1, "apartment_id") == [
        (1, "invalid_value", f"created_at={zero}"),
        (2, "missing_required", None),
    ]
    assert quarantined(spark, zones, "user_viewing", D1, "viewing_id") == [
        (20, "invalid_value", f"viewing_date={zero}")
    ]
    passed = spark.read.parquet(jobs.partition(zones.processed("user_viewing"), D1)).collect()
    assert [(r.viewing_id, r.viewing_date) for r in passed] == [(21, datetime(2024, 5, 31, 23, 59, 58))]


def test_a_price_with_more_than_two_decimals_is_quarantined_not_rounded(spark, source, tmp_path: Path):
    # Found by attack 30 (F6): in a column widened to four decimals, 100.125 became 100.13 without a word.
    execute(
        source,
        "CREATE TABLE apartments (apartment_id INT PRIMARY KEY, location VARCHAR(255), price DECIMAL(12,4), "
        "status VARCHAR(50), created_at TIMESTAMP NULL)",
        *DDL[1:],
        apartments((1, "Accra", "100.1250", "active"), (2, "Accra", "99.5000", "active")),
        bookings((10, 2, 501, "2024-06-10", "2024-06-12", "180.00")),
    )
    zones = jobs.Zones(str(tmp_path))
    jobs.run_extract(spark, source, zones, D1)
    jobs.run_quality(spark, zones, D1, "decimals", LENIENT)

    assert quarantined(spark, zones, "apartments", D1, "apartment_id") == [(1, "invalid_value", "price=100.1250")]
    passed = spark.read.parquet(jobs.partition(zones.processed("apartments"), D1)).collect()
    assert [(r.apartment_id, r.price) for r in passed] == [(2, Decimal("99.50"))]


def test_the_sources_collation_decides_which_spellings_are_one_location_and_status(spark, source, tmp_path: Path):
    # Found by attack 30 (F8): the model compared lower(rtrim(location)), which holds these pairs apart while
    # utf8mb4_general_ci (this table's collation) holds them equal, and refused a status in another case.
    execute(
        source,
        "CREATE TABLE apartments (apartment_id INT PRIMARY KEY, location VARCHAR(255), price DECIMAL(10,2), "
        "status VARCHAR(50), created_at TIMESTAMP NULL) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci",
        *DDL[1:],
        apartments(
            (1, "Straße", "100", "Active"),
            (2, "Strase", "100", "ACTIVE "),
            (3, "Zürich", "100", "active"),
            (4, "Zurich", "100", "pending"),
            (5, "😀 Beach", "100", "active"),
            (6, "😁 Beach", "100", "active"),
            (7, "İzmir", "100", "active"),
            (8, "izmir", "100", "Inactive"),
            (9, "Zurich", "100", "retired"),
        ),
    )
    zones = jobs.Zones(str(tmp_path))
    run(spark, source, zones, D1)

    assert quarantined(spark, zones, "apartments", D1, "apartment_id") == [(9, "unknown_status", None)]
    locations = spark.read.parquet(zones.curated("dim_locations")).collect()
    # Each named by its most frequent spelling, the first in byte order on a tie.
    assert sorted((r.location_key, r.location_name) for r in locations) == [
        (1, "Strase"),
        (2, "Zurich"),
        (3, "izmir"),
        (4, "😀 Beach"),
    ]
    dim = spark.read.parquet(zones.curated("dim_apartments")).collect()
    assert sorted((r.apartment_id, r.location_key, r.status) for r in dim) == [
        (1, 1, "active"),
        (2, 1, "active"),
        (3, 2, "active"),
        (4, 2, "pending"),
        (5, 4, "active"),
        (6, 4, "active"),
        (7, 3, "active"),
        (8, 3, "inactive"),
    ]
