"""The apartments data contract in code: source tables, quality rules and thresholds, curated tables."""

from __future__ import annotations

from dataclasses import dataclass


class ModelOrderError(RuntimeError):
    """The model only moves forward: a load date older than one applied, or in the future, is refused."""


@dataclass(frozen=True)
class SourceTable:
    """One table of the marketplace database (contract, section 1)."""

    name: str
    key: str
    columns: tuple[tuple[str, str], ...]  # (name, MySQL type) in the order of the apartments contract, section 1
    required: tuple[str, ...]
    incremental: bool

    @property
    def column_names(self) -> tuple[str, ...]:
        """The columns in source order."""
        return tuple(name for name, _ in self.columns)

    @property
    def spark_schema(self) -> tuple[tuple[str, str], ...]:
        """(column, Spark SQL type) pairs: what the extract stores in the raw zone."""
        return tuple((name, _spark_type(sql_type)) for name, sql_type in self.columns)


def varchar_width(mysql_type: str) -> int | None:
    """n of a VARCHAR(n) column; None for other types."""
    base = mysql_type.split()[0].lower()
    return int(base[len("varchar(") : -1]) if base.startswith("varchar(") else None


def _spark_type(mysql_type: str) -> str:
    base = mysql_type.split()[0].lower()
    if base.startswith("varchar"):
        return "string"
    return {"int": "int", "timestamp": "timestamp", "date": "date"}.get(base, base)  # decimal(p,s) as it is


APARTMENTS = SourceTable(
    "apartments",
    "apartment_id",
    (
        ("apartment_id", "INT PRIMARY KEY"),
        ("location", "VARCHAR(255)"),
        ("price", "DECIMAL(10,2)"),
        ("status", "VARCHAR(50)"),
        ("created_at", "TIMESTAMP NULL"),
    ),
    required=("apartment_id", "location", "price", "status", "created_at"),
    incremental=False,
)
APARTMENT_ATTRIBUTES = SourceTable(
    "apartment_attributes",
    "attribute_id",
    (
        ("attribute_id", "INT PRIMARY KEY"),
        ("apartment_id", "INT"),
        ("attribute_name", "VARCHAR(100)"),
        ("attribute_value", "VARCHAR(255)"),
    ),
    required=("attribute_id", "apartment_id", "attribute_name"),
    incremental=False,
)
USER_VIEWING = SourceTable(
    "user_viewing",
    "viewing_id",
    (
        ("viewing_id", "INT PRIMARY KEY"),
        ("user_id", "INT"),
        ("apartment_id", "INT"),
        ("viewing_date", "TIMESTAMP NULL"),
    ),
    required=("viewing_id", "user_id", "apartment_id", "viewing_date"),
    incremental=True,
)
BOOKINGS = SourceTable(
    "bookings",
    "booking_id",
    (
        ("booking_id", "INT PRIMARY KEY"),
        ("apartment_id", "INT"),
        ("user_id", "INT"),
        ("start_date", "DATE"),
        ("end_date", "DATE"),
        ("total_amount", "DECIMAL(10,2)"),
    ),
    required=("booking_id", "apartment_id", "user_id", "start_date", "end_date", "total_amount"),
    incremental=True,
)
SOURCE_TABLES: dict[str, SourceTable] = {t.name: t for t in (APARTMENTS, APARTMENT_ATTRIBUTES, USER_VIEWING, BOOKINGS)}

# Quality metrics and their default thresholds (apartments contract, section 2).
COMPLETENESS, ACCURACY, CONSISTENCY = "completeness", "accuracy", "consistency"
DEFAULT_THRESHOLDS: dict[str, float] = {COMPLETENESS: 0.99, ACCURACY: 0.999, CONSISTENCY: 0.99}
DEFAULT_STATUSES: tuple[str, ...] = ("active", "inactive", "pending")

# Why a row is quarantined: the first failing metric's reason.
MISSING_REQUIRED = "missing_required"
PRICE_NOT_POSITIVE = "price_not_positive"
UNKNOWN_STATUS = "unknown_status"
CREATED_IN_FUTURE = "created_after_load_date"
VIEWED_IN_FUTURE = "viewed_after_load_date"
NEGATIVE_AMOUNT = "negative_amount"
END_BEFORE_START = "end_before_start"
UNKNOWN_APARTMENT = "unknown_apartment"
# Beyond the contract's reasons: a key that more than one source row has (every copy is quarantined), a value
# that does not read as its type (`2024-05-00`, a price beyond DECIMAL(10,2); its text is kept), and text the
# warehouse cannot store (a NUL, or longer in UTF-8 bytes than its column: Redshift's VARCHAR counts bytes).
DUPLICATE_KEY = "duplicate_key"
INVALID_VALUE = "invalid_value"
UNSTORABLE_VALUE = "unstorable_value"
# How far from the load date a booking's dates may lie (a stay of the marketplace's past, or booked ahead);
# beyond, a date is a placeholder or a typo (`9999-12-31`) and the booking is quarantined as invalid_value.
BOOKING_YEARS_BACK, BOOKING_YEARS_AHEAD = 100, 10
# The extract's column of apartments that says which location a row's spelling is, as the source compares
# text: the byte-wise first of the spellings the source's collation holds equal to the row's `location`.
LOCATION_CLASS = "location_class"
# The extract's column holding, for a row with values that do not read as their type, each as `name=text`.
INVALID_TEXT = "invalid_text"

# The curated zone's tables as Spark DDL (contract, section 3); surrogate keys are BIGINT.
CURATED_SCHEMAS: dict[str, str] = {
    "dim_locations": "location_key bigint, location_name string",
    "dim_users": "user_key bigint, user_id int",
    "dim_apartments": (
        "apartment_key bigint, apartment_id int, location_key bigint, current_price decimal(10,2), status string, "
        "effective_date date, end_date date, is_current boolean"
    ),
    "fact_bookings": (
        "booking_key bigint, booking_id int, apartment_key bigint, user_key bigint, booking_date date, "
        "amount decimal(10,2), duration_days int"
    ),
    "fact_viewings": (
        "viewing_key bigint, viewing_id int, apartment_key bigint, user_key bigint, viewing_date timestamp"
    ),
}
DQ_RESULTS_SCHEMA = (
    "run_id string, table_name string, metric string, value double, threshold double, passed boolean, "
    "rows bigint, failed_rows bigint, load_date date"
)
