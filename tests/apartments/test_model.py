"""The dimensional model's transforms on hand-made frames: SCD2 over three load dates, keys, and facts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from rental_analytics.apartments import model
from rental_analytics.apartments.contract import CURATED_SCHEMAS

pytestmark = pytest.mark.spark

D1, D2, D3 = date(2024, 6, 1), date(2024, 6, 2), date(2024, 6, 3)
SNAPSHOT = "apartment_id int, location_key bigint, current_price decimal(10,2), status string"


def key(apartment_id: int, day: date) -> int:
    """The key of an apartment's version from `day` (model.version_key)."""
    return apartment_id * 100_000_000 + int(day.strftime("%Y%m%d"))


def snapshot(spark, *rows):
    return spark.createDataFrame([(i, loc, Decimal(price), status) for i, loc, price, status in rows], SNAPSHOT)


def dim(spark, *rows):
    return spark.createDataFrame(
        [(k, i, loc, Decimal(p), s, eff, end, end is None) for k, i, loc, p, s, eff, end in rows],
        CURATED_SCHEMAS["dim_apartments"],
    )


def empty(spark, table):
    return spark.createDataFrame([], CURATED_SCHEMAS[table])


def flat(frame):
    """Each load date's dimension as the next one reads it: materialised, as from Parquet in the jobs."""
    return frame.localCheckpoint()


@pytest.fixture(scope="module")
def three_dates(spark):
    day1 = flat(
        model.scd2_apartments(
            empty(spark, "dim_apartments"),
            snapshot(spark, (1, 10, "100.00", "active"), (2, 20, "200.00", "active"), (3, 30, "300.00", "pending")),
            D1,
        )
    )
    # D2: 1's price changes, 2 stays, 3 disappears, 4 arrives.
    day2 = flat(
        model.scd2_apartments(
            day1,
            snapshot(spark, (1, 10, "110.00", "active"), (2, 20, "200.00", "active"), (4, 40, "400.00", "active")),
            D2,
        )
    )
    # D3: 1 moves, 2's status changes, 3 comes back, 4 stays.
    day3_snapshot = snapshot(
        spark,
        (1, 11, "110.00", "active"),
        (2, 20, "200.00", "inactive"),
        (3, 30, "300.00", "pending"),
        (4, 40, "400.00", "active"),
    )
    day3 = flat(model.scd2_apartments(day2, day3_snapshot, D3))
    return day1, day2, day3, day3_snapshot


def test_scd2_over_three_load_dates(spark, three_dates):
    day1, day2, day3, _ = three_dates
    assertDataFrameEqual(
        day1,
        dim(
            spark,
            (key(1, D1), 1, 10, "100.00", "active", D1, None),
            (key(2, D1), 2, 20, "200.00", "active", D1, None),
            (key(3, D1), 3, 30, "300.00", "pending", D1, None),
        ),
    )
    assertDataFrameEqual(
        day2,
        dim(
            spark,
            (key(1, D1), 1, 10, "100.00", "active", D1, D1),
            (key(1, D2), 1, 10, "110.00", "active", D2, None),
            (key(2, D1), 2, 20, "200.00", "active", D1, None),
            (key(3, D1), 3, 30, "300.00", "pending", D1, D1),
            (key(4, D2), 4, 40, "400.00", "active", D2, None),
        ),
    )
    assertDataFrameEqual(
        day3,
        dim(
            spark,
            (key(1, D1), 1, 10, "100.00", "active", D1, D1),
            (key(1, D2), 1, 10, "110.00", "active", D2, D2),
            (key(1, D3), 1, 11, "110.00", "active", D3, None),
            (key(2, D1), 2, 20, "200.00", "active", D1, D2),
            (key(2, D3), 2, 20, "200.00", "inactive", D3, None),
            (key(3, D1), 3, 30, "300.00", "pending", D1, D1),
            (key(3, D3), 3, 30, "300.00", "pending", D3, None),
            (key(4, D2), 4, 40, "400.00", "active", D2, None),
        ),
    )


def test_applying_a_load_date_again_changes_nothing(spark, three_dates):
    _, _, day3, day3_snapshot = three_dates
    assertDataFrameEqual(model.scd2_apartments(day3, day3_snapshot, D3), day3)


