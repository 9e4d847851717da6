"""The contract module, and the Python 3.9 syntax that EMR 7.x needs from code the Spark jobs import."""

from __future__ import annotations

import ast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rental_analytics.car_rental.contract import (
    BATCH_ID_PATTERN,
    QUARANTINE_ROWS,
    RENTAL_TRANSACTIONS,
    VEHICLES,
    dataset_for_file_name,
    map_header,
    quarantine_folder,
)
from rental_analytics.car_rental.gate.admission import ObjectVersion, UploadKey, quarantine_key
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


# Names a sender may pick, among them those of what the quarantine itself holds.
names = st.one_of(
    st.sampled_from(["rows", "users.csv", "users.csv.report.json", "rows.report.json", "_bad_keys"]),
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="/"), min_size=1, max_size=12),
)


@settings(max_examples=200, deadline=None)
@given(files=st.lists(st.tuples(names, st.sampled_from(["v1", "v2", "same-etag"])), min_size=2, max_size=6))
def test_no_two_quarantined_files_or_reports_share_a_key(files):
    # In AWS and locally alike: each rejected version of a file and its report, beside the job's rows/ folder.
    files = sorted(set(files))
    taken = [f"quarantine/b1/{QUARANTINE_ROWS}"]
    for name, version in files:
        kept = quarantine_key(UploadKey("b1", name), ObjectVersion(f"raw/b1/{name}", None, version))
        assert kept == f"{quarantine_folder('b1', name, version)}/{name}"
        taken += [kept, f"{kept}.report.json"]
    assert len(set(taken)) == len(taken)
    # No key is inside another's folder: neither the rows folder nor a file can be a prefix of another.
    assert not any(a != b and b.startswith(f"{a}/") for a in taken for b in taken)
