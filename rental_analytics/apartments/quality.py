"""Data quality of the extracted tables: each row's first failing rule, and per-table metrics against thresholds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from rental_analytics.apartments.contract import (
    ACCURACY,
    APARTMENTS,
    BOOKINGS,
    COMPLETENESS,
    CONSISTENCY,
    CREATED_IN_FUTURE,
    DEFAULT_STATUSES,
    DEFAULT_THRESHOLDS,
    END_BEFORE_START,
    MISSING_REQUIRED,
    NEGATIVE_AMOUNT,
    PRICE_NOT_POSITIVE,
    UNKNOWN_APARTMENT,
    UNKNOWN_STATUS,
    USER_VIEWING,
    VIEWED_IN_FUTURE,
    SourceTable,
)

REASON = "reason"
KNOWN = "_apartment_known"
METRICS = (COMPLETENESS, ACCURACY, CONSISTENCY)


@dataclass(frozen=True)
class QualityRules:
    """Thresholds per metric and the accepted statuses; the defaults are the apartments contract's (section 2)."""

    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    statuses: tuple[str, ...] = DEFAULT_STATUSES


@dataclass(frozen=True)
class Rule:
    """One way a row can fail a metric."""

    metric: str
    reason: str
    broken: Column


def _blank(name: str, table: SourceTable) -> Column:
    column = F.col(name)
    if dict(table.spark_schema)[name] == "string":
        return column.isNull() | (F.trim(column) == "")
    return column.isNull()


def _after_day_after(name: str, load_date: date) -> Column:
    return F.to_date(F.col(name)) > F.date_add(F.lit(load_date), 1)


def rules_for(table: SourceTable, load_date: date, rules: QualityRules) -> list[Rule]:
    """The table's rules in the order a row's reason is chosen: completeness, accuracy, consistency.

    A rule whose input is missing does not fail: completeness already counts that row.
    """
    missing = reduce(lambda a, b: a | b, [_blank(name, table) for name in table.required])
    checks = [Rule(COMPLETENESS, MISSING_REQUIRED, missing)]
    if table is APARTMENTS:
        checks += [
            Rule(ACCURACY, PRICE_NOT_POSITIVE, F.col("price") <= 0),
            Rule(ACCURACY, UNKNOWN_STATUS, ~F.col("status").isin(*rules.statuses)),
            Rule(ACCURACY, CREATED_IN_FUTURE, _after_day_after("created_at", load_date)),
        ]
    elif table is USER_VIEWING:
        checks.append(Rule(ACCURACY, VIEWED_IN_FUTURE, _after_day_after("viewing_date", load_date)))
    elif table is BOOKINGS:
        checks += [
            Rule(ACCURACY, NEGATIVE_AMOUNT, F.col("total_amount") < 0),
            Rule(ACCURACY, END_BEFORE_START, F.col("end_date") < F.col("start_date")),
        ]
    if table is not APARTMENTS:
        checks.append(Rule(CONSISTENCY, UNKNOWN_APARTMENT, F.col("apartment_id").isNotNull() & F.col(KNOWN).isNull()))
    return [Rule(r.metric, r.reason, F.coalesce(r.broken, F.lit(False))) for r in checks]


def tag_rows(
    rows: DataFrame, table: SourceTable, load_date: date, rules: QualityRules, known_apartments: DataFrame | None
) -> DataFrame:
    """The rows with `reason` (null when the row passes) and a `_fails_<metric>` flag per metric.

    `known_apartments` (one column, `apartment_id`) is what references may point at; apartments need none.
    """
    if table is not APARTMENTS:
        if known_apartments is None:
            raise ValueError(f"{table.name} needs the known apartments to check its references")
        known = known_apartments.select("apartment_id").distinct().withColumn(KNOWN, F.lit(True))
        rows = rows.join(F.broadcast(known), "apartment_id", "left").select(*rows.columns, KNOWN)
    checks = rules_for(table, load_date, rules)
    reason = reduce(
        lambda chosen, rule: F.when(rule.broken, rule.reason).otherwise(chosen), reversed(checks), F.lit(None)
    )
    flags = {
        f"_fails_{metric}": reduce(lambda a, b: a | b, [r.broken for r in checks if r.metric == metric])
        for metric in METRICS
        if any(r.metric == metric for r in checks)
    }
    tagged = rows.withColumns({**flags, REASON: reason.cast("string")})
    return tagged.drop(KNOWN) if KNOWN in tagged.columns else tagged


@dataclass(frozen=True)
class QualityMetric:
    """One metric of one table in one run."""

    table: str
    metric: str
    value: float
    threshold: float
    rows: int
    failed_rows: int

    @property
    def passed(self) -> bool:
        """At or above the threshold."""
        return self.value >= self.threshold

    def describe(self) -> str:
        """The breach message: the table, the metric, the value and the threshold."""
        verdict = "meets" if self.passed else "is below"
        return (
            f"{self.table} {self.metric} is {self.value:.4%} ({self.failed_rows:,} of {self.rows:,} rows fail), "
            f"which {verdict} the threshold {self.threshold:.4%}"
        )


def measure(tagged: DataFrame, table: SourceTable, rules: QualityRules) -> list[QualityMetric]:
    """Completeness, accuracy and (for tables with references) consistency of tagged rows, in one pass."""
    metrics = [m for m in METRICS if f"_fails_{m}" in tagged.columns]
    sums = [F.sum(F.col(f"_fails_{m}").cast("long")).alias(m) for m in metrics]
    row = tagged.agg(F.count(F.lit(1)).alias("rows"), *sums).first()
    assert row is not None
    total = int(row["rows"])
    results = []
    for metric in metrics:
        failed = int(row[metric] or 0)
        value = 1.0 if total == 0 else (total - failed) / total
        results.append(QualityMetric(table.name, metric, value, rules.thresholds[metric], total, failed))
    return results


def passing(tagged: DataFrame) -> DataFrame:
    """The rows that pass every rule, without the quality columns."""
    return tagged.filter(F.col(REASON).isNull()).drop(REASON, *[c for c in tagged.columns if c.startswith("_fails_")])


def failing(tagged: DataFrame) -> DataFrame:
    """The rows that fail, with their values as extracted and their reason."""
    return tagged.filter(F.col(REASON).isNotNull()).drop(*[c for c in tagged.columns if c.startswith("_fails_")])