def test_a_corrected_rerun_replaces_that_dates_versions_only(spark, three_dates):
    _, day2, day3, _ = three_dates
    corrected = snapshot(
        spark,
        (1, 10, "110.00", "active"),
        (2, 20, "200.00", "active"),
        (3, 30, "300.00", "pending"),
        (4, 40, "400.00", "active"),
    )
    rerun = model.scd2_apartments(day3, corrected, D3)
    assertDataFrameEqual(rerun, model.scd2_apartments(day2, corrected, D3))
    assert rerun.filter("end_date < effective_date").count() == 0
    assert rerun.filter("is_current").groupBy("apartment_id").count().filter("count > 1").count() == 0


def test_a_version_keeps_its_key_when_its_date_is_run_again_on_a_source_that_changed_since(spark, three_dates):
    # Found by attack 30 (F9): keys were numbered in apartment order after the largest one in use, so a re-run
    # (or an undo and a re-run) that met one more change gave apartment 4's version of D2 another key.
    day1, day2, _, _ = three_dates
    also_2_changed = snapshot(
        spark, (1, 10, "110.00", "active"), (2, 20, "210.00", "active"), (4, 40, "400.00", "active")
    )
    again = flat(model.scd2_apartments(day2, also_2_changed, D2))  # a re-run of D2
    after_undo = model.scd2_apartments(day1, also_2_changed, D2)  # the model of D1, then D2 again

    keys = [(r.apartment_id, r.effective_date, r.apartment_key) for r in day2.collect()]
    assert set(keys) <= {(r.apartment_id, r.effective_date, r.apartment_key) for r in again.collect()}
    assertDataFrameEqual(after_undo, again)


def test_a_dimension_keeps_its_keys_and_numbers_new_values_after_them(spark):
    previous = spark.createDataFrame([(1, "Accra North"), (2, "Lagos East")], CURATED_SCHEMAS["dim_locations"])
    values = spark.createDataFrame(
        [("Lagos East",), ("Abuja Hills",), ("Accra Central",), (None,)], "location_name string"
    )
    assertDataFrameEqual(
        model.extend_dimension(previous, values, "location_key", "location_name"),
        spark.createDataFrame(
            [(1, "Accra North"), (2, "Lagos East"), (3, "Abuja Hills"), (4, "Accra Central")],
            CURATED_SCHEMAS["dim_locations"],
        ),
    )


def test_the_version_in_effect_on_each_date(spark, three_dates):
    _, _, day3, _ = three_dates
    events = spark.createDataFrame(
        [(100, 1, date(2024, 5, 1)), (101, 1, D2), (102, 1, date(2024, 7, 1)), (103, 3, D2), (104, 2, D2)],
        "event_id int, apartment_id int, day date",
    )
    assertDataFrameEqual(
        model.version_in_effect(events, day3, "event_id", F.col("day")),
        spark.createDataFrame(
            # 100 predates every version of 1: the earliest. 103 falls in 3's gap: the version before it.
            [(100, key(1, D1)), (101, key(1, D2)), (102, key(1, D3)), (103, key(3, D1)), (104, key(2, D1))],
            "event_id int, apartment_key bigint",
        ),
    )


def test_fact_bookings_keys_amounts_and_durations(spark, three_dates):
    _, _, day3, _ = three_dates
    users = spark.createDataFrame([(1, 501), (2, 502)], CURATED_SCHEMAS["dim_users"])
    bookings = spark.createDataFrame(
        [
            (9001, 1, 501, date(2024, 6, 2), date(2024, 6, 5), Decimal("330.00"), D2),
            (9002, 2, 502, date(2024, 8, 1), date(2024, 8, 2), Decimal("200.00"), D3),
        ],
        "booking_id int, apartment_id int, user_id int, start_date date, end_date date, total_amount decimal(10,2), load_date date",
    )
    previous = spark.createDataFrame(
        [(7, 9001, 1, 1, date(2024, 6, 2), Decimal("330.00"), 3)], CURATED_SCHEMAS["fact_bookings"]
    )
    assertDataFrameEqual(
        model.fact_bookings(bookings, day3, users, previous),
        spark.createDataFrame(
            [
                (7, 9001, key(1, D2), 1, date(2024, 6, 2), Decimal("330.00"), 3),
                (8, 9002, key(2, D3), 2, date(2024, 8, 1), Decimal("200.00"), 1),
            ],
            CURATED_SCHEMAS["fact_bookings"],
        ),
    )


def test_latest_rows_keep_the_newest_load_of_each_key(spark):
    history = spark.createDataFrame(
        [(1, "old", D1), (1, "new", D2), (2, "only", D1)], "booking_id int, note string, load_date date"
    )
    assertDataFrameEqual(
        model.latest_rows(history, "booking_id"),
        spark.createDataFrame([(1, "new", D2), (2, "only", D1)], "booking_id int, note string, load_date date"),
    )
