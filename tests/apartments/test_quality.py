"""Data quality rules on hand-made rows: every reason, the metrics, and the breach message."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from pyspark.testing import assertDataFrameEqual

from rental_analytics.apartments import quality
from rental_analytics.apartments.contract import APARTMENTS, BOOKINGS, USER_VIEWING

pytestmark = pytest.mark.spark

LOAD = date(2024, 6, 1)
RULES = quality.QualityRules()


def schema(table):
    return ", ".join(f"{name} {kind}" for name, kind in table.spark_schema)


def reasons(tagged, key):
    return tagged.select(key, "reason")


def test_apartment_rules_in_order(spark):
    rows = spark.createDataFrame(
        [
            (1, "Accra North", Decimal("100.00"), "active", datetime(2024, 5, 1, 9)),
            (2, " ", Decimal("100.00"), "active", datetime(2024, 5, 1, 9)),
            (3, "Accra North", Decimal("0.00"), "archived", datetime(2024, 5, 1, 9)),
            (4, "Accra North", Decimal("100.00"), "archived", datetime(2024, 5, 1, 9)),
            (5, "Accra North", Decimal("100.00"), "pending", datetime(2024, 6, 2, 23, 59)),
            (6, "Accra North", Decimal("100.00"), "inactive", datetime(2024, 6, 3, 0, 0)),
            (7, "Accra North", None, "active", datetime(2024, 6, 3, 0, 0)),
        ],
        schema(APARTMENTS),
    )
    tagged = quality.tag_rows(rows, APARTMENTS, LOAD, RULES, None)
    assertDataFrameEqual(
        reasons(tagged, "apartment_id"),
        spark.createDataFrame(
            [
                (1, None),
                (2, "missing_required"),
                (3, "price_not_positive"),
                (4, "unknown_status"),
                (5, None),  # the day after the load date is allowed
                (6, "created_after_load_date"),
                (7, "missing_required"),
            ],
            "apartment_id int, reason string",
        ),
    )
    assert [(m.metric, m.failed_rows, round(m.value, 4)) for m in quality.measure(tagged, APARTMENTS, RULES)] == [
        ("completeness", 2, 0.7143),
        ("accuracy", 4, 0.4286),  # 7 fails both: each metric counts its own failures
    ]


def test_bookings_rules_and_consistency(spark):
    rows = spark.createDataFrame(
        [
            (1, 10, 100, date(2024, 6, 1), date(2024, 6, 3), Decimal("50.00")),
            (2, 10, 100, date(2024, 9, 1), date(2024, 9, 3), Decimal("0.00")),  # future stays are fine
            (3, 10, 100, date(2024, 6, 3), date(2024, 6, 1), Decimal("-1.00")),
            (4, 10, 100, date(2024, 6, 3), date(2024, 6, 1), Decimal("5.00")),
            (5, 99, 100, date(2024, 6, 1), date(2024, 6, 3), Decimal("5.00")),
            (6, 99, None, date(2024, 6, 1), date(2024, 6, 3), Decimal("5.00")),
        ],
        schema(BOOKINGS),
    )
    known = spark.createDataFrame([(10,)], "apartment_id int")
    tagged = quality.tag_rows(rows, BOOKINGS, LOAD, RULES, known)
    assertDataFrameEqual(
        reasons(tagged, "booking_id"),
        spark.createDataFrame(
            [
                (1, None),
                (2, None),
                (3, "negative_amount"),
                (4, "end_before_start"),
                (5, "unknown_apartment"),
                (6, "missing_required"),
            ],
            "booking_id int, reason string",
        ),
    )
    metrics = {m.metric: (m.failed_rows, m.rows) for m in quality.measure(tagged, BOOKINGS, RULES)}
    assert metrics == {"completeness": (1, 6), "accuracy": (2, 6), "consistency": (2, 6)}
    assert quality.passing(tagged).columns == list(BOOKINGS.column_names)
    assert quality.failing(tagged).columns == [*BOOKINGS.column_names, "reason"]


def test_viewings_in_the_future_and_configurable_statuses(spark):
    rows = spark.createDataFrame(
        [(1, 5, 10, datetime(2024, 6, 2, 12)), (2, 5, 10, datetime(2024, 6, 5, 12))], schema(USER_VIEWING)
    )
    known = spark.createDataFrame([(10,)], "apartment_id int")
    tagged = quality.tag_rows(rows, USER_VIEWING, LOAD, RULES, known)
    assert sorted(r.reason or "" for r in tagged.collect()) == ["", "viewed_after_load_date"]

    apartments = spark.createDataFrame(
        [(1, "Accra", Decimal("1.00"), "archived", datetime(2024, 1, 1))], schema(APARTMENTS)
    )
    widened = quality.QualityRules(statuses=("active", "archived"))
    assert quality.tag_rows(apartments, APARTMENTS, LOAD, widened, None).first().reason is None


def test_an_empty_table_meets_every_threshold(spark):
    rows = spark.createDataFrame([], schema(BOOKINGS))
    tagged = quality.tag_rows(rows, BOOKINGS, LOAD, RULES, spark.createDataFrame([], "apartment_id int"))
    assert all(m.value == 1.0 and m.passed for m in quality.measure(tagged, BOOKINGS, RULES))


def test_a_breach_names_the_table_the_metric_the_value_and_the_threshold():
    metric = quality.QualityMetric("bookings", "accuracy", 0.987, 0.999, 1000, 13)
    assert not metric.passed
    assert metric.describe() == (
        "bookings accuracy is 98.7000% (13 of 1,000 rows fail), which is below the threshold 99.9000%"
    )


def test_breaches_and_values_reach_cloudwatch():
    import boto3
    from moto import mock_aws

    from rental_analytics.apartments.jobs import QualityOutcome, publish_quality_metrics

    outcome = QualityOutcome(
        "r1",
        [
            quality.QualityMetric("bookings", "accuracy", 0.98, 0.999, 100, 2),
            quality.QualityMetric("bookings", "completeness", 1.0, 0.99, 100, 0),
        ],
    )
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch")
        publish_quality_metrics(cloudwatch, "RentalAnalytics", outcome)
        names = {
            (m["MetricName"], tuple(d["Value"] for d in m.get("Dimensions", [])))
            for m in cloudwatch.list_metrics(Namespace="RentalAnalytics")["Metrics"]
        }
        breaches = cloudwatch.get_metric_statistics(
            Namespace="RentalAnalytics", MetricName="DataQualityBreaches", Statistics=["Maximum"], Period=60,
            StartTime=datetime(2000, 1, 1), EndTime=datetime(2100, 1, 1),
        )["Datapoints"]  # fmt: skip
    assert names == {
        ("DataQualityBreaches", ()),
        ("UnusualDataFindings", ()),
        ("DataQuality", ("bookings", "accuracy")),
        ("DataQuality", ("bookings", "completeness")),
    }
    assert [p["Maximum"] for p in breaches] == [1.0]


def test_unusual_extract_sizes_are_found_from_the_recorded_dq_results(spark, tmp_path):
    from rental_analytics.apartments import jobs
    from rental_analytics.apartments.contract import DQ_RESULTS_SCHEMA

    zones = jobs.Zones(str(tmp_path))
    history = [
        (f"r{day}", "bookings", "completeness", 1.0, 0.99, True, rows, 0, date(2024, 6, day))
        for day, rows in zip(range(1, 7), [3000, 3100, 2950, 3050, 3020, 2990])
    ]
    spark.createDataFrame(history, DQ_RESULTS_SCHEMA).write.partitionBy("load_date").parquet(zones.dq_results)
    normal = [quality.QualityMetric("bookings", "completeness", 1.0, 0.99, 3010, 0)]
    halved = [quality.QualityMetric("bookings", "completeness", 1.0, 0.99, 1400, 0)]

    assert jobs._unusual_row_counts(spark, zones, date(2024, 6, 7), normal) == []
    [finding] = jobs._unusual_row_counts(spark, zones, date(2024, 6, 7), halved)
    assert finding.describe().startswith("bookings: 1,400 rows, expected about 3,018")
    # Only earlier load dates count: a re-run of June 3 sees two days of history, too few to judge.
    assert jobs._unusual_row_counts(spark, zones, date(2024, 6, 3), halved) == []
