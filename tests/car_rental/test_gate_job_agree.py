"""Differential property test: on generated hostile batches the upload gate and the Spark job read the same rows,
give them the same reasons, and no processed value holds a control character the source did not carry in quotes:
a file with one outside quotes is rejected."""

from __future__ import annotations

import re
from collections import Counter
from functools import reduce
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from rental_analytics.car_rental import rules
from rental_analytics.car_rental.contract import DATASETS, REFERENCE_DATASETS, RENTAL_TRANSACTIONS
from rental_analytics.car_rental.gate.files import validate_folder
from rental_analytics.car_rental.reading import FileFacts, read_dataset
from tests.car_rental import sample_batch
from tests.car_rental.gate_corpus import line_ends

pytestmark = pytest.mark.spark

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TX_COLUMNS = sample_batch.TRANSACTIONS.splitlines()[0].split(",")
VALID = {
    "user_id": "U1",
    "vehicle_id": "0e672a709e",
    "rental_start_time": "2024-06-01 08:00",
    "rental_end_time": "2024-06-01 10:00",
    "pickup_location": "L1",
    "dropoff_location": "L2",
    "total_amount": "12.5",
}
# Values that break a rule the gate can check, each with the reason both must give.
BROKEN = st.sampled_from(
    [
        ("total_amount", "12.5\n", "bad_amount"),
        ("total_amount", "12.5\r\n", "bad_amount"),
        ("total_amount", "-1", "bad_amount"),
        ("total_amount", "1,000", "bad_amount"),
        ("total_amount", "", "missing_required"),
        ("rental_start_time", "2024-06-01 08:00\n", "bad_timestamp"),
        ("rental_end_time", "2024-06-01 07:00", "end_before_start"),
        ("user_id", " ", "missing_required"),
    ]
)
# Free text for the one column no rule reads; `_field` quotes a control character, `unquoted` does not.
TEXT = st.lists(st.sampled_from(["a", "é", " ", ",", '"', "\n", "\r\n", "\t", "\x01"]), max_size=5).map("".join)
# A control character written outside quotes, before or after a value: RFC 4180's unquoted text holds none.
STRAY = st.tuples(st.sampled_from(["\t", "\x1b", "\x07", "\x0c", "\x7f"]), st.booleans())


def _field(value: str, quote: bool) -> str:
    """A field as written: quoted when asked, or when the value needs it (a comma, quote or control character)."""
    if quote or CONTROL.search(value) or "," in value or '"' in value:
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def rentals(draw: st.DrawFn) -> tuple[list[str], dict[str, int], dict[str, str | None], bool]:
    """Rental records (without line ends), the reasons, the rows the job must keep by id with their dropoff, and
    whether a control character is outside quotes."""
    records: list[str] = []
    reasons: dict[str, int] = {}
    kept: dict[str, str | None] = {}
    unquoted = False
    for number in range(draw(st.integers(1, 6))):
        rental_id = f"R{number}"
        values = {"rental_id": rental_id, **VALID, "dropoff_location": draw(TEXT)}
        kind = draw(st.sampled_from(["valid", "broken", "short", "wide", "wide and broken"] * 3 + ["control"]))
        if kind in ("broken", "wide and broken"):
            column, value, reason = draw(BROKEN)
            values[column] = value
            reasons[reason] = reasons.get(reason, 0) + 1
        fields = [_field(values[c], draw(st.booleans())) for c in TX_COLUMNS]
        if kind == "control":  # a tab after an id, an escape before an amount, unquoted
            column, (control, after) = draw(st.sampled_from(TX_COLUMNS[:-2] + TX_COLUMNS[-1:])), draw(STRAY)
            fields[TX_COLUMNS.index(column)] = values[column] + control if after else control + values[column]
            unquoted = True
        if kind == "short":  # the last field, total_amount, is missing: the job reads it as null
            fields = fields[: draw(st.integers(1, len(fields) - 1))]
            reasons["missing_required"] = reasons.get("missing_required", 0) + 1
        if kind.startswith("wide"):  # a value past the header's, which the contract ignores
            fields.append(_field(draw(TEXT), draw(st.booleans())))
        if kind in ("valid", "wide"):
            kept[rental_id] = values["dropoff_location"].strip(" ") or None
        records.append(",".join(fields))
    return records, reasons, kept, unquoted


def _file(records: list[str], line_ends: list[str], bom: bool) -> bytes:
    text = "".join(record + end for record, end in zip(records, line_ends))
    return (("\ufeff" if bom else "") + text).encode()


