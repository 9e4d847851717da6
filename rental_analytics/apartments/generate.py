"""A realistic marketplace in the source MySQL database, with rows that break each quality rule on purpose."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable

from rental_analytics.apartments.contract import SOURCE_TABLES, SourceTable
from rental_analytics.apartments.db_url import DatabaseUrl

CITIES = (
    "Accra", "Kumasi", "Tamale", "Takoradi", "Cape Coast", "Lagos", "Abuja", "Nairobi", "Mombasa", "Kigali",
    "Dakar", "Abidjan", "Lome", "Cotonou", "Kampala", "Dar es Salaam", "Lusaka", "Harare", "Gaborone", "Windhoek",
)  # fmt: skip
DISTRICTS = ("Central", "North", "East", "West", "Riverside", "Airport", "Old Town", "Hills", "Harbour", "Market")
ATTRIBUTES = (
    ("bedrooms", lambda rng: str(rng.randint(1, 5))),
    ("bathrooms", lambda rng: str(rng.randint(1, 3))),
    ("floor_area_m2", lambda rng: str(rng.randint(25, 220))),
    ("furnished", lambda rng: rng.choice(["yes", "no"])),
    ("pets_allowed", lambda rng: rng.choice(["yes", "no"])),
    ("parking", lambda rng: rng.choice(["street", "garage", "none"])),
)
UNKNOWN_APARTMENT_ID = 2_000_000_000
INSERT_BATCH = 10_000
# Bad rows per metric, as a multiple of --bad-share: under the default thresholds (99%, 99.9%, 99%) a
# default run passes while every rule still meets a few rows.
METRIC_WEIGHT = {"completeness": 10, "accuracy": 1, "consistency": 4}


@dataclass(frozen=True)
class MarketplaceOptions:
    """Size and shape of a generated marketplace; the same options give the same rows."""

    apartments: int = 1_000
    bookings: int | None = None
    viewings: int | None = None
    users: int | None = None
    locations: int = 60
    seed: int = 7
    as_of: date = date(2024, 6, 1)
    bad_share: float = 0.0005

    @property
    def booking_count(self) -> int:
        """Three bookings per apartment unless given."""
        return self.bookings if self.bookings is not None else 3 * self.apartments

    @property
    def viewing_count(self) -> int:
        """Six viewings per apartment unless given."""
        return self.viewings if self.viewings is not None else 6 * self.apartments

    @property
    def user_count(self) -> int:
        """One user per two bookings unless given."""
        return self.users or max(10, self.booking_count // 2)


@dataclass
class Generated:
    """Rows written per table, and rows broken on purpose per table and reason."""

    rows: Counter[str] = field(default_factory=Counter)
    broken: Counter[str] = field(default_factory=Counter)


@contextmanager
def connect(url: DatabaseUrl) -> Iterator[Any]:
    """A PyMySQL connection that commits when the block succeeds."""
    import pymysql

    connection = pymysql.connect(
        host=url.host, port=url.port, user=url.user, password=url.password, database=url.database, autocommit=False
    )
    try:
        yield connection
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()


def create_tables(cursor: Any) -> None:
    """Drop and create the four source tables of the apartments contract (section 1)."""
    for table in SOURCE_TABLES.values():
        cursor.execute(f"DROP TABLE IF EXISTS {table.name}")
        columns = ", ".join(f"{name} {sql_type}" for name, sql_type in table.columns)
        cursor.execute(f"CREATE TABLE {table.name} ({columns})")


def _insert(cursor: Any, table: SourceTable, rows: Sequence[Sequence[object]]) -> None:
    names = ", ".join(table.column_names)
    marks = ", ".join(["%s"] * len(table.columns))
    for start in range(0, len(rows), INSERT_BATCH):
        # PyMySQL turns executemany of an INSERT into multi-row statements.
        cursor.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows[start : start + INSERT_BATCH])


def _location(rng: random.Random, count: int) -> str:
    index = rng.randrange(count)
    return f"{CITIES[index % len(CITIES)]} {DISTRICTS[(index // len(CITIES)) % len(DISTRICTS)]}"


def _moment(rng: random.Random, latest: date, days_back: int) -> datetime:
    day = latest - timedelta(days=rng.randint(1, days_back))
    return datetime(day.year, day.month, day.day, rng.randint(7, 21), rng.randint(0, 59), rng.randint(0, 59))


def _apartment_rows(rng: random.Random, first_id: int, count: int, options: MarketplaceOptions) -> list[list[object]]:
    statuses = ["active"] * 8 + ["inactive", "pending"]
    return [
        [
            apartment_id,
            _location(rng, options.locations),
            Decimal(rng.randint(4000, 40000)) / 100,
            rng.choice(statuses),
            _moment(rng, options.as_of, 900),
        ]
        for apartment_id in range(first_id, first_id + count)
    ]


def _booking_rows(
    rng: random.Random, first_id: int, count: int, prices: dict[int, Decimal], users: int, as_of: date
) -> list[list[object]]:
    ids = list(prices)
    rows: list[list[object]] = []
    for booking_id in range(first_id, first_id + count):
        apartment_id = rng.choice(ids)
        start = as_of + timedelta(days=rng.randint(-365, 90))  # future stays are booked too
        nights = rng.randint(1, 21)
        amount = (prices[apartment_id] * nights).quantize(Decimal("0.01"))
        rows.append([booking_id, apartment_id, rng.randint(1, users), start, start + timedelta(days=nights), amount])
    return rows


def _viewing_rows(
    rng: random.Random, first_id: int, count: int, apartment_ids: list[int], users: int, as_of: date
) -> list[list[object]]:
    return [
        [viewing_id, rng.randint(1, users), rng.choice(apartment_ids), _moment(rng, as_of, 365)]
        for viewing_id in range(first_id, first_id + count)
    ]


Breaker = Callable[[list[object], random.Random], None]


def _set(index: int, value: object) -> Breaker:
    def apply(row: list[object], _: random.Random) -> None:
        row[index] = value

    return apply


def _end_before_start(row: list[object], rng: random.Random) -> None:
    start = row[3]
    assert isinstance(start, date)
    row[4] = start - timedelta(days=rng.randint(1, 5))


def _breakers(as_of: date) -> dict[str, dict[str, list[tuple[str, Breaker]]]]:
    """Per table and metric, the ways a row can break it, each with its reason."""
    future = datetime(as_of.year, as_of.month, as_of.day) + timedelta(days=30)
    return {
        "apartments": {
            "completeness": [("missing_required", _set(1, None)), ("missing_required", _set(2, None))],
            "accuracy": [
                ("price_not_positive", _set(2, Decimal("0.00"))),
                ("unknown_status", _set(3, "archived")),
                ("created_after_load_date", _set(4, future)),
            ],
        },
        "apartment_attributes": {
            "completeness": [("missing_required", _set(2, None))],
            "consistency": [("unknown_apartment", _set(1, UNKNOWN_APARTMENT_ID))],
        },
        "user_viewing": {
            "completeness": [("missing_required", _set(3, None))],
            "accuracy": [("viewed_after_load_date", _set(3, future))],
            "consistency": [("unknown_apartment", _set(2, UNKNOWN_APARTMENT_ID))],
        },
        "bookings": {
            "completeness": [("missing_required", _set(5, None)), ("missing_required", _set(2, None))],
            "accuracy": [("negative_amount", _set(5, Decimal("-10.00"))), ("end_before_start", _end_before_start)],
            "consistency": [("unknown_apartment", _set(1, UNKNOWN_APARTMENT_ID))],
        },
    }


def _break_rows(
    table: str, rows: list[list[object]], rng: random.Random, share: float, as_of: date, generated: Generated
) -> None:
    if share <= 0 or not rows:
        return
    chosen = iter(rng.sample(range(len(rows)), len(rows)))
    for metric, ways in _breakers(as_of)[table].items():
        for number in range(int(len(rows) * share * METRIC_WEIGHT[metric])):
            reason, breaker = ways[number % len(ways)]
            breaker(rows[next(chosen)], rng)
            generated.broken[f"{table}.{reason}"] += 1


def generate_marketplace(url: DatabaseUrl, options: MarketplaceOptions) -> Generated:
    """Create the source tables and fill them; the previous contents of those tables are dropped."""
    rng = random.Random(options.seed)
    generated = Generated()
    apartments = _apartment_rows(rng, 1, options.apartments, options)
    prices = {int(str(row[0])): Decimal(str(row[2])) for row in apartments}
    attributes: list[list[object]] = []
    for apartment_id in prices:
        for name, value in rng.sample(ATTRIBUTES, rng.randint(2, len(ATTRIBUTES))):
            attributes.append([len(attributes) + 1, apartment_id, name, value(rng)])
    users = options.user_count
    bookings = _booking_rows(rng, 1, options.booking_count, prices, users, options.as_of)
    viewings = _viewing_rows(rng, 1, options.viewing_count, list(prices), users, options.as_of)
    tables = {"apartments": apartments, "apartment_attributes": attributes, "user_viewing": viewings}
    tables["bookings"] = bookings
    with connect(url) as connection, connection.cursor() as cursor:
        create_tables(cursor)
        for name, rows in tables.items():
            _break_rows(name, rows, rng, options.bad_share, options.as_of, generated)
            _insert(cursor, SOURCE_TABLES[name], rows)
            generated.rows[name] = len(rows)
    return generated


@dataclass(frozen=True)
class ChangeOptions:
    """What changes in the source between two load dates."""

    seed: int = 11
    change_share: float = 0.1
    delete_share: float = 0.02
    new_share: float = 0.05
    as_of: date = date(2024, 6, 2)


def _top_and_count(cursor: Any, table: str) -> tuple[int, int]:
    cursor.execute(f"SELECT COALESCE(MAX({SOURCE_TABLES[table].key}), 0), COUNT(*) FROM {table}")
    top, count = cursor.fetchone()
    return int(top), int(count)


def change_marketplace(url: DatabaseUrl, options: ChangeOptions) -> Generated:
    """Move the marketplace on by one load date, so that SCD2 and incremental loads have work to do.

    Prices, locations and statuses of some apartments change, some apartments go, new ones come, and new
    bookings and viewings arrive above the current ids.
    """
    rng = random.Random(options.seed)
    generated = Generated()
    with connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT apartment_id, price FROM apartments WHERE price > 0 ORDER BY apartment_id")
        prices = {int(row[0]): Decimal(row[1]) for row in cursor.fetchall()}
        ids = list(prices)
        picked = rng.sample(ids, min(len(ids), int(len(ids) * (3 * options.change_share + options.delete_share))))
        size = int(len(ids) * options.change_share)
        price_ids, location_ids = picked[:size], picked[size : 2 * size]
        status_ids, deleted = picked[2 * size : 3 * size], picked[3 * size :]
        factors = [Decimal(f) for f in ("0.90", "0.95", "1.05", "1.10", "1.20")]
        cursor.executemany(
            "UPDATE apartments SET price = %s WHERE apartment_id = %s",
            [((prices[i] * rng.choice(factors)).quantize(Decimal("0.01")), i) for i in price_ids],
        )
        cursor.executemany(
            "UPDATE apartments SET location = %s WHERE apartment_id = %s",
            [(_location(rng, 60), i) for i in location_ids],
        )
        cursor.executemany(
            "UPDATE apartments SET status = %s WHERE apartment_id = %s",
            [(rng.choice(["inactive", "pending", "active"]), i) for i in status_ids],
        )
        for table in ("apartment_attributes", "apartments"):
            cursor.executemany(f"DELETE FROM {table} WHERE apartment_id = %s", [(i,) for i in deleted])
        generated.rows.update(price_changed=len(price_ids), location_changed=len(location_ids))
        generated.rows.update(status_changed=len(status_ids), deleted=len(deleted))
        new_count = int(len(ids) * options.new_share)
        added = _apartment_rows(rng, max(ids) + 1, new_count, MarketplaceOptions(as_of=options.as_of))
        _insert(cursor, SOURCE_TABLES["apartments"], added)
        generated.rows["apartments_added"] = len(added)
        gone = set(deleted)
        live = {i: p for i, p in prices.items() if i not in gone}
        live.update({int(str(r[0])): Decimal(str(r[2])) for r in added})
        cursor.execute("SELECT COALESCE(MAX(user_id), 10) FROM bookings")
        users = int(cursor.fetchone()[0])
        top, count = _top_and_count(cursor, "bookings")
        bookings = _booking_rows(rng, top + 1, int(count * options.new_share), live, users, options.as_of)
        _insert(cursor, SOURCE_TABLES["bookings"], bookings)
        top, count = _top_and_count(cursor, "user_viewing")
        viewings = _viewing_rows(rng, top + 1, int(count * options.new_share), list(live), users, options.as_of)
        _insert(cursor, SOURCE_TABLES["user_viewing"], viewings)
        generated.rows.update(bookings_added=len(bookings), viewings_added=len(viewings))
    return generated
