"""Deterministic generator of realistic car-rental batches, written in chunks so 10M rentals fit in memory."""

from __future__ import annotations

import csv
import gzip
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Callable

from rental_analytics.car_rental.contract import TRANSACTION_REASONS

CHUNK_ROWS = 50_000
ID_SPACE = 1 << 40  # ten hex digits
# An odd multiplier makes i -> i * M mod 2^40 a bijection, so ids never collide yet look random.
ID_MULTIPLIER = 0x9E3779B97F
# Each seed numbers its rentals from a block of its own, so a second batch made with another seed adds rentals
# to the processed history (merged by rental id) instead of replacing the first batch's: every seed from 0 to
# 65535 gets rental ids no other one gets, for batches of up to 2^24 (16.7M) rentals.
RENTALS_PER_SEED = 1 << 24
SEED_BLOCKS = ID_SPACE // RENTALS_PER_SEED
START = datetime(2024, 1, 1)

STATES = {
    "CA": ["Los Angeles", "San Francisco", "San Diego", "Sacramento"],
    "NY": ["New York", "Buffalo", "Albany"],
    "TX": ["Houston", "Austin", "Dallas", "San Antonio"],
    "FL": ["Miami", "Orlando", "Tampa"],
    "IL": ["Chicago", "Springfield"],
    "WA": ["Seattle", "Spokane"],
    "MA": ["Boston", "Worcester"],
    "CO": ["Denver", "Boulder"],
    "GA": ["Atlanta", "Savannah"],
    "AZ": ["Phoenix", "Tucson"],
}
# Vehicle type -> (share of the fleet, hourly rate in dollars).
VEHICLE_TYPES = {
    "Compact": (0.25, 12),
    "Sedan": (0.25, 15),
    "SUV": (0.2, 22),
    "Luxury": (0.08, 45),
    "Van": (0.1, 25),
    "Electric": (0.07, 30),
    "Convertible": (0.05, 35),
}
BRANDS = ["Toyota", "Ford", "Honda", "Tesla", "BMW", "Chevrolet", "Nissan", "Hyundai", "Kia", "Audi"]
FIRST_NAMES = ["Ama", "Kofi", "Jane", "Luis", "Mei", "Omar", "Priya", "Sam", "Tariq", "Zoe", "Ivan", "Nia"]
LAST_NAMES = ["Mensah", "Smith", "Garcia", "Chen", "Haddad", "Patel", "Okafor", "Kim", "Novak", "Silva"]
STREETS = ["Main St", "Oak Ave", "Airport Rd", "Market St", "Harbor Blvd", "Station Sq", "Park Ln"]

HEADERS = {
    "locations": [
        "location_id", "location_name", "address", "city", "state", "zip_code", "latitude", "longitude",
    ],
    "vehicles": [
        "active", "vehicle_license_number", "registration_name", "license_type", "expiration_date",
        "permit_license_number", "certification_date", "vehicle_year", "base_telephone_number",
        "base_address", "vehicle_id", "last_update_timestamp", "brand", "vehicle_type",
    ],
    "users": [
        "user_id", "first_name", "last_name", "email", "phone_number", "driver_license_number",
        "driver_license_expiry", "creation_date", "is_active",
    ],
    "rental_transactions": [
        "rental_id", "user_id", "vehicle_id", "rental_start_time", "rental_end_time", "pickup_location",
        "dropoff_location", "total_amount",
    ],
}  # fmt: skip