@st.composite
def batches(draw: st.DrawFn) -> tuple[dict[str, bytes], dict[str, int], dict[str, str | None], dict[str, str]]:
    """The sample batch's reference files and generated rentals, each file with its BOM and line ends; and the
    reason each file must be rejected for."""
    records, reasons, kept, unquoted = draw(rentals())
    records.insert(0, ",".join(TX_COLUMNS))
    mixed = draw(st.integers(0, 3)) == 0  # now and then a file whose line ends are mixed
    stray = draw(st.sampled_from([None] * 6 + ["users", "vehicles", "locations"]))  # a reference file's tab or ESC
    files, rejected = {}, {}
    for name, text in {**sample_batch.files(), "rental_transactions": None}.items():
        lines = records if text is None else text.splitlines()
        if name == stray:
            at, (control, after) = draw(st.integers(1, len(lines) - 1)), draw(STRAY)
            first, rest = lines[at].split(",", 1)
            lines[at] = f"{first}{control if after else ''},{'' if after else control}{rest}"
            rejected[f"{name}.csv"] = "control_character"
        end = draw(st.sampled_from(["\n", "\r\n"]))
        ends = [end] * len(lines)
        if mixed and name == "rental_transactions":
            ends[draw(st.integers(0, len(lines) - 1))] = "\r\n" if end == "\n" else "\n"
        if not draw(st.booleans()):
            ends[-1] = ""
        files[f"{name}.csv"] = _file(lines, ends, draw(st.booleans()))
    # A file whose line ends are mixed is refused for that first; the job reads no file of a refused batch.
    if mixed and len(set(line_ends(files["rental_transactions.csv"]))) > 1:
        rejected["rental_transactions.csv"] = "mixed_line_ends"
    elif unquoted:
        rejected["rental_transactions.csv"] = "control_character"
    return files, reasons, kept, rejected


@settings(max_examples=6, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(batch=batches())
def test_the_gate_and_the_job_read_the_same_rows_and_give_the_same_reasons(spark, tmp_path_factory, batch):
    files, reasons, kept, rejected = batch
    folder: Path = tmp_path_factory.mktemp("batch")
    for name, content in files.items():
        (folder / name).write_bytes(content)
    verdict = validate_folder(folder)
    event("runnable" if verdict.runnable else "rejected: " + ",".join(v.code or "" for v in verdict.files))
    assert {Path(v.file).name: v.code for v in verdict.files if not v.accepted} == rejected, verdict.problems()
    if rejected:
        return
    verdicts = {v.dataset: v for v in verdict.files if v.dataset}
    present = set(files)
    raw = {
        d.name: read_dataset(spark, str(folder), d, present, FileFacts.from_verdict(verdicts[d.name].as_dict()))
        for d in DATASETS.values()
    }
    references = {d.name: rules.tag_reference(raw[d.name], d) for d in REFERENCE_DATASETS}
    tagged = rules.tag_transactions(
        raw[RENTAL_TRANSACTIONS.name], *(rules.kept(references[name]) for name in ("users", "vehicles", "locations"))
    )
    # One Spark job: every file's rows read, the rentals' reasons, and the kept rentals' free text.
    counted = [raw[name].select(F.lit(name).alias("what"), F.lit(None).alias("text")) for name in raw]
    reasons_found = tagged.where("reason is not null").select(F.concat(F.lit("reason "), "reason"), F.lit(None))
    processed = rules.processed_transactions(tagged, "b1")
    texts = processed.select(F.concat(F.lit("kept "), "rental_id"), F.col("dropoff_location"))
    # Every other text processed/ gets, whose sources carry no control character: none must hold one.
    published = [
        processed.drop("dropoff_location"),
        rules.processed_users(references["users"]),
        rules.processed_vehicles(references["vehicles"]),
        rules.processed_locations(references["locations"]),
    ]
    others = [
        frame.select(F.lit("other"), F.concat_ws("|", *[c for c, kind in frame.dtypes if kind == "string"]))
        for frame in published
    ]
    found = reduce(DataFrame.unionAll, [*counted, reasons_found, texts, *others]).collect()
    read = Counter(row.what for row in found if row.what in raw)
    assert read == {name: v.rows for name, v in verdicts.items() if v.rows}
    job_reasons = Counter(row.what.split(" ", 1)[1] for row in found if row.what.startswith("reason "))
    gate_reasons = verdicts["rental_transactions"].row_issues
    assert job_reasons == gate_reasons == reasons
    assert {row.what.split(" ", 1)[1]: row.text for row in found if row.what.startswith("kept ")} == kept
    assert not [row.text for row in found if row.what == "other" and CONTROL.search(row.text)]
