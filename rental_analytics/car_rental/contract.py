"""The car-rental data contract in code: datasets, columns, aliases, reason codes and output schemas."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

BATCH_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=-]{0,127}")
# What the upload gate writes beside the files it staged for a run: each dataset's version, row count and verdict.
MANIFEST_NAME = "_manifest.json"


# The job's rejected rows, beside the rejected files' folders in `quarantine/<batch_id>/`.
QUARANTINE_ROWS = "rows"


def quarantine_folder(batch_id: str, file_name: str, version: str) -> str:
    """Where one rejected version of a file is kept, with its report: `quarantine/<batch_id>/<tag>`.

    The tag is 20 hex digits of a digest of the file's name and version: the folder holds that one file and its
    `.report.json` and nothing else, so no name a sender picks meets another file, another's report, or the
    job's `rows/` folder, and a later rejected version of the same name does not replace an earlier one.
    """
    named = file_name.encode("utf-8", "surrogateescape") + b"\0" + version.encode("utf-8", "surrogateescape")
    return f"quarantine/{batch_id}/{hashlib.sha256(named).hexdigest()[:20]}"


@dataclass(frozen=True)
class Dataset:
    """One of the four input files of a batch (contract, section 1)."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)
    id_column: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the contract knows for this dataset, required first."""
        return self.required + self.optional

    @property
    def file_names(self) -> tuple[str, str]:
        """The plain and the gzip-compressed file name."""
        return f"{self.name}.csv", f"{self.name}.csv.gz"


LOCATIONS = Dataset(
    name="locations",
    required=("location_id", "location_name"),
    optional=(
        "address",
        "city",
        "state",
        "zip_code",
        "latitude",
        "longitude",
        "geographic_coordinates",
    ),
    id_column="location_id",
)
VEHICLES = Dataset(
    name="vehicles",
    required=("vehicle_id", "vehicle_type"),
    optional=(
        "active",
        "brand",
        "vehicle_year",
        "vehicle_license_number",
        "registration_name",
        "license_type",
        "expiration_date",
        "permit_license_number",
        "certification_date",
        "base_telephone_number",
        "base_address",
        "last_update_timestamp",
    ),
    aliases={"status": "active"},
    id_column="vehicle_id",
)
USERS = Dataset(
    name="users",
    required=("user_id",),
    optional=(
        "first_name",
        "last_name",
        "email",
        "phone_number",
        "driver_license_number",
        "driver_license_expiry",
        "creation_date",
        "is_active",
    ),
    aliases={"registration_date": "creation_date"},
    id_column="user_id",
)
RENTAL_TRANSACTIONS = Dataset(
    name="rental_transactions",
    required=(
        "rental_id",
        "user_id",
        "vehicle_id",
        "rental_start_time",
        "rental_end_time",
        "pickup_location",
        "total_amount",
    ),
    optional=("dropoff_location",),
    aliases={"transaction_id": "rental_id"},
    id_column="rental_id",
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (LOCATIONS, VEHICLES, USERS, RENTAL_TRANSACTIONS)}
REFERENCE_DATASETS: tuple[Dataset, ...] = (LOCATIONS, VEHICLES, USERS)

# Personal data that no analytics table needs: it never leaves raw/ (contract, section 3).
PERSONAL_COLUMNS: frozenset[str] = frozenset({"phone_number", "driver_license_number"})

# Row rules for rental_transactions, in the order they are applied (contract, section 2).
MISSING_REQUIRED = "missing_required"
DUPLICATE_RENTAL_ID = "duplicate_rental_id"
BAD_TIMESTAMP = "bad_timestamp"
END_BEFORE_START = "end_before_start"
BAD_AMOUNT = "bad_amount"
UNKNOWN_USER = "unknown_user"
UNKNOWN_VEHICLE = "unknown_vehicle"
UNKNOWN_LOCATION = "unknown_location"
TRANSACTION_REASONS: tuple[str, ...] = (
    MISSING_REQUIRED,
    DUPLICATE_RENTAL_ID,
    BAD_TIMESTAMP,
    END_BEFORE_START,
    BAD_AMOUNT,
    UNKNOWN_USER,
    UNKNOWN_VEHICLE,
    UNKNOWN_LOCATION,
)
# Reference datasets drop rows for these reasons only.
DUPLICATE_ID = "duplicate_id"
REFERENCE_REASONS: tuple[str, ...] = (MISSING_REQUIRED, DUPLICATE_ID)

DEFAULT_MAX_REJECT_RATE = 0.01

# Accepted timestamp shapes: date, then a space or T, then HH:MM with optional :SS. No capturing groups: Java's
# matcher, which Spark runs on every value, spends a fifth less time without them.
TIMESTAMP_REGEX = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?$"
# The same shapes, limited to real calendar dates and times (months, days per month, leap years, 00-23 hours,
# 00-59 minutes and seconds), for engines that check a string without building a timestamp from it.
_LEAP_DAY = r"(\d\d(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29"
_CALENDAR_DATE = (
    r"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])"
    r"|\d{4}-(0[13-9]|1[0-2])-(29|30)"
    r"|\d{4}-(0[13578]|1[02])-31"
    rf"|{_LEAP_DAY})"
)
CALENDAR_TIMESTAMP_REGEX = rf"^{_CALENDAR_DATE}[ T]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"
# A plain decimal number: no exponent, no thousands separator.
DECIMAL_REGEX = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$"
# What Java's String.trim removes. Spark's line-by-line readers skip a line of nothing else; its multi-line reader
# (and the upload gate) take such a line as a row of blanks.
JAVA_TRIMMED_CHARS = r"[\x00-\x20]"
# A blank value: nothing but spaces and control characters, as a line of them is a row of blanks
# (docs/car-rental-decisions.md). The upload gate and the Spark job both take such a value as missing.
BLANK_VALUE_REGEX = rf"^{JAVA_TRIMMED_CHARS}*$"
# The most fields a header or a row may have. Spark's CSV parser (univocity) fails the whole read on a record with
# more than its `maxColumns`, so the Spark job sets that to this and the upload gate refuses wider files.
MAX_FIELDS = 20_000

Schema = Sequence[tuple[str, str]]

# Output schemas as (column, SQL type) pairs; Spark and DuckDB types are derived from these strings.
PROCESSED_SCHEMAS: dict[str, Schema] = {
    "rental_transactions": (
        ("rental_id", "string"),
        ("user_id", "string"),
        ("vehicle_id", "string"),
        ("rental_start_time", "timestamp"),
        ("rental_end_time", "timestamp"),
        ("pickup_location", "string"),
        ("dropoff_location", "string"),
        ("total_amount", "decimal(12,2)"),
        ("rental_duration_hours", "double"),
        ("batch_id", "string"),
        ("rental_date", "date"),
    ),
    "locations": (
        *tuple((c, "string") for c in LOCATIONS.columns if c not in ("latitude", "longitude")),
        ("latitude", "double"),
        ("longitude", "double"),
        ("state_key", "string"),  # the partition: `state` as a folder name (PARTITION_KEY_REGEX)
    ),
    "vehicles": tuple((c, "string") for c in VEHICLES.columns),
    "users": (*tuple((c, "string") for c in USERS.columns if c not in PERSONAL_COLUMNS), ("registration_year", "int")),
}
# A free-text value is a partition folder's name as it is only when it is short and plain: a long one fails the
# write (ENAMETOOLONG), Spark escapes `/` and other signs (which Athena then shows escaped), and
# `__HIVE_DEFAULT_PARTITION__` is read back as null. Any other value is named by `~` and 20 hex digits of its
# SHA-256; the value itself stays a column of the files, so every reader sees it as it arrived.
PARTITION_KEY_REGEX = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}\z"
PROCESSED_PARTITIONS: dict[str, tuple[str, ...]] = {
    "rental_transactions": ("rental_date",),
    "users": ("registration_year",),
    "locations": ("state_key",),
    "vehicles": (),
}

LOCATION_PERFORMANCE = "location_performance"
USER_METRICS = "user_metrics"
VEHICLE_TYPE_PERFORMANCE = "vehicle_type_performance"
DAILY_METRICS = "daily_metrics"

ANALYTICS_SCHEMAS: dict[str, Schema] = {
    LOCATION_PERFORMANCE: (
        ("location_id", "string"),
        ("location_name", "string"),
        ("city", "string"),
        ("state", "string"),
        ("total_revenue", "decimal(18,2)"),
        ("transaction_count", "bigint"),
        ("avg_transaction_amount", "decimal(10,2)"),
        ("max_transaction_amount", "decimal(12,2)"),
        ("min_transaction_amount", "decimal(12,2)"),
        ("unique_vehicles", "bigint"),
        ("total_rental_hours", "double"),
        ("utilization_rate", "double"),
    ),
    USER_METRICS: (
        ("user_id", "string"),
        ("first_name", "string"),
        ("last_name", "string"),
        ("email", "string"),
        ("total_spent", "decimal(18,2)"),
        ("rental_count", "bigint"),
        ("avg_transaction_amount", "decimal(10,2)"),
        ("max_transaction_amount", "decimal(12,2)"),
        ("min_transaction_amount", "decimal(12,2)"),
        ("total_rental_hours", "double"),
        ("avg_rental_duration", "double"),
        ("first_rental_at", "timestamp"),
        ("last_rental_at", "timestamp"),
    ),
    VEHICLE_TYPE_PERFORMANCE: (
        ("vehicle_type", "string"),
        ("rental_count", "bigint"),
        ("total_revenue", "decimal(18,2)"),
        ("avg_transaction_amount", "decimal(10,2)"),
        ("avg_rental_duration", "double"),
        ("max_rental_duration", "double"),
        ("min_rental_duration", "double"),
        ("unique_vehicles", "bigint"),
    ),
    DAILY_METRICS: (
        ("rental_date", "date"),
        ("transaction_count", "bigint"),
        ("total_revenue", "decimal(18,2)"),
        ("avg_transaction_amount", "decimal(10,2)"),
        ("active_users", "bigint"),
        ("unique_vehicles", "bigint"),
    ),
}

# Insight queries (contract, section 4): one SQL file each under rental_analytics/car_rental/insights/.
INSIGHT_QUERIES: tuple[str, ...] = (
    "top_revenue_locations",
    "most_rented_vehicle_types",
    "top_spending_users",
    "daily_revenue_trend",
    "location_utilization",
)


def normalize_header_name(raw: str) -> str:
    """Header names match case-insensitively after trimming; a leading BOM is not part of the name."""
    return raw.lstrip("\ufeff").strip().lower()


@dataclass(frozen=True)
class HeaderMapping:
    """How a file's header maps onto a dataset's columns."""

    positions: dict[str, int]
    missing: tuple[str, ...]
    repeated: tuple[str, ...]
    unknown: tuple[str, ...]

    @property
    def usable(self) -> bool:
        """True when every required column is present exactly once."""
        return not self.missing and not self.repeated


def map_header(dataset: Dataset, header: Sequence[str]) -> HeaderMapping:
    """Match a header row to the dataset's columns, resolving aliases.

    A column named twice, directly or through an alias (``status`` beside ``active``), is repeated: we
    cannot tell which one the sender meant.
    """
    known = set(dataset.columns)
    positions: dict[str, int] = {}
    repeated: list[str] = []
    unknown: list[str] = []
    for index, raw in enumerate(header):
        name = normalize_header_name(raw)
        canonical = dataset.aliases.get(name, name)
        if canonical not in known:
            unknown.append(raw.strip())
        elif canonical in positions:
            repeated.append(canonical)
        else:
            positions[canonical] = index
    missing = tuple(c for c in dataset.required if c not in positions)
    return HeaderMapping(positions, missing, tuple(dict.fromkeys(repeated)), tuple(unknown))


def dataset_for_file_name(file_name: str) -> Dataset | None:
    """The dataset a file name stands for, or None when it names none of the four."""
    for dataset in DATASETS.values():
        if file_name in dataset.file_names:
            return dataset
    return None
