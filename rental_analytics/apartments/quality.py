"""Data quality of the extracted tables: each row's first failing rule, and per-table metrics against thresholds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from rental_analytics.apartments.contract import (
    ACCURACY,
    APARTMENT_ATTRIBUTES,
    APARTMENTS,
    BOOKING_YEARS_AHEAD,
    BOOKING_YEARS_BACK,
    BOOKINGS,
    COMPLETENESS,
    CONSISTENCY,
    CREATED_IN_FUTURE,
    DEFAULT_STATUSES,
    DEFAULT_THRESHOLDS,
    DUPLICATE_KEY,
    END_BEFORE_START,
    INVALID_TEXT,
    INVALID_VALUE,
    MISSING_REQUIRED,
    NEGATIVE_AMOUNT,
    PRICE_NOT_POSITIVE,
    UNKNOWN_APARTMENT,
    UNKNOWN_STATUS,
    UNSTORABLE_VALUE,
    USER_VIEWING,
    VIEWED_IN_FUTURE,
    SourceTable,
    varchar_width,
)
from rental_analytics.apartments.model import as_collated

REASON = "reason"
KNOWN = "_apartment_known"
COPIES = "_copies"
METRICS = (COMPLETENESS, ACCURACY, CONSISTENCY)


@dataclass(frozen=True)
class QualityRules:
    """Thresholds per metric and the accepted statuses; the defaults are the apartments contract's (section 2)."""

    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    statuses: tuple[str, ...] = DEFAULT_STATUSES
    # An empty apartments snapshot closes every apartment of the model: far likelier a broken extract (a
    # wrong database, a truncated table) than a marketplace with nothing left, so it must be asked for.
    allow_empty_apartments: bool = False


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


def _status(rules: QualityRules) -> Column:
    """The accepted status a row's `status` is, as the source compares text (`Active ` is `active`); else null."""
    status = as_collated(F.col("status"))
    return F.coalesce(*[F.when(status == name.rstrip(" ").lower(), F.lit(name)) for name in rules.statuses])


def _implausible(name: str, load_date: date) -> Column:
    """A booking date no stay has: more than BOOKING_YEARS_BACK before the load date or BOOKING_YEARS_AHEAD after.

    `9999-12-31` is a placeholder, not a stay; kept, it would put every month up to it in the occupancy KPI.
    """
    day = F.lit(load_date)
    earliest, latest = F.add_months(day, -12 * BOOKING_YEARS_BACK), F.add_months(day, 12 * BOOKING_YEARS_AHEAD)
    return (F.col(name) < earliest) | (F.col(name) > latest)


def _unstorable(table: SourceTable) -> Column:
    """Text the warehouse cannot hold: a NUL (PostgreSQL refuses it), or more UTF-8 bytes than its VARCHAR."""
    checks = [
        (F.instr(F.col(name), "\u0000") > 0) | (F.octet_length(F.col(name)) > width)
        for name, kind in table.columns
        if (width := varchar_width(kind)) is not None
    ]
    return reduce(lambda a, b: a | b, checks)


def rules_for(table: SourceTable, load_date: date, rules: QualityRules, columns: tuple[str, ...] = ()) -> list[Rule]:
    """The table's rules in the order a row's reason is chosen: identity, completeness, accuracy, consistency.

    A key that several rows share fails every copy (which one is the source's is unknowable), and a value
    that did not read as its type fails before completeness would count it missing; both count against
    accuracy (consistency for apartment_attributes, which has no accuracy rules). `columns` are the rows'
    columns: the extract's `invalid_text` is checked when it is there. A rule whose input is missing does
    not fail: completeness already counts that row.
    """
    missing = reduce(lambda a, b: a | b, [_blank(name, table) for name in table.required])
    # Counted against a metric the table already has: apartment_attributes has no accuracy rules, and a
    # metric of its own would change what dq_results holds for every run.
    identity = CONSISTENCY if table is APARTMENT_ATTRIBUTES else ACCURACY
    checks = [Rule(identity, DUPLICATE_KEY, F.col(table.key).isNotNull() & (F.col(COPIES) > 1))]
    if INVALID_TEXT in columns:
        checks.append(Rule(identity, INVALID_VALUE, F.col(INVALID_TEXT).isNotNull()))
    checks.append(Rule(COMPLETENESS, MISSING_REQUIRED, missing))
    if table is APARTMENTS:
        # Only the apartments' text reaches the warehouse (as dim_locations and dim_apartments.status).
        checks += [
            Rule(ACCURACY, UNSTORABLE_VALUE, _unstorable(table)),
            Rule(ACCURACY, PRICE_NOT_POSITIVE, F.col("price") <= 0),
            Rule(ACCURACY, UNKNOWN_STATUS, F.col("status").isNotNull() & _status(rules).isNull()),
            Rule(ACCURACY, CREATED_IN_FUTURE, _after_day_after("created_at", load_date)),
        ]
    elif table is USER_VIEWING:
        checks.append(Rule(ACCURACY, VIEWED_IN_FUTURE, _after_day_after("viewing_date", load_date)))
    elif table is BOOKINGS:
        checks += [
            Rule(ACCURACY, INVALID_VALUE, _implausible("start_date", load_date) | _implausible("end_date", load_date)),
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
    rows = rows.withColumn(COPIES, F.count(F.lit(1)).over(Window.partitionBy(table.key)))
    checks = rules_for(table, load_date, rules, tuple(rows.columns))
    reason = reduce(
        lambda chosen, rule: F.when(rule.broken, rule.reason).otherwise(chosen), reversed(checks), F.lit(None)
    )
    flags = {
        f"_fails_{metric}": reduce(lambda a, b: a | b, [r.broken for r in checks if r.metric == metric])
        for metric in METRICS
        if any(r.metric == metric for r in checks)
    }
    tagged = rows.withColumns({**flags, REASON: reason.cast("string")}).drop(KNOWN, COPIES)
    if table is APARTMENTS:
        # A passing row's status is spelled as the accepted list spells it, so `Active` and `active` (one value
        # in the source) never make two versions of an apartment; a quarantined row keeps the source's text.
        tagged = tagged.withColumn("status", F.when(F.col(REASON).isNull(), _status(rules)).otherwise(F.col("status")))
    return tagged


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
    flags = [c for c in tagged.columns if c.startswith("_fails_")]
    return tagged.filter(F.col(REASON).isNull()).drop(REASON, INVALID_TEXT, *flags)


def failing(tagged: DataFrame) -> DataFrame:
    """The rows that fail, with their values as extracted (and the text of those that did not read) and reason."""
    return tagged.filter(F.col(REASON).isNotNull()).drop(*[c for c in tagged.columns if c.startswith("_fails_")])
