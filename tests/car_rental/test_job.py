"""The Spark job on real files: hand-computed analytics, file formats, merges, re-runs and failures."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from rental_analytics.car_rental.contract import ANALYTICS_SCHEMAS
from rental_analytics.car_rental.gate.files import validate_folder
from rental_analytics.car_rental.job import BatchJob, held_to_the_gate, run_batch
from rental_analytics.car_rental.reading import FileFacts, FileLayout, read_dataset
from rental_analytics.car_rental.spark_types import struct_type
from tests.car_rental import sample_batch

pytestmark = pytest.mark.spark


def table(spark: SparkSession, root: Path, name: str):
    return spark.read.parquet(str(root / "analytics" / name))


def test_sample_batch_gives_the_contracts_tables(spark, write_batch, tmp_path):
    out = tmp_path / "out"
    outcome = run_batch(spark, BatchJob(str(write_batch(sample_batch.files())), str(out), "b1", 0.5))
    assert outcome.succeeded
    assert outcome.rejected_by_reason == {"unknown_location": 1}

    def expected(name: str, rows: list[tuple]):
        return spark.createDataFrame(rows, struct_type(ANALYTICS_SCHEMAS[name]))

    d = Decimal
    assertDataFrameEqual(
        table(spark, out, "location_performance"),
        expected(
            "location_performance",
            [
                ("L1", "Airport", "Accra", "GA", d("170.02"), 3, d("56.67"), d("100.00"), d("20.01"), 3, 36.0, 0.3),
                ("L2", "Downtown", "Kumasi", "AS", d("30.00"), 1, d("30.00"), d("30.00"), d("30.00"), 1, 1.5, 0.0375),
            ],
        ),
    )
    t = dt.datetime
    assertDataFrameEqual(
        table(spark, out, "user_metrics"),
        expected(
            "user_metrics",
            [
                (
                    "U1", "Ama", "Mensah", "ama@example.com", d("150.01"), 2, d("75.01"), d("100.00"), d("50.01"),
                    12.0, 6.0, t(2024, 6, 1, 8), t(2024, 6, 1, 9),
                ),
                (
                    "U2", "Kofi", "Owusu", "kofi@example.com", d("50.01"), 2, d("25.01"), d("30.00"), d("20.01"),
                    25.5, 12.75, t(2024, 6, 2, 0), t(2024, 6, 2, 12),
                ),
            ],
        ),
    )  # fmt: skip
    assertDataFrameEqual(
        table(spark, out, "vehicle_type_performance"),
        expected(
            "vehicle_type_performance",
            [
                ("SUV", 3, d("150.01"), d("50.00"), 27.5 / 3, 24.0, 1.5, 2),
                ("Sedan", 1, d("50.01"), d("50.01"), 10.0, 10.0, 10.0, 1),
            ],
        ),
    )
    assertDataFrameEqual(
        table(spark, out, "daily_metrics"),
        expected(
            "daily_metrics",
            [
                (dt.date(2024, 6, 1), 2, d("150.01"), d("75.01"), 1, 2),
                (dt.date(2024, 6, 2), 2, d("50.01"), d("25.01"), 1, 2),
            ],
        ),
    )
    users = spark.read.parquet(str(out / "processed" / "users"))
    assert not {"phone_number", "driver_license_number"} & set(users.columns)
    assert sorted(p.name for p in (out / "processed" / "users").iterdir() if p.is_dir()) == [
        "registration_year=2022",
        "registration_year=2023",
    ]
    quarantined = spark.read.parquet(str(out / "quarantine" / "b1" / "rows" / "rental_transactions"))
    assert [(r.rental_id, r.reason) for r in quarantined.collect()] == [("R5", "unknown_location")]
    saved = json.loads((out / "reports" / "b1" / "job_outcome.json").read_text())
    assert saved["succeeded"] is True and saved["valid_transactions"] == 4


def test_bom_crlf_gzip_and_quoted_newlines_read_like_plain_files(spark, write_batch, tmp_path):
    files = sample_batch.files()
    crlf_bom = "\ufeff" + files["rental_transactions"].replace("\n", "\r\n")
    batch = write_batch(
        {
            "locations": files["locations"].replace("Airport", '"Airport\nTerminal 1"'),
            "vehicles.csv.gz": gzip.compress(files["vehicles"].encode()),
            "users": files["users"].rstrip("\n"),  # no newline after the last line
            "rental_transactions": crlf_bom,
        }
    )
    out = tmp_path / "out"
    outcome = run_batch(spark, BatchJob(str(batch), str(out), "b1", 0.5))
    assert outcome.succeeded, outcome.message
    assert outcome.valid_transactions == 4
    names = {r.location_id: r.location_name for r in table(spark, out, "location_performance").collect()}
    assert names["L1"].splitlines() == ["Airport", "Terminal 1"]
    assert table(spark, out, "user_metrics").count() == 2


def test_a_folder_named_like_a_datasets_file_is_not_read_in_place_of_the_file(spark, write_batch, tmp_path):
    # The gate judges files only: a folder `users.csv/` beside the accepted users.csv.gz sorted first and was read.
    files = sample_batch.files()
    batch = write_batch({**{k: v for k, v in files.items() if k != "users"}, "users.csv.gz": gzip.compress(
        files["users"].encode())})  # fmt: skip
    (batch / "users.csv").mkdir()
    (batch / "users.csv" / "part-0.csv").write_text(files["users"].replace("U1,", "U1,\x1b[31mEVIL,"))
    out = tmp_path / "out"
    outcome = run_batch(spark, BatchJob(str(batch), str(out), "b1", 0.5))
    assert outcome.succeeded, outcome.message
    users = spark.read.parquet(str(out / "processed" / "users"))
    assert not [r for r in users.collect() if "EVIL" in str(r.asDict().values())]


def _analytics_snapshot(spark, out: Path) -> dict[str, list]:
    return {name: sorted(map(tuple, table(spark, out, name).collect()), key=str) for name in ANALYTICS_SCHEMAS}


def test_rerun_changes_nothing_and_a_later_batch_wins(spark, write_batch, tmp_path):
    out = tmp_path / "out"
    first = write_batch(sample_batch.files(), "b1")
    run_batch(spark, BatchJob(str(first), str(out), "b1", 0.5))
    before = _analytics_snapshot(spark, out)
    run_batch(spark, BatchJob(str(first), str(out), "b1", 0.5))
    assert _analytics_snapshot(spark, out) == before

    # The second batch moves R3 to another day with another amount and adds R6; R1, R2, R4 stay.
    later = sample_batch.files()
    later["rental_transactions"] = (
        "rental_id,user_id,vehicle_id,rental_start_time,rental_end_time,pickup_location,total_amount\n"
        "R3,U2,0e672a709e,2024-06-05 12:00:00,2024-06-05 14:00:00,L2,40.00\n"
        "R6,U1,5144945047,2024-06-02 10:00:00,2024-06-02 11:00:00,L2,15.00\n"
    )
    outcome = run_batch(spark, BatchJob(str(write_batch(later, "b2")), str(out), "b2", 0.5))
    assert outcome.succeeded and outcome.history_transactions == 5
    history = spark.read.parquet(str(out / "processed" / "rental_transactions"))
    rows = {r.rental_id: (str(r.rental_date), r.total_amount, r.batch_id) for r in history.collect()}
    assert rows == {
        "R1": ("2024-06-01", Decimal("100.00"), "b1"),
        "R2": ("2024-06-01", Decimal("50.01"), "b1"),
        "R3": ("2024-06-05", Decimal("40.00"), "b2"),
        "R4": ("2024-06-02", Decimal("20.01"), "b1"),
        "R6": ("2024-06-02", Decimal("15.00"), "b2"),
    }
    daily = {
        str(r.rental_date): (r.transaction_count, r.total_revenue) for r in table(spark, out, "daily_metrics").collect()
    }
    assert daily == {
        "2024-06-01": (2, Decimal("150.01")),
        "2024-06-02": (2, Decimal("35.01")),
        "2024-06-05": (1, Decimal("40.00")),
    }
    assert list((out / "tmp" / "publish").iterdir()) == []
    assert outcome.rejected_by_reason == {} and not (out / "quarantine" / "b2").exists()  # nothing to keep
    assert (out / "quarantine" / "b1" / "rows" / "rental_transactions").is_dir()  # R5 of the first batch


def test_a_partition_left_empty_by_a_move_is_removed(spark, write_batch, tmp_path):
    out = tmp_path / "out"
    files = sample_batch.files()
    files["rental_transactions"] = (
        "rental_id,user_id,vehicle_id,rental_start_time,rental_end_time,pickup_location,total_amount\n"
        "R1,U1,0e672a709e,2024-06-01 08:00:00,2024-06-01 10:00:00,L1,10\n"
    )
    run_batch(spark, BatchJob(str(write_batch(files, "b1")), str(out), "b1", 0.0))
    files["rental_transactions"] = files["rental_transactions"].replace("2024-06-01", "2024-06-09")
    run_batch(spark, BatchJob(str(write_batch(files, "b2")), str(out), "b2", 0.0))
    partitions = sorted(p.name for p in (out / "processed" / "rental_transactions").glob("rental_date=*"))
    assert partitions == ["rental_date=2024-06-09"]
    assert [str(r.rental_date) for r in table(spark, out, "daily_metrics").collect()] == ["2024-06-09"]


def test_too_many_rejections_fail_the_batch_and_leave_analytics_alone(spark, write_batch, tmp_path):
    out = tmp_path / "out"
    run_batch(spark, BatchJob(str(write_batch(sample_batch.files(), "b1")), str(out), "b1", 0.5))
    before = _analytics_snapshot(spark, out)
    processed_before = sorted(str(p) for p in (out / "processed").rglob("*.parquet"))

    bad = sample_batch.files()
    bad["rental_transactions"] += "R7,U1,0e672a709e,yesterday,2024-06-01 10:00:00,L1,L1,5\n"
    # 2 of 6 rows rejected (R5, R7): 33% is above 20%.
    outcome = run_batch(spark, BatchJob(str(write_batch(bad, "b2")), str(out), "b2", 0.2))
    assert not outcome.succeeded
    assert "above max_reject_rate" in outcome.message
    assert outcome.rejected_by_reason == {"bad_timestamp": 1, "unknown_location": 1}
    assert _analytics_snapshot(spark, out) == before
    assert sorted(str(p) for p in (out / "processed").rglob("*.parquet")) == processed_before
    quarantined = out / "quarantine" / "b2" / "rows" / "rental_transactions"
    assert len(list(quarantined.glob("*.parquet"))) == 1  # one file per dataset (docs/car-rental-decisions.md)


def test_identical_rows_are_counted_as_read_and_as_collapsed(spark, write_batch, tmp_path):
    files = sample_batch.files()
    first_rental = files["rental_transactions"].splitlines()[1]
    files["rental_transactions"] += f"{first_rental}\n{first_rental}\n"
    files["users"] += files["users"].splitlines()[1] + "\n"
    outcome = run_batch(spark, BatchJob(str(write_batch(files)), str(tmp_path / "out"), "b1", 0.5))

    assert outcome.succeeded
    assert outcome.rows_read == {"users": 3, "vehicles": 3, "locations": 2, "rental_transactions": 7}
    assert outcome.identical_rows_collapsed == {"users": 1, "vehicles": 0, "locations": 0, "rental_transactions": 2}
    assert outcome.transaction_rows == 5


@pytest.mark.parametrize("large_path", [False, True], ids=["small_path", "large_path"])
def test_a_file_spark_reads_short_fails_the_batch_and_changes_nothing(
    spark, write_batch, tmp_path, monkeypatch, large_path
):
    from rental_analytics.car_rental import job as job_module

    if large_path:  # the rentals are then spilled to the run's scratch folder before the counts are compared
        monkeypatch.setattr(job_module, "SMALL_DATASET_ROWS", 0)
    out = tmp_path / "out"
    run_batch(spark, BatchJob(str(write_batch(sample_batch.files(), "b1")), str(out), "b1", 0.5))
    before = _analytics_snapshot(spark, out)

    # A quote opened in the last column and never closed: a multi-line read takes every later row as one value.
    files = sample_batch.files()
    lines = files["rental_transactions"].splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ',"50.005'
    files["rental_transactions"] = "\n".join(lines) + "\n"
    counted = {"locations": 2, "vehicles": 3, "users": 2, "rental_transactions": 5}
    facts = {name: FileFacts(rows) for name, rows in counted.items()}
    job = BatchJob(str(write_batch(files, "b2")), str(out), "b2", 0.5, files=facts)
    outcome = run_batch(spark, job)

    assert not outcome.succeeded
    assert outcome.rows_read["rental_transactions"] < 5
    assert outcome.message.startswith("rental_transactions: the upload gate counted 5 rows, Spark read ")
    assert _analytics_snapshot(spark, out) == before
    assert not (out / "quarantine" / "b2").exists()
    assert json.loads((out / "reports" / "b2" / "job_outcome.json").read_text())["succeeded"] is False
    assert list((out / "tmp" / "publish").iterdir()) == []  # the run's scratch is gone too


def test_files_without_quoted_line_breaks_read_line_by_line_give_the_same_tables(spark, write_batch, tmp_path):
    files = sample_batch.files()
    files["rental_transactions"] = "\ufeff" + files["rental_transactions"].replace("\n", "\r\n")
    batch = str(write_batch(files))
    counted = {"locations": 2, "vehicles": 3, "users": 2, "rental_transactions": 5}
    line_by_line = {name: FileFacts(rows, multiline=False) for name, rows in counted.items()}
    split = run_batch(spark, BatchJob(batch, str(tmp_path / "split"), "b1", 0.5, files=line_by_line))
    whole = run_batch(spark, BatchJob(batch, str(tmp_path / "whole"), "b1", 0.5))

    assert split.succeeded and split.rows_read == whole.rows_read
    assert _analytics_snapshot(spark, tmp_path / "split") == _analytics_snapshot(spark, tmp_path / "whole")


def _reordered(text: str) -> str:
    """The same CSV with its columns reversed and an unknown column in front."""
    rows = list(csv.reader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for number, row in enumerate(rows):
        writer.writerow(["notes" if number == 0 else f"note {number}", *reversed(row)])
    return out.getvalue()


def test_a_batch_read_with_the_gates_layouts_gives_what_spark_reads_from_the_headers(spark, write_batch, tmp_path):
    from rental_analytics.car_rental.gate.files import validate_folder
    from rental_analytics.car_rental.job import held_to_the_gate

    files = {name: _reordered(text) for name, text in sample_batch.files().items()}
    files["users"] = "\ufeff" + files["users"]
    batch = write_batch(files)
    verdicts = {f.dataset: f.as_dict() for f in validate_folder(batch).files if f.dataset}
    gated = held_to_the_gate(BatchJob(str(batch), str(tmp_path / "gated"), "b1", 0.5), verdicts)
    users = gated.facts("users")
    assert users is not None and users.layout is not None and users.layout.positions["user_id"] == 7

    with_layouts = run_batch(spark, gated)
    from_headers = run_batch(spark, BatchJob(str(batch), str(tmp_path / "headers"), "b1", 0.5))

    assert with_layouts.succeeded and with_layouts.as_dict() == from_headers.as_dict()
    assert _analytics_snapshot(spark, tmp_path / "gated") == _analytics_snapshot(spark, tmp_path / "headers")
    quarantine = "quarantine/b1/rows/rental_transactions"
    assertDataFrameEqual(
        spark.read.parquet(str(tmp_path / "gated" / quarantine)),
        spark.read.parquet(str(tmp_path / "headers" / quarantine)),
    )


def test_the_gate_manifest_sets_the_counts_and_the_reads():
    from rental_analytics.car_rental.job import held_to_the_gate, manifest_verdicts

    manifest = {"files": {"users": {"verdict": {"rows": 3, "multiline_fields": False}},
                          "locations": {"verdict": {"rows": 2, "header_fields": 4, "columns": {"location_id": 1}}}}}  # fmt: skip
    job = held_to_the_gate(BatchJob("in", "out", "b1"), manifest_verdicts(json.dumps(manifest)))
    # Verdicts from before the gate reported a layout, quotes or unique ids: each fact takes its safe default.
    assert job.files == {
        "users": FileFacts(3, layout=None, multiline=False, quotes=True, unique_ids=False),
        "locations": FileFacts(2, layout=FileLayout(4, {"location_id": 1}), multiline=True),
    }
    assert job.facts("vehicles") is None


def test_small_and_large_batches_take_their_own_paths_to_the_same_tables(spark, write_batch, tmp_path):
    from rental_analytics.car_rental import job as job_module
    from rental_analytics.car_rental.contract import DATASETS
    from rental_analytics.car_rental.gate.files import validate_folder
    from rental_analytics.car_rental.job import held_to_the_gate

    files = sample_batch.files()
    rentals = files["rental_transactions"].splitlines()
    # An identical row, a second row under one rental id, and a blank id: every kind of comparison.
    files["rental_transactions"] += (
        f"{rentals[1]}\n{rentals[2].replace(',50', ',51', 1)}\n{rentals[3].replace('R3', ' ', 1)}\n"
    )
    files["users"] += files["users"].splitlines()[1] + "\n"
    batch = write_batch(files)
    verdicts = {f.dataset: f.as_dict() for f in validate_folder(batch).files if f.dataset}
    gated = held_to_the_gate(BatchJob(str(batch), str(tmp_path / "small"), "b1", 0.9), verdicts)
    large = replace(gated, output_dir=str(tmp_path / "large"), files=None)

    raw = {d.name: read_dataset(spark, str(batch), d, {f"{n}.csv" for n in files}) for d in DATASETS.values()}
    found, repeated = job_module._repeated_ids(gated, raw)
    assert found is None  # no job runs for a small batch
    # Rows with ids that repeat are all compared; the gate vouched for the other two datasets' ids.
    assert {name for name, ids in repeated.items() if ids is None} == {"users", "rental_transactions"}
    found, _ = job_module._repeated_ids(large, raw)
    assert found is not None and sorted(found.select("dataset").distinct().toPandas()["dataset"]) == [
        "rental_transactions",
        "users",
    ]
    found.unpersist()

    small_outcome, large_outcome = run_batch(spark, gated), run_batch(spark, large)
    assert small_outcome.succeeded and small_outcome.identical_rows_collapsed["rental_transactions"] == 1
    assert small_outcome.as_dict() == large_outcome.as_dict()
    assert _analytics_snapshot(spark, tmp_path / "small") == _analytics_snapshot(spark, tmp_path / "large")
    for folder in ["quarantine/b1/rows/rental_transactions", "processed/rental_transactions"]:
        assertDataFrameEqual(
            spark.read.parquet(str(tmp_path / "small" / folder)), spark.read.parquet(str(tmp_path / "large" / folder))
        )
    assert list((tmp_path / "large" / "tmp" / "publish").iterdir()) == []  # the spilled rentals are gone


@pytest.mark.parametrize("counted_by_the_gate", [True, False], ids=["small_path", "large_path"])
def test_a_rentals_file_with_only_its_header_is_counted_as_empty(spark, write_batch, tmp_path, counted_by_the_gate):
    files = sample_batch.files()
    files["rental_transactions"] = files["rental_transactions"].splitlines()[0] + "\n"
    counts = {"locations": 2, "vehicles": 3, "users": 2, "rental_transactions": 0}
    facts = {name: FileFacts(rows) for name, rows in counts.items()} if counted_by_the_gate else None
    out = tmp_path / "out"
    outcome = run_batch(spark, BatchJob(str(write_batch(files)), str(out), "b1", 0.5, files=facts))

    assert outcome.succeeded and outcome.history_transactions == 0
    assert (outcome.transaction_rows, outcome.rows_read["rental_transactions"], outcome.reject_rate) == (0, 0, 0.0)
    assert not (out / "quarantine").exists()


def test_a_rental_before_the_gregorian_reform_is_written_and_read_back_as_it_is(spark, write_batch, tmp_path):
    # Valid by the contract (a four-digit year); Spark's Parquet writer refuses such a date by default, asking
    # whether to shift it into the Julian calendar of Spark 2. The contract's calendar is the proleptic one.
    out = tmp_path / "out"
    files = sample_batch.files()
    files["rental_transactions"] += "R6,U1,5144945047,1500-03-01 10:00:00,1500-03-01 12:00:00,L2,L2,7.50\n"
    assert run_batch(spark, BatchJob(str(write_batch(files, "b1")), str(out), "b1", 0.5)).succeeded
    # A second batch reads the history back, the ancient partition included, to merge into it.
    files["rental_transactions"] = files["rental_transactions"].replace(
        "R1,U1,0e672a709e,2024-06-01 08", "R1,U1,0e672a709e,2024-06-01 07"
    )
    assert run_batch(spark, BatchJob(str(write_batch(files, "b2")), str(out), "b2", 0.5)).succeeded

    daily = {str(r.rental_date): r.transaction_count for r in table(spark, out, "daily_metrics").collect()}
    assert daily == {"1500-03-01": 1, "2024-06-01": 2, "2024-06-02": 2}
    ama = table(spark, out, "user_metrics").where("user_id = 'U1'").first()
    assert (ama.first_rental_at, ama.rental_count) == (dt.datetime(1500, 3, 1, 10), 3)
    assert (out / "processed" / "rental_transactions" / "rental_date=1500-03-01").is_dir()


@pytest.mark.parametrize("quoted", [False, True], ids=["plain_lines", "csv_lines"])
def test_a_line_of_only_white_space_is_read_as_the_gate_counted_it(spark, write_batch, tmp_path, quoted):
    files = sample_batch.files()
    lines = files["rental_transactions"].splitlines()
    if quoted:  # a quote somewhere, but no quoted line break: the file would be read line by line
        lines[1] = lines[1].replace(",L1,", ',"L1",', 1)
    files["rental_transactions"] = "\n".join([*lines[:3], "   ", *lines[3:]]) + "\n"
    batch = write_batch(files)
    verdicts = {f.dataset: f.as_dict() for f in validate_folder(batch).files if f.dataset}
    job = held_to_the_gate(BatchJob(str(batch), str(tmp_path / "out"), "b1", 0.5), verdicts)

    outcome = run_batch(spark, job)
    assert outcome.succeeded, outcome.message
    assert outcome.rows_read["rental_transactions"] == verdicts["rental_transactions"]["rows"] == 6
    assert outcome.rejected_by_reason == {"missing_required": 1, "unknown_location": 1}


def test_the_gate_and_the_job_give_white_space_around_values_the_same_reasons(spark, write_batch, tmp_path):
    # Both trim spaces alone (docs/car-rental-decisions.md): a tab is part of the value it pads, and a value of
    # nothing but spaces and control characters is blank. Tabs are quoted: outside quotes one rejects the file.
    files = sample_batch.files()
    files["rental_transactions"] += (
        'R6,U1,5144945047,2024-06-01 08:00:00,2024-06-01 09:00:00,L1,L1,"\t"\n'  # missing_required
        'R7,U1,5144945047,"2024-06-01 08:00:00\t",2024-06-01 09:00:00,L1,L1,5\n'  # bad_timestamp
        "R8,U1,5144945047, 2024-06-01 08:00:00 ,2024-06-01 09:00:00,L1,L1, 5.50 \n"  # valid
        '"\t",U1,5144945047,2024-06-01 08:00:00,2024-06-01 09:00:00,L1,L1,5\n'  # an id of one tab: missing_required
        'R9,U1,5144945047,2024-06-01 08:00:00,2024-06-01 09:00:00,L1,L1,"5\t"\n'  # bad_amount
    )
    batch = write_batch(files)
    verdicts = {f.dataset: f.as_dict() for f in validate_folder(batch).files if f.dataset}
    job = held_to_the_gate(BatchJob(str(batch), str(tmp_path / "out"), "b1", 0.5), verdicts)

    outcome = run_batch(spark, job)
    gate_reasons = verdicts["rental_transactions"]["row_issues"]
    assert gate_reasons == {"bad_amount": 1, "bad_timestamp": 1, "missing_required": 2}
    assert outcome.rejected_by_reason == {**gate_reasons, "unknown_location": 1}  # the gate cannot see L9


def test_every_state_is_read_back_from_processed_locations_as_it_arrived(spark, tmp_path):
    import duckdb

    from rental_analytics.car_rental import job as job_module
    from rental_analytics.car_rental import rules
    from rental_analytics.car_rental.contract import LOCATIONS, PROCESSED_PARTITIONS

    # Too long for a folder name, made longer by Spark's escaping, Hive's name for null, plain, and null.
    states = ["S" * 300, "/" * 90, "__HIVE_DEFAULT_PARTITION__", "N/A", "Côte d'Ivoire", "GA", "ga", None]
    raw = spark.createDataFrame(
        [{**dict.fromkeys(LOCATIONS.columns), "location_id": f"L{i}", "location_name": "x", "state": state}
         for i, state in enumerate(states)],
        ", ".join(f"{c} string" for c in LOCATIONS.columns),
    )  # fmt: skip
    folder = tmp_path / "processed" / "locations"
    processed = rules.processed_locations(rules.tag_reference(raw, LOCATIONS))
    job_module._write_table(processed, str(folder), PROCESSED_PARTITIONS["locations"], "locations")

    expected = sorted((f"L{i}", state) for i, state in enumerate(states))
    assert (
        sorted(tuple(r) for r in spark.read.parquet(str(folder)).select("location_id", "state").collect()) == expected
    )
    by_duckdb = duckdb.sql(
        f"select location_id, state from read_parquet('{folder}/**/*.parquet', hive_partitioning = true)"
    ).fetchall()
    assert sorted(by_duckdb) == expected
    keys = {path.name for path in folder.iterdir() if path.is_dir()}
    assert max(len(key) for key in keys) <= len("state_key=") + 64 and "state_key=GA" in keys
