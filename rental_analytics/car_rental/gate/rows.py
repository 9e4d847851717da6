"""Row checks the upload gate can make on one file alone, vectorised with pyarrow over a streamed CSV."""

from __future__ import annotations

import csv
import decimal
import functools
import io
import re
import threading
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from rental_analytics.car_rental.contract import (
    BAD_AMOUNT,
    BAD_TIMESTAMP,
    BLANK_VALUE_REGEX,
    CALENDAR_TIMESTAMP_REGEX,
    DECIMAL_REGEX,
    END_BEFORE_START,
    JAVA_TRIMMED_CHARS,
    MAX_FIELDS,
    MISSING_REQUIRED,
    RENTAL_TRANSACTIONS,
    Dataset,
)
from rental_analytics.car_rental.gate.ids import IdCheck

# A row must fit in one block. With 4 MiB blocks peak memory stays near 300 MiB whatever the file's size;
# with 16 MiB blocks it grew with the file (measured: docs/benchmarks.md).
BLOCK_BYTES = 4 << 20
MAX_EXAMPLES_PER_REASON = 3
# A line that Java's String.trim leaves empty (and is not empty to begin with).
WHITE_LINE = rf"{JAVA_TRIMMED_CHARS}+"
# A verdict quotes values to show a pattern; whole values could be megabytes each.
MAX_VALUE_CHARS = 200
PLACEHOLDER_TIME = "2000-01-01 00:00"
# A row of another width is parsed again by Python's csv module; a field of it can be as long as a block, and the
# module's default limit (128 KiB) would fail the row. The setting is the process's, and no other reader lowers it.
csv.field_size_limit(BLOCK_BYTES + 1)
# The rejection of a file with a header or a row of more than MAX_FIELDS fields.
TOO_MANY_FIELDS = "too_many_fields"
# The digits of an amount that decide its cents, as the Spark job takes them (rules._AMOUNT_PARTS, whose
# lookahead RE2 lacks: DECIMAL_REGEX stands in for it): sign, at most ten whole digits after the leading zeros, and
# the first three decimals, which round half-up to cents. Rewritten as "<sign>0<whole>.<three decimals>0".
AMOUNT_PARTS = r"^([+-]?)0*(\d{0,10})(?:\.(\d{0,3})\d*)?$"
AMOUNT_DIGITS = r"\10\2.\30"  # RE2 numbers groups \1 to \9 only: "\10" is group 1, then "0"
AMOUNT_TYPE = pa.decimal128(16, 4)
# DECIMAL(12,2) holds the amounts that round half-up to cents within (-0.01, 10^10), compared exactly.
SMALLEST_AMOUNT = decimal.Decimal("-0.005")
LARGEST_AMOUNT = decimal.Decimal("9999999999.995")
# Far wider than a float64's rounding at each bound (about 1e-6 at 10^10 and 1e-18 at 0.005).
NEAR_LARGEST, NEAR_SMALLEST = 1e-3, 1e-12


T = TypeVar("T")
# How long to wait for pyarrow's threads to let go of what they read; it takes them well under a millisecond.
RELEASE_WAIT_SECONDS = 5.0


class _Loans:
    """What pyarrow's reader threads are given from Python, counted until they have let go of it.

    The threads drop their last references to the stream and to the buffers read from it a moment after the
    last batch is handed over. Freeing a Python object takes the GIL; when the interpreter is exiting by then,
    the thread is stopped inside a C++ destructor and the process aborts (exit code 134, after the verdict has
    been printed). Waiting for every loan to come back before returning rules that out. For the same reason a
    failure of the stream is not raised into pyarrow, which would keep the exception and with it the stream:
    it is kept here, pyarrow sees the end of the file, and `tally_rows` raises it when pyarrow is done.
    """

    def __init__(self) -> None:
        self._out = 0
        self._back = threading.Condition()
        self.failure: Exception | None = None

    def lend(self, thing: T) -> T:
        with self._back:
            self._out += 1
        weakref.finalize(thing, self._returned)
        return thing

    def _returned(self) -> None:
        with self._back:
            self._out -= 1
            self._back.notify_all()

    def wait(self, seconds: float) -> None:
        with self._back:
            self._back.wait_for(lambda: self._out == 0, seconds)


class _LentStream(io.RawIOBase):
    """A stream as pyarrow reads it: itself and each buffer it hands out are loans."""

    def __init__(self, stream: IO[bytes] | io.RawIOBase, loans: _Loans) -> None:
        super().__init__()
        # Not a method: a traceback through a method's frame, kept with a failure, would keep `self` too.
        self.read = functools.partial(_read_lent, stream, loans)  # type: ignore[method-assign]
        loans.lend(self)

    def readable(self) -> bool:
        return True


