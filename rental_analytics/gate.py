"""The upload gate on one file: name, compression, encoding and header decide; bad rows are counted."""

from __future__ import annotations

import codecs
import csv
import io
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import IO, Any

from rental_analytics.contract import DATASETS, Dataset, HeaderMapping, dataset_for_file_name, map_header
from rental_analytics.row_checks import RowTally, UnreadableRows, tally_rows

CHUNK_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
MAX_EXAMPLES = 5
MAX_HEADER_CHARS = 1 << 20


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


def _gunzip(compressed: Iterator[bytes]) -> Iterator[bytes]:
    """Inflate gzip data chunk by chunk, member after member, noticing when it stops short."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        for chunk in compressed:
            while chunk:
                yield inflater.decompress(chunk, CHUNK_BYTES)
                while inflater.unconsumed_tail:
                    yield inflater.decompress(inflater.unconsumed_tail, CHUNK_BYTES)
                chunk = inflater.unused_data
                if inflater.eof and chunk:
                    inflater = zlib.decompressobj(wbits=31)  # the next member of a multi-member file
    except zlib.error as error:
        raise _Rejection("damaged_gzip", f"the gzip data is damaged ({error})") from error
    if not inflater.eof:
        raise _Rejection("truncated_gzip", "the gzip data is cut short: the file was not uploaded whole")


def _chunks(name: str, stream: IO[bytes]) -> Iterator[bytes]:
    head = stream.read(4)
    is_gzip = head.startswith(GZIP_MAGIC)
    if name.endswith(".gz") and not is_gzip:
        if head.startswith(ZIP_MAGIC):
            raise _Rejection("not_gzip", "the file is a zip archive, not gzip: send .csv or .csv.gz", 1)
        raise _Rejection("not_gzip", "the file is named .gz but is not gzip-compressed", 1)
    if is_gzip and not name.endswith(".gz"):
        raise _Rejection("compressed_but_named_csv", "the file is gzip-compressed: name it .csv.gz", 1)
    raw = _raw_chunks(head, stream)
    yield from (chunk for chunk in (_gunzip(raw) if is_gzip else raw) if chunk)


class _CheckedBytes(io.RawIOBase):
    """The file's (decompressed) bytes as a stream, checked for NUL bytes and UTF-8 as they pass.

    The header is read first, through `next_chunk`; `replay` then hands those bytes back so that the row
    reader sees the whole file from its first byte, while memory holds one chunk and one header at most.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._pending = memoryview(b"")
        self._replayed: list[bytes] = []
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
        if b"\x00" in chunk:
            line = self.newlines + chunk.count(b"\n", 0, chunk.index(b"\x00")) + 1
            raise _Rejection("binary", "the file holds binary data (NUL bytes), not CSV text", line)
        try:
            self._decoder.decode(chunk)
        except UnicodeDecodeError as error:
            start = max(error.start, 0)
            line = self.newlines + chunk.count(b"\n", 0, start) + 1
            bad = chunk[start : start + 4]
            raise _Rejection("not_utf8", f"the file is not valid UTF-8 (bytes {bad!r})", line) from error
        self.bytes_read += len(chunk)
        self.newlines += chunk.count(b"\n")
        self.last_byte = chunk[-1:]
        return chunk

    def _finish(self) -> None:
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            raise _Rejection("not_utf8", "the file ends inside a UTF-8 character", self.newlines + 1) from error

    def replay(self, chunks: list[bytes]) -> None:
        """Serve these already-checked chunks again before reading on."""
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
    text = ""
    in_quotes = False
    while (chunk := source.next_chunk()) is not None:
        chunks.append(chunk)
        scanned = len(text)
        text += chunk.decode("utf-8", errors="ignore")  # a character split across chunks is whole later
        for index in range(scanned, len(text)):
            char = text[index]
            if char == '"':
                in_quotes = not in_quotes
            elif char == "\n" and not in_quotes:
                return text[: index + 1], chunks
        if len(text) > MAX_HEADER_CHARS:
            raise _Rejection(
                "header_too_long",
                f"the header row is longer than {MAX_HEADER_CHARS >> 10} KiB: is a quote in it left open?",
                1,
            )
    return text + "\n", chunks


def _check_header(dataset: Dataset, header_text: str) -> tuple[list[str], HeaderMapping, tuple[str, ...]]:
    text = header_text.lstrip("\ufeff")
    if not text.strip():
        raise _Rejection("empty", "the file is empty", 1)
    header = next(csv.reader(io.StringIO(text)))
    mapping = map_header(dataset, header)
    if mapping.repeated:
        raise _Rejection(
            "repeated_column",
            f"column {mapping.repeated[0]!r} appears more than once in the header",
            1,
            column=mapping.repeated[0],
        )
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
            examples=tuple(h.strip() for h in header[:MAX_EXAMPLES]),
        )
    return header, mapping, tuple(f"unknown column {name!r} is ignored" for name in mapping.unknown)


def _row_warnings(tally: RowTally) -> tuple[str, ...]:
    if not tally.rows:
        return ("the file has a header but no data rows",)
    if not tally.issues:
        return ()
    counts = ", ".join(f"{reason} {count:,}" for reason, count in sorted(tally.issues.items()))
    return (f"{sum(tally.issues.values()):,} of {tally.rows:,} rows break a row rule ({counts})",)


def validate_stream(name: str, stream: IO[bytes]) -> FileVerdict:
    """Check one file as a stream, never holding it whole: name, compression, encoding, header and rows.

    A file with some bad rows is accepted, with their counts: the Spark job's row rules deal with them.
    """
    file_name = name.rsplit("/", 1)[-1]
    dataset = dataset_for_file_name(file_name)
    if dataset is None:
        known = ", ".join(f"{d}.csv" for d in DATASETS)
        return FileVerdict(name, None, False, "unknown_dataset", f"{file_name!r} is not one of the datasets ({known})")
    source = _CheckedBytes(iter(()))
    try:
        source = _CheckedBytes(_chunks(file_name, stream))
        header_text, header_chunks = _read_header(source)
        header, mapping, warnings = _check_header(dataset, header_text)
        source.replay(header_chunks)
        tally = tally_rows(source, dataset, header, mapping.positions)
    except UnreadableRows as unreadable:
        return _rejected(name, dataset, source, _Rejection("unreadable_rows", unreadable.reason, unreadable.line))
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
        """A batch is complete and accepted when all four datasets are present and every file passes."""
        return not self.missing and all(v.accepted for v in self.files)

    def path_of(self, dataset: str) -> str:
        """The accepted file that carries a dataset."""
        return next(v.file for v in self.files if v.dataset == dataset and v.accepted)

    def problems(self) -> list[str]:
        """Every reason the batch cannot run, one line each."""
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