@dataclass(frozen=True)
class GeneratorOptions:
    """Size and shape of a generated batch."""

    rentals: int = 10_000
    seed: int = 42
    locations: int = 300
    vehicles: int | None = None
    users: int | None = None
    days: int = 90
    bad_share: float = 0.0
    compress: bool = False

    @property
    def first_rental(self) -> int:
        """The number of the batch's first rental: the start of the block that belongs to the seed."""
        return (self.seed % SEED_BLOCKS) * RENTALS_PER_SEED

    @property
    def vehicle_count(self) -> int:
        """Fleet size: one vehicle per ten rentals unless given."""
        return self.vehicles or max(20, min(self.rentals // 10, 200_000))

    @property
    def user_count(self) -> int:
        """Customers: one per four rentals unless given."""
        return self.users or max(20, min(self.rentals // 4, 2_000_000))


@dataclass
class GeneratedBatch:
    """What was written, and how many rows were made to break each rule on purpose."""

    folder: Path
    rows: dict[str, int] = field(default_factory=dict)
    broken_on_purpose: dict[str, int] = field(default_factory=dict)


def hex_id(kind: int, index: int) -> str:
    """A ten-digit hex id, unique per (kind, index); some look like numbers, as real ids do."""
    return f"{((index + kind * 7_919_000_003) * ID_MULTIPLIER) % ID_SPACE:010x}"


def _open(folder: Path, name: str, compress: bool) -> IO[str]:
    plain, compressed = folder / f"{name}.csv", folder / f"{name}.csv.gz"
    # A folder generated before in the other form would otherwise hold two files of the dataset, which the
    # gate rejects as a batch that sent the dataset twice.
    (plain if compress else compressed).unlink(missing_ok=True)
    if compress:
        return gzip.open(compressed, "wt", encoding="utf-8", newline="")
    return plain.open("w", encoding="utf-8", newline="")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _locations(rng: random.Random, count: int) -> list[list[str]]:
    rows = []
    states = sorted(STATES)
    for i in range(count):
        state = states[i % len(states)]
        city = rng.choice(STATES[state])
        street = rng.choice(STREETS)
        rows.append(
            [
                hex_id(1, i), f"{city} {street} #{i + 1}", f"{rng.randint(1, 9999)} {street}", city, state,
                f"{rng.randint(10000, 99999)}", f"{rng.uniform(25, 48):.6f}", f"{rng.uniform(-122, -71):.6f}",
            ]
        )  # fmt: skip
    return rows


def _vehicle_types(rng: random.Random, count: int) -> list[str]:
    names = list(VEHICLE_TYPES)
    weights = [VEHICLE_TYPES[n][0] for n in names]
    return rng.choices(names, weights, k=count)


def _vehicles(rng: random.Random, types: list[str]) -> list[list[str]]:
    rows = []
    for i, vehicle_type in enumerate(types):
        updated = START - timedelta(days=rng.randint(1, 400), seconds=rng.randint(0, 86_399))
        rows.append(
            [
                str(rng.choice([1, 1, 1, 0])), f"{rng.randint(100000, 999999)}", f"FLEET {i % 97} LLC",
                "FOR HIRE VEHICLE", f"{2025 + rng.randint(0, 3)}-{rng.randint(1, 12):02d}-28",
                f"AB{rng.randint(1000, 9999)}", f"{2015 + rng.randint(0, 8)}-06-15",
                str(rng.randint(2012, 2024)), f"(555){rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                f"{rng.randint(1, 999)} Depot Rd", hex_id(2, i), _stamp(updated), rng.choice(BRANDS),
                vehicle_type,
            ]
        )  # fmt: skip
    return rows


def _users(rng: random.Random, count: int) -> list[list[str]]:
    rows = []
    for i in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        created = START - timedelta(days=rng.randint(0, 2_000))
        rows.append(
            [
                hex_id(3, i), first, last, f"{first}.{last}{i}@example.com".lower(),
                f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}", f"DL{rng.randint(10**7, 10**8 - 1)}",
                f"{2025 + rng.randint(0, 5)}-{rng.randint(1, 12):02d}-01", created.strftime("%Y-%m-%d"),
                str(rng.choice([1, 1, 1, 0])),
            ]
        )  # fmt: skip
    return rows


def _write(folder: Path, name: str, rows: list[list[str]], compress: bool) -> None:
    with _open(folder, name, compress) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADERS[name])
        writer.writerows(rows)


def _break(rule: str, row: list[str], rng: random.Random, previous_id: str | None) -> list[str]:
    """Make a rental row break one rule, and only that one where we can."""
    broken = list(row)
    if rule == "missing_required":
        broken[rng.choice([1, 2, 5, 7])] = " "
    elif rule == "duplicate_rental_id" and previous_id:
        broken[0] = previous_id
    elif rule == "bad_timestamp":
        broken[3] = rng.choice(["2024-02-30 10:00:00", "06/01/2024 10:00", "2024-01-05 25:10:00", "soon"])
    elif rule == "end_before_start":
        broken[3], broken[4] = broken[4], broken[3]
    elif rule == "bad_amount":
        broken[7] = rng.choice(["-40.0", "abc", '"1,200.00"', "NaN"])
    elif rule == "unknown_user":
        broken[1] = hex_id(13, rng.randrange(1 << 30))
    elif rule == "unknown_vehicle":
        broken[2] = hex_id(12, rng.randrange(1 << 30))
    elif rule == "unknown_location":
        broken[5] = hex_id(11, rng.randrange(1 << 30))
    return broken


def generate_car_rental(
    folder: Path, options: GeneratorOptions, progress: Callable[[int, int], None] | None = None
) -> GeneratedBatch:
    """Write the four CSV files of one batch into `folder`; the same options give the same bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(options.seed)
    batch = GeneratedBatch(folder)
    locations = _locations(rng, options.locations)
    types = _vehicle_types(rng, options.vehicle_count)
    vehicles = _vehicles(rng, types)
    users = _users(rng, options.user_count)
    if options.bad_share > 0:
        # Reference rows that break the reference rules without orphaning any rental.
        users.append(["", "No", "Id", "no.id@example.com", "", "", "", "2023-01-01", "1"])
        users.append([hex_id(3, options.user_count), "Twin", "One", "t1@example.com", "", "", "", "", "1"])
        users.append([hex_id(3, options.user_count), "Twin", "Two", "t2@example.com", "", "", "", "", "1"])
        batch.broken_on_purpose["users.missing_required"] = 1
        batch.broken_on_purpose["users.duplicate_id"] = 2
    for name, rows in (("locations", locations), ("vehicles", vehicles), ("users", users)):
        _write(folder, name, rows, options.compress)
        batch.rows[name] = len(rows)
    batch.rows["rental_transactions"] = _write_rentals(folder, options, rng, types, batch, progress)
    return batch


def _write_rentals(
    folder: Path,
    options: GeneratorOptions,
    rng: random.Random,
    types: list[str],
    batch: GeneratedBatch,
    progress: Callable[[int, int], None] | None,
) -> int:
    rates = [VEHICLE_TYPES[t][1] for t in types]
    window_seconds = options.days * 86_400
    share = options.bad_share
    reasons = TRANSACTION_REASONS
    first = options.first_rental
    written = 0
    previous_id: str | None = None
    with _open(folder, "rental_transactions", options.compress) as handle:
        handle.write(",".join(HEADERS["rental_transactions"]) + "\n")
        for chunk_start in range(0, options.rentals, CHUNK_ROWS):
            lines = []
            for i in range(chunk_start, min(chunk_start + CHUNK_ROWS, options.rentals)):
                vehicle = rng.randrange(len(types))
                hours = rng.randint(1, 72)
                start = START + timedelta(seconds=rng.randrange(window_seconds))
                end = start + timedelta(hours=hours, minutes=rng.randrange(60) if hours < 72 else 0)
                pickup = rng.randrange(options.locations)
                dropoff = pickup if rng.random() < 0.7 else rng.randrange(options.locations)
                amount = max(10, round(hours * rates[vehicle], -1))
                row = [
                    hex_id(4, first + i), hex_id(3, rng.randrange(options.user_count)), hex_id(2, vehicle),
                    _stamp(start), _stamp(end), hex_id(1, pickup), hex_id(1, dropoff), f"{amount:.1f}",
                ]  # fmt: skip
                draw = rng.random() if share > 0 else 1.0
                if draw < share * len(reasons):
                    rule = reasons[int(draw / share)]
                    row = _break(rule, row, rng, previous_id)
                    batch.broken_on_purpose[rule] = batch.broken_on_purpose.get(rule, 0) + 1
                elif share > 0 and draw < share * (len(reasons) + 1):
                    lines.append(",".join(row))  # an identical duplicate: counts as one row
                previous_id = row[0]
                lines.append(",".join(row))
            handle.write("\n".join(lines) + "\n")
            written += len(lines)
            if progress:
                progress(min(chunk_start + CHUNK_ROWS, options.rentals), options.rentals)
    return written