def _read_lent(stream: IO[bytes] | io.RawIOBase, loans: _Loans, size: int = -1) -> memoryview:
    return loans.lend(memoryview(_read_or_keep_failure(stream, loans, size)))


def _read_or_keep_failure(stream: IO[bytes] | io.RawIOBase, loans: _Loans, size: int) -> bytes:
    if loans.failure is not None:
        return b""
    try:
        return stream.read(size) or b""
    except Exception as failure:
        loans.failure = failure
        return b""


def shorten(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """A value as a verdict quotes it: at most `limit` characters, a cut shown by an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# How many rows of the wrong width pass between two looks at the clock: pyarrow takes about 20 µs for each
# (docs/benchmarks.md, the gate's worst shapes), so about 20 ms.
CLOCK_EVERY_ROWS = 1024


class OutOfTime(Exception):
    """The verdict's deadline passed while the rows were read."""

    def __init__(self, rows: int, irregular: int) -> None:
        super().__init__(f"out of time after {rows} rows")
        self.rows, self.irregular = rows, irregular


class UnreadableRows(Exception):
    """The CSV body cannot be read as the Spark job reads it: a row is longer than a block, or too wide."""

    def __init__(self, reason: str, line: int | None = None, code: str = "unreadable_rows") -> None:
        super().__init__(reason)
        self.reason, self.line, self.code = reason, line, code


@dataclass
class RowTally:
    """Counts of data rows and of rows that break a rule the gate can check on this file alone.

    `issues` uses the contract's reason codes, one per row (the first that applies).
    """

    rows: int = 0
    # Rows the reader sets aside because their field count differs from the header's.
    skipped: int = 0
    issues: Counter[str] = field(default_factory=Counter)
    examples: list[dict[str, str]] = field(default_factory=list)
    # Whether every row had an id and no two rows the same one (ids.IdCheck), so the job need compare none.
    unique_ids: bool = False
    # Lines of nothing but spaces and control characters (WHITE_LINE), each counted as a row.
    white_lines: int = 0
    # Whether the deadline passed before the last row was read.
    out_of_time: bool = False
    # Why the invalid-row handler stopped the reader, where pyarrow would only say "error".
    stopped: UnreadableRows | None = None

    def note(self, reason: str, example: dict[str, str]) -> None:
        """Keep a few examples per reason: enough for a person to see the pattern."""
        if sum(1 for e in self.examples if e["reason"] == reason) < MAX_EXAMPLES_PER_REASON:
            self.examples.append({"reason": reason, **{name: shorten(value) for name, value in example.items()}})


def _trimmed(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Values trimmed as the Spark job trims them: of spaces, not of tabs or other white space."""
    return pc.utf8_trim(column, characters=" ")


def _blank(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pc.match_substring_regex(column, BLANK_VALUE_REGEX)


def _wall_clock(column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The column as timestamps (a placeholder where invalid) and whether each is a real wall-clock time."""
    text = _trimmed(column)
    real = pc.match_substring_regex(text, CALENDAR_TIMESTAMP_REGEX)
    return pc.cast(pc.if_else(real, text, PLACEHOLDER_TIME), pa.timestamp("s")), real


def _exactly_in_range(text: pa.Array) -> pa.Array:
    """Whether each plain decimal number rounds half-up into DECIMAL(12,2), judged on the job's digits exactly."""
    shaped = pc.match_substring_regex(text, AMOUNT_PARTS)
    value = pc.cast(pc.replace_substring_regex(pc.if_else(shaped, text, "0"), AMOUNT_PARTS, AMOUNT_DIGITS), AMOUNT_TYPE)
    smallest, largest = pa.scalar(SMALLEST_AMOUNT, AMOUNT_TYPE), pa.scalar(LARGEST_AMOUNT, AMOUNT_TYPE)
    return pc.and_(shaped, pc.and_(pc.greater(value, smallest), pc.less(value, largest)))


def _bad_amount(column: pa.Array) -> pa.Array:
    text = _trimmed(column)
    shaped = pc.match_substring_regex(text, DECIMAL_REGEX)
    value = pc.cast(pc.if_else(shaped, text, "0"), pa.float64())
    # Half-up rounding to cents makes -0.004 zero, which is not negative.
    in_range = pc.and_(pc.greater(value, float(SMALLEST_AMOUNT)), pc.less(value, float(LARGEST_AMOUNT)))
    # A float is off by its rounding, and the job reads three decimals only: near a bound, a value is judged again
    # exactly. The exact check is the slower one (a regex rewrite and a decimal cast), so only these rows get it.
    near = pc.or_(
        pc.less(pc.abs(pc.subtract(value, float(LARGEST_AMOUNT))), NEAR_LARGEST),
        pc.less(pc.abs(pc.subtract(value, float(SMALLEST_AMOUNT))), NEAR_SMALLEST),
    )
    near = pc.fill_null(pc.and_(shaped, near), False)
    if pc.any(near).as_py():
        in_range = pc.replace_with_mask(in_range, near, _exactly_in_range(pc.filter(text, near)))
    return pc.invert(pc.and_(shaped, in_range))


def _first_reason(rules: list[tuple[str, pa.Array]], rows: int) -> pa.Array:
    reason = pa.nulls(rows, pa.string())
    for name, broken in reversed(rules):
        reason = pc.if_else(broken, name, reason)
    return reason


def _transaction_reasons(batch: pa.RecordBatch, names: dict[str, str]) -> tuple[pa.Array, dict[str, tuple[str, ...]]]:
    """Rules 1, 3, 4 and 5 of the contract; the others need the whole batch of files."""
    column = {canonical: batch.column(raw) for canonical, raw in names.items()}
    missing = _blank(column[RENTAL_TRANSACTIONS.required[0]])
    for name in RENTAL_TRANSACTIONS.required[1:]:
        missing = pc.or_(missing, _blank(column[name]))
    start, start_ok = _wall_clock(column["rental_start_time"])
    end, end_ok = _wall_clock(column["rental_end_time"])
    rules = [
        (MISSING_REQUIRED, missing),
        (BAD_TIMESTAMP, pc.invert(pc.and_(start_ok, end_ok))),
        (END_BEFORE_START, pc.less(end, start)),
        (BAD_AMOUNT, _bad_amount(column["total_amount"])),
    ]
    times = ("rental_start_time", "rental_end_time")
    offending = {BAD_TIMESTAMP: times, END_BEFORE_START: times, BAD_AMOUNT: ("total_amount",)}
    return _first_reason(rules, batch.num_rows), offending


def _reference_reasons(batch: pa.RecordBatch, names: dict[str, str], dataset: Dataset) -> pa.Array:
    return _first_reason([(MISSING_REQUIRED, _blank(batch.column(names[dataset.id_column])))], batch.num_rows)


def _tally_batch(tally: RowTally, ids: IdCheck, batch: pa.RecordBatch, names: dict[str, str], dataset: Dataset) -> None:
    tally.rows += batch.num_rows
    ids.add(batch.column(names[dataset.id_column]))
    if dataset is RENTAL_TRANSACTIONS:
        reasons, offending = _transaction_reasons(batch, names)
    else:
        reasons, offending = _reference_reasons(batch, names, dataset), {}
    if reasons.null_count == len(reasons):
        return
    for entry in pc.value_counts(reasons.drop_null()).to_pylist():
        reason = entry["values"]
        tally.issues[reason] += entry["counts"]
        if sum(1 for e in tally.examples if e["reason"] == reason) >= MAX_EXAMPLES_PER_REASON:
            continue
        where = pc.indices_nonzero(pc.equal(reasons, reason)).to_pylist()[:MAX_EXAMPLES_PER_REASON]
        id_column = batch.column(names[dataset.id_column])
        for index in where:
            example = {dataset.id_column: str(id_column[index].as_py()).strip()}
            for name in offending.get(reason, ()):
                example[name] = str(batch.column(names[name])[index].as_py())
            tally.note(reason, example)


def checked_columns(dataset: Dataset) -> tuple[str, ...]:
    """The columns the gate's row checks read."""
    return RENTAL_TRANSACTIONS.required if dataset is RENTAL_TRANSACTIONS else (dataset.id_column,)


def _unreadable(error: pa.ArrowException) -> UnreadableRows:
    # A quote that never closes is the byte pass's to report; here it can only show as a row too long.
    if "straddling" in str(error):
        return UnreadableRows(f"a row is longer than {BLOCK_BYTES >> 20} MiB, or a quoted field is never closed")
    return UnreadableRows(f"the rows cannot be read as CSV ({shorten(str(error))})")


def column_name(position: int) -> str:
    """The name the row reader knows the column at this position of the header by."""
    return f"c{position}"


def header_line(fields: int) -> bytes:
    """A header of `fields` plain names (`column_name`), put before the data rows in place of the file's own.

    The file's header has been read (by Python's csv module) and checked; pyarrow, which strips one BOM of
    any number and reads quotes in the header its own way, never sees it, and so never disagrees with it.
    """
    return ",".join(column_name(i) for i in range(fields)).encode() + b"\n"


def tally_rows(
    stream: IO[bytes] | io.RawIOBase,
    dataset: Dataset,
    fields: int,
    positions: dict[str, int],
    deadline: float | None = None,
) -> RowTally:
    """Read a CSV stream in blocks and count the rows that break a local rule.

    The stream starts with `header_line(fields)` in place of the file's header; `positions` says where each
    contract column sits in the file's header. Past `deadline` (a `time.monotonic()`), `OutOfTime` is raised.
    """

    def late() -> bool:
        return deadline is not None and time.monotonic() > deadline

    tally = RowTally()
    ids = IdCheck()
    header_names = {name: column_name(positions[name]) for name in checked_columns(dataset)}
    last_checked = max(positions[name] for name in header_names)

    white_line = re.compile(WHITE_LINE)
    wanted = list(header_names.values())
    checked_at = {column_name(positions[name]): positions[name] for name in header_names}
    irregular: list[list[str]] = []

    def on_invalid_row(row: pa_csv.InvalidRow) -> str:
        # pyarrow prints and drops what its handler raises, and stops on "error" as if the bytes were not CSV:
        # whatever goes wrong here is kept and becomes the file's verdict instead.
        try:
            return judge_invalid_row(row)
        except Exception as error:  # the gate's own failure, told as such in the verdict
            tally.stopped = UnreadableRows(f"the gate failed on row {row.number} ({shorten(repr(error))})")
            return "error"

    def judge_invalid_row(row: pa_csv.InvalidRow) -> str:
        # pyarrow hands these rows over one at a time, so a file of nothing else is checked at about 0.1 MiB/s.
        if row.actual_columns > MAX_FIELDS:
            wide = (
                f"row {row.number} has {row.actual_columns:,} fields, more than the {MAX_FIELDS:,} the Spark job reads"
            )
            tally.stopped = UnreadableRows(wide, code=TOO_MANY_FIELDS)
            return "error"
        if tally.skipped % CLOCK_EVERY_ROWS == 0 and late():
            tally.out_of_time = True
            return "error"
        white = white_line.fullmatch(row.text or "") is not None
        tally.white_lines += white
        # A white line is a row of blanks (docs/car-rental-decisions.md), whatever its one field holds.
        if row.actual_columns > last_checked and row.text is not None and not white:
            # Every checked field is there: Spark reads the row with nulls past its end, or drops the fields past
            # the header's, and judges its values. So does the gate, with the rows of the block (`_irregular`).
            irregular.append(next(csv.reader(io.StringIO(row.text, newline=""), strict=True)))
            return "skip"
        tally.skipped += 1
        ids.give_up()  # Spark reads the row, its id among its fields, where the gate has none
        tally.issues[MISSING_REQUIRED] += 1  # Spark reads the absent fields as empty
        tally.note(MISSING_REQUIRED, {"row": str(row.number), "fields": str(row.actual_columns)})
        return "skip"

    def tally_irregular() -> None:
        """Judge the rows of another width that hold every checked field, as one batch of their checked fields."""
        if irregular:
            columns = {column: [fields[at] for fields in irregular] for column, at in checked_at.items()}
            _tally_batch(tally, ids, pa.RecordBatch.from_pydict(columns), header_names, dataset)
            irregular.clear()

    loans = _Loans()
    try:
        reader = pa_csv.open_csv(
            _LentStream(stream, loans),
            read_options=pa_csv.ReadOptions(use_threads=False, block_size=BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid_row),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(wanted, pa.string()),
                include_columns=wanted,
                check_utf8=False,  # the byte pass before this one has checked every byte
            ),
        )
        for batch in reader:
            if late():
                tally.out_of_time = True
                break
            _tally_batch(tally, ids, batch, header_names, dataset)
            tally_irregular()
            if fields == 1:  # a white line is then a row of the right width, its one value the line itself
                column = batch.column(0)
                tally.white_lines += pc.sum(pc.match_substring_regex(column, f"^{WHITE_LINE}$")).as_py() or 0
    except pa.ArrowException as error:  # whatever pyarrow makes of the bytes, the file gets a verdict
        # A failed stream ends early, and pyarrow meets that end: the failure is the news, as is the deadline.
        if loans.failure is None and not tally.out_of_time:
            raise (tally.stopped or _unreadable(error)) from error
    finally:
        reader = batch = None  # the last references this function holds to what the reader made
        loans.wait(RELEASE_WAIT_SECONDS)
    if loans.failure is not None:
        raise loans.failure
    if tally.out_of_time:
        raise OutOfTime(tally.rows + tally.skipped + len(irregular), tally.skipped + len(irregular))
    tally_irregular()  # a last block's, had pyarrow handed them over after its last batch
    # Rows skipped for missing a checked field are rows too: the Spark job reads them with nulls.
    tally.rows += tally.skipped
    tally.unique_ids = ids.unique()
    return tally
