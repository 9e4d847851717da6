"""The generator: a seed gives the same batch every time, and another seed gives rentals of its own."""

from __future__ import annotations

import csv
from pathlib import Path

from rental_analytics.car_rental.gate.files import validate_folder
from rental_analytics.car_rental.generate import RENTALS_PER_SEED, SEED_BLOCKS, GeneratorOptions
from rental_analytics.cli import main

ID_COLUMNS = {
    "rental_transactions": "rental_id",
    "users": "user_id",
    "vehicles": "vehicle_id",
    "locations": "location_id",
}


def _ids(folder: Path, dataset: str) -> list[str]:
    with (folder / f"{dataset}.csv").open(newline="") as handle:
        return [row[ID_COLUMNS[dataset]] for row in csv.DictReader(handle)]


def _generate(folder: Path, seed: int) -> Path:
    assert main(["generate", "car-rental", "--output", str(folder), "--rentals", "300", "--seed", str(seed)]) == 0
    return folder


def test_another_seed_adds_rentals_instead_of_replacing_them(tmp_path: Path):
    seven, ninety_nine = _generate(tmp_path / "a", 7), _generate(tmp_path / "b", 99)

    rentals_7, rentals_99 = _ids(seven, "rental_transactions"), _ids(ninety_nine, "rental_transactions")
    assert len(set(rentals_7)) == len(rentals_7) == 300
    assert not set(rentals_7) & set(rentals_99)
    # The fleet, the customers and the locations are the marketplace's own: every batch knows them by one id.
    for reference in ("users", "vehicles", "locations"):
        assert _ids(seven, reference) == _ids(ninety_nine, reference)


def test_the_same_seed_gives_the_same_rental_ids(tmp_path: Path):
    assert _ids(_generate(tmp_path / "a", 99), "rental_transactions") == _ids(
        _generate(tmp_path / "b", 99), "rental_transactions"
    )


def test_each_seed_numbers_its_rentals_from_a_block_of_its_own():
    assert GeneratorOptions(seed=0).first_rental == 0
    assert GeneratorOptions(seed=7).first_rental == 7 * RENTALS_PER_SEED
    assert GeneratorOptions(seed=-1).first_rental == (SEED_BLOCKS - 1) * RENTALS_PER_SEED  # still in the id space


def test_generating_again_in_the_other_form_leaves_one_file_per_dataset(tmp_path: Path):
    folder = _generate(tmp_path / "batch", seed=1)
    assert main(["generate", "car-rental", "--output", str(folder), "--rentals", "300", "--gzip"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{name}.csv.gz" for name in ID_COLUMNS)
    assert validate_folder(folder).accepted
    assert main(["generate", "car-rental", "--output", str(folder), "--rentals", "300"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{name}.csv" for name in ID_COLUMNS)
