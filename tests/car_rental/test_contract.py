"""The contract module, and the Python 3.9 syntax that EMR 7.x needs from code the Spark jobs import."""

from __future__ import annotations

import ast

import pytest

from rental_analytics.car_rental.contract import (
    BATCH_ID_PATTERN,
    RENTAL_TRANSACTIONS,
    VEHICLES,
    dataset_for_file_name,
    map_header,
)
from tests.repo import ROOT


def test_header_matching_is_case_insensitive_trimmed_and_resolves_aliases():
    mapping = map_header(
        RENTAL_TRANSACTIONS, ["\ufeffTRANSACTION_ID", " user_id ", "x", *RENTAL_TRANSACTIONS.required[2:]]
    )
    assert mapping.usable
    assert mapping.positions["rental_id"] == 0 and mapping.positions["user_id"] == 1
    assert mapping.unknown == ("x",)


def test_an_alias_beside_its_column_is_a_repeat():
    assert map_header(VEHICLES, ["vehicle_id", "vehicle_type", "active", "Status"]).repeated == ("active",)


@pytest.mark.parametrize(("name", "dataset"), [("users.csv", "users"), ("users.csv.gz", "users"), ("users.txt", None)])
def test_file_names(name, dataset):
    found = dataset_for_file_name(name)
    assert (found.name if found else None) == dataset


@pytest.mark.parametrize(
    ("batch_id", "ok"), [("2024-06-01", True), ("dt=2024-06-01", True), ("../x", False), ("", False)]
)
def test_batch_ids(batch_id, ok):
    assert bool(BATCH_ID_PATTERN.fullmatch(batch_id)) is ok


def test_spark_side_code_parses_as_python_3_9():
    sources = [*ROOT.joinpath("spark_scripts").glob("*.py"), *ROOT.joinpath("rental_analytics").rglob("*.py")]
    assert sources
    for source in sources:
        ast.parse(source.read_text(), filename=str(source), feature_version=(3, 9))
