"""The upload gate on one file: name, compression, encoding and header decide; bad rows are counted."""

from __future__ import annotations

import codecs
import csv
import io
import re
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import IO, Any

from rental_analytics.car_rental.contract import (
    DATASETS,
    MAX_FIELDS,
    Dataset,
    HeaderMapping,
    dataset_for_file_name,
    map_header,
    normalize_header_name,
)
from rental_analytics.car_rental.gate.rows import (
    BLOCK_BYTES,
    TOO_MANY_FIELDS,
    OutOfTime,
    RowTally,
    UnreadableRows,
    header_line,
    shorten,
    tally_rows,
)

CHUNK_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
MAX_EXAMPLES = 5
MAX_HEADER_BYTES = 1 << 20
# The most data a file may hold once inflated, and the most a gzip file may inflate per compressed byte.
# The generator's files compress 2.5 to 3.7 times; deflate cannot go past about 1030, where a bomb sits. The
# ratio is judged once the first few MiB are out, so that a short, repetitive start of a file does not decide.
MAX_DATA_BYTES = 20 << 30
MAX_COMPRESSION_RATIO = 200
RATIO_CHECKED_AFTER_BYTES = 4 << 20

_BARE_CR = re.compile(rb"\r(?!\n)")
_BARE_LF = re.compile(rb"(?<!\r)\n")
LINE_END_NAMES = {"\n": "LF", "\r\n": "CRLF"}
# A quoted field's text: anything but a quote, and quotes doubled.
_QUOTED_TEXT = re.compile(rb'[^"]*(?:""[^"]*)*')
# From the start of a field, as many whole fields as `re` can take in one go: unquoted ones, and quoted ones
# without line breaks, each with its comma or line end (a leading one, when just after a closing quote).
_FIELDS = re.compile(rb'(?:,|\r?\n)?(?:(?:"[^"\r\n]*(?:""[^"\r\n]*)*"|[^"\r\n,][^\r\n,]*|)(?:,|\r?\n))*')
# The same, when the chunk holds a control character: an unquoted field holding one ends the run, so that the scan
# looks at it (`_QuoteScan._note_control`). Inside quotes a control character is data.
_CLEAN_FIELDS = re.compile(
    rb'(?:,|\r?\n)?(?:(?:"[^"\r\n]*(?:""[^"\r\n]*)*"|[^"\r\n,\x00-\x1f\x7f][^\r\n,\x00-\x1f\x7f]*|)(?:,|\r?\n))*'
)
_FIELD_ENDS = (b",", b"\n")
# The C0 control characters and DEL but CR and LF, which outside quotes are line ends (a bare CR is refused on its
# own). RFC 4180's unquoted text holds none (docs/car-rental-decisions.md); a chunk is checked for any by
# `bytes.translate`, about ten times faster than a regular expression, before the scan looks where they are.
CONTROL_BYTES = bytes([*range(0x0A), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_CONTROL = re.compile(b"[" + re.escape(CONTROL_BYTES) + b"]")
CONTROL_CHARACTER = "control_character"
# How much of a record the scan keeps, to name the column of a control character found in it: records are short.
MAX_RECORD_HEAD_BYTES = 1 << 20
CONTROL_NAMES = {
    0x09: "a tab",
    0x0B: "a vertical tab",
    0x0C: "a form feed",
    0x1B: "an escape character",
    0x7F: "a delete character",
}
# Quotes closer together than this are dense enough for `_FIELDS`; sparser ones are found with `bytes.find`.
DENSE_QUOTES = 256


@dataclass(frozen=True)
class FileVerdict:
    """The gate's decision on one file, in words a person understands and in fields a program reads."""

    file: str
    dataset: str | None
    accepted: bool
    code: str | None = None
    reason: str | None = None
    line: int | None = None
    column: str | None = None
    examples: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    bytes_read: int = 0
    lines: int = 0
    rows: int = 0
    row_issues: dict[str, int] = field(default_factory=dict)
    row_examples: tuple[dict[str, str], ...] = ()
    # Whether a quoted field holds a line break, or a line nothing but white space, so that Spark must read the
    # file with multiLine. True unless the gate has read the file and found neither: a line-by-line read would
    # split the first kind of row and skip the second, which the gate counts (`rows.WHITE_LINE`).
    multiline_fields: bool = True
    # Whether the file holds a quote character at all. True unless the gate has read the file and found none:
    # a file with none is plain lines of comma-separated values, which the Spark job splits itself.
    quotes: bool = True
    # Whether every row has an id and no two rows the same one, once trimmed. False unless the gate has checked
    # every row's id: the Spark job then compares no rows to find identical ones or repeated ids.
    unique_ids: bool = False
    # The header's field count and where each contract column sits in it, so that the Spark job is given
    # the file's layout instead of reading the header again.
    header_fields: int = 0
    columns: dict[str, int] = field(default_factory=dict)
    # The records' line end, "\n" or "\r\n" ("" when no line end is outside quotes): Spark's multi-line reader is
    # told it, as it would otherwise take the first line end it meets, inside quotes or not, for every record's.
    line_end: str = ""

    @property
    def has_data_rows(self) -> bool:
        """Whether the file holds anything beyond its header."""
        return self.rows > 0

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form, used for the quarantine report, the accepted-file marker and `validate --json`."""
        data = asdict(self)
        for name in ("examples", "warnings", "row_examples"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileVerdict:
        """The inverse of `as_dict`, for verdicts kept in the accepted-file markers."""
        known = {f.name for f in fields(cls)} - {"examples", "warnings", "row_examples"}
        return cls(
            **{k: v for k, v in data.items() if k in known},
            examples=tuple(data.get("examples", ())),
            warnings=tuple(data.get("warnings", ())),
            row_examples=tuple(data.get("row_examples", ())),
        )

    def rejected_as(self, code: str, reason: str) -> FileVerdict:
        """This file rejected for a reason found beyond the file itself, such as its place in the batch."""
        return replace(self, accepted=False, code=code, reason=reason, line=None)

    def describe(self) -> str:
        """One line for a terminal."""
        if self.accepted:
            extra = f" ({'; '.join(self.warnings)})" if self.warnings else ""
            return f"ACCEPTED {self.file}: {self.rows:,} row{'' if self.rows == 1 else 's'}{extra}"
        where = f" (line {self.line})" if self.line else ""
        return f"REJECTED {self.file}{where}: {self.reason}"


class _Rejection(Exception):
    def __init__(self, code: str, reason: str, line: int | None = None, **extra: object) -> None:
        super().__init__(reason)
        self.code, self.reason, self.line, self.extra = code, reason, line, extra


def _raw_chunks(head: bytes, stream: IO[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    while chunk := stream.read(CHUNK_BYTES):
        yield chunk


@dataclass(frozen=True)
class _Limits:
    max_bytes: int
    max_ratio: float
    ratio_after_bytes: int
    deadline: float | None = None

    def check_time(self, checked: int) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _out_of_time(f"{_size(checked)} checked")

    def check_ratio(self, inflated: int, compressed: int) -> None:
        if inflated > self.ratio_after_bytes and inflated > self.max_ratio * compressed:
            raise _Rejection(
                "too_large",
                f"the gzip data inflates more than {self.max_ratio:g} times ({_size(compressed)} gave "
                f"{_size(inflated)} so far), far more than CSV data compresses: refused as a possible decompression "
                "bomb",
            )

    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise _Rejection("too_large", f"the file holds more than {_size(self.max_bytes)} of data, the gate's limit")


def _out_of_time(progress: str) -> _Rejection:
    return _Rejection(
        "too_slow_to_check",
        f"the gate ran out of time checking this file ({progress}): rows with fewer or more fields than the "
        "header, and quoted values with line breaks, cost it the most. Split the file into smaller ones, or give "
        "every row the header's fields, and upload them again",
    )


def _size(count: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift:
            return f"{count / (1 << shift):.3g} {unit}"
    return f"{count} bytes"


def _gunzip(compressed: Iterator[bytes], limits: _Limits) -> Iterator[bytes]:
    """Inflate gzip data chunk by chunk, member after member, noticing when it stops short or inflates too much."""
    inflater = zlib.decompressobj(wbits=31)
    consumed = inflated = 0
    try:
        for chunk in compressed:
            pending = chunk
            while pending:
                if inflater.eof:
                    inflater = zlib.decompressobj(wbits=31)  # the next member of a multi-member file
                data = inflater.decompress(pending, CHUNK_BYTES)
                # At a member's end CPython leaves the rest in unused_data but also in unconsumed_tail:
                # feeding the tail back to the finished inflater would never consume it.
                rest = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
                consumed += len(pending) - len(rest)
                inflated += len(data)
                limits.check_ratio(inflated, consumed)
                yield data
                pending = rest
    except zlib.error as error:
        raise _Rejection("damaged_gzip", f"the gzip data is damaged ({error})") from error
    if not inflater.eof:
        raise _Rejection("truncated_gzip", "the gzip data is cut short: the file was not uploaded whole")


def _chunks(name: str, stream: IO[bytes], limits: _Limits) -> Iterator[bytes]:
    head = stream.read(4)
    is_gzip = head.startswith(GZIP_MAGIC)
    if name.endswith(".gz") and not is_gzip:
        if head.startswith(ZIP_MAGIC):
            raise _Rejection("not_gzip", "the file is a zip archive, not gzip: send .csv or .csv.gz", 1)
        raise _Rejection("not_gzip", "the file is named .gz but is not gzip-compressed", 1)
    if is_gzip and not name.endswith(".gz"):
        raise _Rejection("compressed_but_named_csv", "the file is gzip-compressed: name it .csv.gz", 1)
    raw = _raw_chunks(head, stream)
    yield from (chunk for chunk in (_gunzip(raw, limits) if is_gzip else raw) if chunk)


@dataclass(frozen=True)
class ControlFound:
    """The first control character outside quotes: its line, its record's field, and the character.

    The field is None when the record runs on for more than MAX_RECORD_HEAD_BYTES before it.
    """

    line: int
    field: int | None
    code: int


class _QuoteScan:
    """Where quoted fields open and close, chunk by chunk, as RFC 4180 and Python's strict csv module read them.

    pyarrow's reader takes a file that ends inside quotes as a last, very long field, a bare CR as a line end
    and text after a closing quote as part of the value; other CSV readers (Spark's among them) split such
    files otherwise, so the gate rejects them. The scan also finds where the header record ends and whether a
    quoted field spans lines. Stretches without quotes are passed over with `bytes.find` (and a regular
    expression where they hold a CR), and runs of short quoted fields with another, so that Python code runs
    rarely per chunk. A chunk holding a control character is scanned for where it is, inside quotes or not.
    """

    def __init__(self) -> None:
        self.quoted = False
        self.quote_line = 0
        self.multiline = False
        self.any_quote = False
        self.header_end: int | None = None  # the offset just past the header record's line end
        # The line end of the records ("\n" or "\r\n"), once one is met outside quotes; inside quotes any is data.
        self.line_end = ""
        self._field_start = True  # whether the next byte scanned starts a field
        self._carry = b""  # a last quote or CR, judged once the byte after it is known
        self._offset = 0
        self._head = b""
        self._lines = 0
        self._counted = 0
        self.control: ControlFound | None = None
        self._base = 0  # the offset of the data being scanned
        self._record_start = 0  # the offset of the current record's first byte
        self._record_head: bytes | None = b""  # its bytes before the data being scanned; None past the limit

    def feed(self, chunk: bytes, lines_before: int) -> None:
        """Scan the next chunk of the file, which starts after `lines_before` line feeds."""
        if len(self._head) < len(UTF8_BOM):
            self._head += chunk[: len(UTF8_BOM) - len(self._head)]
        self.any_quote = self.any_quote or b'"' in chunk
        data = self._carry + chunk  # what is carried is a quote or a CR, never a line feed
        base = self._offset - len(self._carry)
        self._offset += len(chunk)
        check = self.control is None and len(chunk.translate(None, CONTROL_BYTES)) != len(chunk)
        self._scan(data, base, lines_before, final=False, check=check)

    def finish(self, lines: int) -> None:
        """The file has ended, after `lines` line feeds: a quote still open never closes."""
        data, self._carry = self._carry, b""
        if data:
            self._scan(data, self._offset - len(data), lines, final=True, check=False)  # a quote or a CR
        if self.quoted:
            raise _Rejection(
                "unterminated_quote",
                "a quoted field opened on this line never closes: the file ends inside it",
                self.quote_line,
            )

    def _line(self, data: bytes, index: int) -> int:
        self._lines += data.count(b"\n", self._counted, index)
        self._counted = index
        return self._lines + 1

    def _scan(self, data: bytes, base: int, lines_before: int, final: bool, check: bool) -> None:
        self._lines, self._counted = lines_before, 0
        self._base = base
        pos, size = 0, len(data)
        while pos < size:
            if self.quoted:
                pos, size = self._quoted(data, pos, size, final)
                continue
            if self._field_start and self.header_end is not None and data.find(b'"', pos, pos + DENSE_QUOTES) >= 0:
                fields = _CLEAN_FIELDS if check else _FIELDS
                run = fields.match(data, pos).end()  # type: ignore[union-attr]  # it matches the empty text
                self._line_ends(data, pos, run)  # every line end in the run ends a record: its fields hold none
                pos = run
                if pos == size:
                    break
            quote = data.find(b'"', pos)
            end = size if quote < 0 else quote
            if self.header_end is None and (newline := data.find(b"\n", pos, end)) >= 0:
                self.header_end = base + newline + 1
            bare = _BARE_CR.search(data, pos, end) if data.find(b"\r", pos, end) >= 0 else None
            if bare:
                cr = bare.start()
                if cr + 1 < size or final:
                    raise _Rejection(
                        "bare_carriage_return",
                        "a line ends with a bare carriage return (CR without LF): line ends must be LF or CRLF",
                        self._line(data, cr),
                    )
                end = size = cr  # a CRLF split between two chunks, perhaps
            record_start = self._record_start
            self._line_ends(data, pos, end)  # first: a file whose line ends are mixed is refused for that
            if check and (control := _CONTROL.search(data, pos, end)):
                self._note_control(data, pos, control.start(), record_start)
                check = False
            if end > pos:
                self._field_start = data[end - 1 : end] in _FIELD_ENDS
            if quote < 0 or quote >= size:
                break
            if self._field_start or (base + quote == len(UTF8_BOM) and self._head == UTF8_BOM):
                self.quoted = True
                self.quote_line = self._line(data, quote)
            self._field_start = False  # inside quotes, or after a quote inside an unquoted value (which is text)
            pos = quote + 1
        self._carry = data[size:]
        # What is carried is scanned again with the next chunk, which starts at base + size.
        if self._record_start >= base:
            head: bytes | None = data[self._record_start - base : size]
        else:
            head = None if self._record_head is None else self._record_head + data[:size]
        self._record_head = head if head is not None and len(head) <= MAX_RECORD_HEAD_BYTES else None

    def _note_control(self, data: bytes, stretch: int, index: int, record_start: int) -> None:
        """Keep where the first control character outside quotes is: its line and, from its record, its field.

        `index` is in a stretch outside quotes that starts at `stretch`, where every line feed ends a record, and
        `record_start` is where the record open at the stretch's start began.
        """
        line = self._line(data, index)
        if (feed := data.rfind(b"\n", stretch, index)) >= 0:
            record_start = self._base + feed + 1
        start = record_start - self._base
        field: int | None = None
        if self._base + index - record_start <= MAX_RECORD_HEAD_BYTES:  # then its head is kept, whatever the chunks
            before = data[start:index] if start >= 0 else (self._record_head or b"") + data[:index]
            text = before.decode("utf-8", "replace")
            if record_start == 0 and text.startswith("\ufeff"):
                text = text[1:]  # one BOM, as the scan takes it: a quote just after it opens a field
            # The text ends outside quotes, in the field: the fields csv finds in it are those before it, and it.
            field = len(next(csv.reader(io.StringIO(text, newline="")), [""])) - 1
        self.control = ControlFound(line, field, data[index])

    def _line_ends(self, data: bytes, start: int, end: int) -> None:
        """Note the line ends of a stretch outside quotes; refuse a file whose records end in both LF and CRLF.

        Spark's multi-line reader splits records at one kind of line end only (the job tells it which), so a
        mixed file would keep a CR at the end of values or run records together (docs/car-rental-decisions.md).
        A CR is never the last byte of a stretch here: one at a chunk's end is carried to the next chunk.
        """
        feeds = data.count(b"\n", start, end)
        if not feeds:
            return
        self._record_start = self._base + data.rfind(b"\n", start, end) + 1
        pairs = data.count(b"\r\n", start, end)
        if not self.line_end:
            first = data.find(b"\n", start, end)
            self.line_end = "\r\n" if first > start and data[first - 1] == 13 else "\n"
        if self.line_end == "\n" and pairs:
            odd = data.find(b"\r\n", start, end)
        elif self.line_end == "\r\n" and pairs < feeds:
            odd = _BARE_LF.search(data, start, end).start()  # type: ignore[union-attr]  # a bare LF is there
        else:
            return
        found, before = LINE_END_NAMES["\n" if self.line_end == "\r\n" else "\r\n"], LINE_END_NAMES[self.line_end]
        raise _Rejection(
            "mixed_line_ends",
            f"this line ends with {found} where the lines before it end with {before}: use one kind of line end "
            "(LF or CRLF) throughout the file",
            self._line(data, odd),
        )

    def _quoted(self, data: bytes, pos: int, size: int, final: bool) -> tuple[int, int]:
        """Scan on from inside a quoted field: where the scan goes on, and where this chunk's scan ends."""
        end = _QUOTED_TEXT.match(data, pos).end()  # type: ignore[union-attr]  # it matches the empty text
        if not self.multiline and (data.find(b"\n", pos, end) >= 0 or data.find(b"\r", pos, end) >= 0):
            self.multiline = True
        if end == size:
            return size, size
        if end + 1 == size and not final:
            return end, end  # a closing quote, or the first of a doubled one
        if data[end + 1 : end + 2] not in (b",", b"\n", b"\r", b""):
            raise _Rejection(
                "text_after_quote",
                "a quoted value is followed by more text before the next comma: quote the whole value "
                'and double each quote inside it ("a ""b"" c")',
                self._line(data, end),
            )
        self.quoted = False
        self._field_start = True  # the comma or line end that follows is taken as the end of an empty field
        return end + 1, size


def _looks_utf16(head: bytes) -> bool:
    """Whether a file's first bytes are UTF-16: its byte-order mark, or ASCII with a NUL before or after each byte."""
    if head.startswith(UTF16_BOMS):
        return True
    pairs = len(head) // 2
    even, odd = head[0 : 2 * pairs : 2], head[1 : 2 * pairs : 2]
    return pairs >= 2 and sorted((even.count(0), odd.count(0))) == [0, pairs]


class _CheckedBytes(io.RawIOBase):
    """The file's (decompressed) bytes as a stream, checked for NUL bytes, UTF-8 and quoting as they pass.

    The header is read first, through `next_chunk`; `replay` then hands back what was read past it, behind a
    header of the row reader's own, so that the row reader sees every data row while memory holds one chunk and
    one header at most.
    """

    def __init__(self, chunks: Iterator[bytes], limits: _Limits) -> None:
        super().__init__()
        self._chunks = chunks
        self._limits = limits
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._pending = memoryview(b"")
        self._replayed: list[bytes] = []
        self.scan = _QuoteScan()
        self._head = b""
        self.bytes_read = 0
        self.newlines = 0
        self.last_byte = b""

    def readable(self) -> bool:
        return True

    def next_chunk(self) -> bytes | None:
        """The next checked chunk, or None at the end of the file."""
        chunk = next(self._chunks, None)
        if chunk is None:
            self._finish()
            return None
        self._limits.check_size(self.bytes_read + len(chunk))
        self._limits.check_time(self.bytes_read)
        if len(self._head) < 64:
            self._head += chunk[: 64 - len(self._head)]
        if b"\x00" in chunk:
            self._refuse_utf16()
            line = self.newlines + chunk.count(b"\n", 0, chunk.index(b"\x00")) + 1
            raise _Rejection("binary", "the file holds binary data (NUL bytes), not CSV text", line)
        try:
            self._decoder.decode(chunk)
        except UnicodeDecodeError as error:
            self._refuse_utf16()
            start = max(error.start, 0)
            line = self.newlines + chunk.count(b"\n", 0, start) + 1
            bad = chunk[start : start + 4]
            raise _Rejection("not_utf8", f"the file is not valid UTF-8 (bytes {bad!r})", line) from error
        self.scan.feed(chunk, self.newlines)
        self.bytes_read += len(chunk)
        self.newlines += chunk.count(b"\n")
        self.last_byte = chunk[-1:]
        return chunk

    def _refuse_utf16(self) -> None:
        if _looks_utf16(self._head):
            raise _Rejection("not_utf8", "the file is UTF-16 text, not UTF-8: re-save it as UTF-8", 1)

    def _finish(self) -> None:
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            raise _Rejection("not_utf8", "the file ends inside a UTF-8 character", self.newlines + 1) from error
        self.scan.finish(self.newlines)

    def replay(self, chunks: list[bytes]) -> None:
        """Serve these chunks (already checked, or made by the gate) before reading on."""
        self._replayed = list(reversed(chunks))

    def readinto(self, buffer: Any) -> int:
        # Fill the whole buffer: pyarrow takes a short read for the end of its block.
        filled = 0
        while filled < len(buffer):
            if not self._pending:
                chunk = self._replayed.pop() if self._replayed else self.next_chunk()
                if chunk is None:
                    break
                self._pending = memoryview(chunk)
            size = min(len(buffer) - filled, len(self._pending))
            buffer[filled : filled + size] = self._pending[:size]
            self._pending = self._pending[size:]
            filled += size
        return filled


def _read_header(source: _CheckedBytes) -> tuple[str, list[bytes]]:
    """The header record's text (through its line end) and the chunks read to find it."""
    chunks: list[bytes] = []
    size = 0
    while source.scan.header_end is None:
        chunk = source.next_chunk()
        if chunk is None:
            break
        chunks.append(chunk)
        size += len(chunk)
        if source.scan.header_end is None and size > MAX_HEADER_BYTES:
            raise _Rejection(
                "header_too_long",
                f"the header row is longer than {MAX_HEADER_BYTES >> 10} KiB: is a quote in it left open?",
                1,
            )
    # The bytes have passed the UTF-8 check, and a line feed never splits a character.
    return b"".join(chunks)[: source.scan.header_end].decode("utf-8"), chunks


def _repeated(names: tuple[str, ...]) -> tuple[str, ...]:
    """The names given twice, as first written, matched as the contract's columns are; a blank name names nothing."""
    first: dict[str, str] = {}
    repeated: list[str] = []
    for name in names:
        key = normalize_header_name(name)
        if key in first:
            repeated.append(first[key])
        elif key:
            first[key] = name
    return tuple(repeated)


def _check_header(dataset: Dataset, header_text: str) -> tuple[list[str], HeaderMapping, tuple[str, ...]]:
    text = header_text.lstrip("\ufeff")
    if not text.strip():
        raise _Rejection("empty", "the file is empty", 1)
    try:
        header = next(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as error:  # the quoting and the length (under the field limit rows.py sets) are checked
        raise _Rejection("header_too_long", f"a column name in the header is too long ({error})", 1) from error
    if len(header) > MAX_FIELDS:
        wide = f"the header has {len(header):,} fields, more than the {MAX_FIELDS:,} the Spark job reads"
        raise _Rejection(TOO_MANY_FIELDS, wide, 1)
    mapping = map_header(dataset, header)
    repeated = mapping.repeated or _repeated(mapping.unknown)
    if repeated:
        name = shorten(repeated[0])
        raise _Rejection("repeated_column", f"column {name!r} appears more than once in the header", 1, column=name)
    if mapping.missing:
        hint = ""
        if len(header) == 1 and ";" in header[0]:
            hint = " (the header is separated by semicolons; the contract requires commas)"
        elif len(header) == 1 and "\t" in header[0]:
            hint = " (the header is separated by tabs; the contract requires commas)"
        raise _Rejection(
            "missing_column",
            f"required column {mapping.missing[0]!r} is missing from the header{hint}",
            1,
            column=mapping.missing[0],
            examples=tuple(shorten(h.strip()) for h in header[:MAX_EXAMPLES]),
        )
    warnings = tuple(f"unknown column {shorten(name)!r} is ignored" for name in mapping.unknown[:MAX_EXAMPLES])
    if len(mapping.unknown) > MAX_EXAMPLES:
        warnings += (f"{len(mapping.unknown) - MAX_EXAMPLES} more unknown columns are ignored",)
    return header, mapping, warnings


def _control_rejection(found: ControlFound, header: list[str]) -> _Rejection:
    """The file holds a control character outside quotes: judged last, so that any other reason is given first."""
    what = f"{CONTROL_NAMES.get(found.code, 'a control character')} (U+{found.code:04X})"
    column = None
    if found.field is None:
        where = ""
    elif found.field < len(header) and header[found.field].strip():
        column = shorten(header[found.field].strip())
        where = f", in column {column!r}"
    else:
        where = f", in field {found.field + 1}"
    return _Rejection(
        CONTROL_CHARACTER,
        f"{what} is outside quotes{where}: CSV text holds control characters only inside quoted values. "
        'Remove it, or quote the whole value ("…")',
        found.line,
        column=column,
    )


def _row_warnings(tally: RowTally) -> tuple[str, ...]:
    if not tally.rows:
        return ("the file has a header but no data rows",)
    if not tally.issues:
        return ()
    counts = ", ".join(f"{reason} {count:,}" for reason, count in sorted(tally.issues.items()))
    return (f"{sum(tally.issues.values()):,} of {tally.rows:,} rows break a row rule ({counts})",)


def validate_stream(
    name: str,
    stream: IO[bytes],
    *,
    max_bytes: int = MAX_DATA_BYTES,
    max_ratio: float = MAX_COMPRESSION_RATIO,
    ratio_after_bytes: int = RATIO_CHECKED_AFTER_BYTES,
    deadline: float | None = None,
) -> FileVerdict:
    """Check one file as a stream, never holding it whole: name, compression, encoding, header and rows.

    A file with some bad rows is accepted, with their counts: the Spark job's row rules deal with them.
    `max_bytes` caps the (inflated) data; a gzip file inflating more than `max_ratio` times is refused once
    `ratio_after_bytes` have come out. A file still being checked at `deadline` (a `time.monotonic()`) is
    refused as `too_slow_to_check`, so that the Lambda function gives every upload a verdict before its timeout.
    """
    limits = _Limits(max_bytes, max_ratio, ratio_after_bytes, deadline)
    file_name = name.rsplit("/", 1)[-1]
    dataset = dataset_for_file_name(file_name)
    if dataset is None:
        known = ", ".join(f"{d}.csv" for d in DATASETS)
        return FileVerdict(name, None, False, "unknown_dataset", f"{file_name!r} is not one of the datasets ({known})")
    source = _CheckedBytes(iter(()), limits)
    try:
        source = _CheckedBytes(_chunks(file_name, stream, limits), limits)
        header_text, header_chunks = _read_header(source)
        header, mapping, warnings = _check_header(dataset, header_text)
        if source.scan.header_end is None:
            # The header is the whole file, and pyarrow would find no line to infer it from; no row, no id twice.
            tally = RowTally(unique_ids=True)
        else:
            rows_start = b"".join(header_chunks)[source.scan.header_end :]
            source.replay([header_line(len(header)), rows_start])
            tally = tally_rows(source, dataset, len(header), mapping.positions, deadline)
        if source.scan.control is not None:
            raise _control_rejection(source.scan.control, header)
    except OutOfTime as late:
        progress = f"{_size(source.bytes_read)} and {late.rows:,} rows checked, {late.irregular:,} of another width"
        return _rejected(name, dataset, source, _out_of_time(progress))
    except UnreadableRows as unreadable:
        rejection = _Rejection(unreadable.code, unreadable.reason, unreadable.line)
        if source.scan.quoted and unreadable.code == "unreadable_rows":
            rejection = _Rejection(
                "unreadable_rows",
                f"a quoted field opened on this line runs on for more than {BLOCK_BYTES >> 20} MiB: "
                "is its closing quote missing?",
                source.scan.quote_line,
            )
        return _rejected(name, dataset, source, rejection)
    except _Rejection as rejection:
        return _rejected(name, dataset, source, rejection)
    lines = source.newlines + (1 if source.last_byte not in (b"\n", b"") else 0)
    return FileVerdict(
        name,
        dataset.name,
        True,
        warnings=warnings + _row_warnings(tally),
        bytes_read=source.bytes_read,
        lines=lines,
        rows=tally.rows,
        row_issues=dict(sorted(tally.issues.items())),
        row_examples=tuple(tally.examples),
        multiline_fields=source.scan.multiline or tally.white_lines > 0,
        quotes=source.scan.any_quote,
        unique_ids=tally.unique_ids,
        header_fields=len(header),
        columns=dict(mapping.positions),
        line_end=source.scan.line_end,
    )


def _rejected(name: str, dataset: Dataset, source: _CheckedBytes, rejection: _Rejection) -> FileVerdict:
    return FileVerdict(
        name,
        dataset.name,
        False,
        rejection.code,
        rejection.reason,
        rejection.line,
        column=rejection.extra.get("column"),  # type: ignore[arg-type]
        examples=rejection.extra.get("examples", ()),  # type: ignore[arg-type]
        bytes_read=source.bytes_read,
        lines=source.newlines,
    )


def validate_file(path: Path) -> FileVerdict:
    """Check one local file."""
    with path.open("rb") as stream:
        return validate_stream(path.name, stream)


@dataclass(frozen=True)
class BatchVerdict:
    """The gate's decision on a batch folder: each file's verdict and what is missing."""

    files: tuple[FileVerdict, ...]
    missing: tuple[str, ...]

    @property
    def accepted(self) -> bool:
        """Every file passes and no dataset is missing: only then does `validate` exit 0 (contract, section 5)."""
        return self.runnable and all(v.accepted for v in self.files)

    @property
    def runnable(self) -> bool:
        """All four datasets are present and each of their files passes: the batch can run.

        A file named after no dataset (a README, say) is rejected and set aside without stopping the run, as
        the upload gate in AWS starts a run once each dataset has an accepted file, whatever else was uploaded.
        """
        of_datasets = [v for v in self.files if v.dataset]
        return bool(of_datasets) and not self.missing and all(v.accepted for v in of_datasets)

    def path_of(self, dataset: str) -> str:
        """The accepted file that carries a dataset."""
        return next(v.file for v in self.files if v.dataset == dataset and v.accepted)

    def problems(self) -> list[str]:
        """Every file rejected and every dataset missing, one line each."""
        lines = [v.describe() for v in self.files if not v.accepted]
        lines += [f"MISSING {name}.csv (or {name}.csv.gz)" for name in self.missing]
        return lines


def validate_folder(folder: Path) -> BatchVerdict:
    """Check every file of a local batch folder, as the upload gate does for `raw/<batch_id>/`."""
    verdicts: list[FileVerdict] = []
    seen: set[str] = set()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        verdict = validate_file(path)
        if verdict.accepted and verdict.dataset in seen:
            verdict = verdict.rejected_as("duplicate_dataset", f"the batch already has a file for {verdict.dataset}")
        elif verdict.accepted and verdict.dataset:
            seen.add(verdict.dataset)
        verdicts.append(replace(verdict, file=str(path)))
    present = {v.dataset for v in verdicts if v.dataset}
    missing = tuple(name for name in DATASETS if name not in present)
    return BatchVerdict(tuple(verdicts), missing)
