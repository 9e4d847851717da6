"""Whole-file checks of the upload gate: a file is accepted or rejected before any row is processed."""

from __future__ import annotations

import codecs
import csv
import io
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO

from rental_analytics.contract import DATASETS, Dataset, dataset_for_file_name, map_header

CHUNK_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
MAX_EXAMPLES = 5


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
    has_data_rows: bool = False

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form, used for the quarantine report and `validate --json`."""
        data = asdict(self)
        data["examples"] = list(self.examples)
        data["warnings"] = list(self.warnings)
        return data

    def describe(self) -> str:
        """One line for a terminal."""
        if self.accepted:
            extra = f" ({'; '.join(self.warnings)})" if self.warnings else ""
            return f"ACCEPTED {self.file}: {self.lines} lines{extra}"
        where = f" (line {self.line})" if self.line else ""
        return f"REJECTED {self.file}{where}: {self.reason}"


class _Rejection(Exception):
    def __init__(self, code: str, reason: str, line: int | None = None, **extra: object) -> None:
        super().__init__(reason)
        self.code, self.reason, self.line, self.extra = code, reason, line, extra


@dataclass
class _Scan:
    """What the byte-level pass has seen so far."""

    bytes_read: int = 0
    newlines: int = 0
    header_text: str = ""
    header_done: bool = False
    data_after_header: bool = False
    last_byte: bytes = b""
    decoder: codecs.IncrementalDecoder = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")())


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


def _decode(scan: _Scan, chunk: bytes) -> str:
    if b"\x00" in chunk:
        line = scan.newlines + chunk.count(b"\n", 0, chunk.index(b"\x00")) + 1
        raise _Rejection("binary", "the file holds binary data (NUL bytes), not CSV text", line)
    try:
        return scan.decoder.decode(chunk)
    except UnicodeDecodeError as error:
        line = scan.newlines + chunk.count(b"\n", 0, max(error.start, 0)) + 1
        bad = chunk[max(error.start, 0) : max(error.start, 0) + 4]
        raise _Rejection("not_utf8", f"the file is not valid UTF-8 (bytes {bad!r})", line) from error


def _header_complete(text: str) -> int:
    """The index just past the header record's line end, or -1 while quotes are still open."""
    quotes = 0
    for index, char in enumerate(text):
        if char == '"':
            quotes += 1
        elif char == "\n" and quotes % 2 == 0:
            return index + 1
    return -1


def _scan(name: str, stream: IO[bytes]) -> _Scan:
    scan = _Scan()
    for chunk in _chunks(name, stream):
        text = _decode(scan, chunk)
        scan.bytes_read += len(chunk)
        scan.newlines += chunk.count(b"\n")
        scan.last_byte = chunk[-1:]
        if not scan.header_done:
            scan.header_text += text
            end = _header_complete(scan.header_text)
            if end >= 0:
                rest = scan.header_text[end:]
                scan.header_text, scan.header_done = scan.header_text[:end], True
                scan.data_after_header = bool(rest.strip())
        elif not scan.data_after_header:
            scan.data_after_header = bool(text.strip())
    try:
        scan.decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        raise _Rejection("not_utf8", "the file ends inside a UTF-8 character", scan.newlines + 1) from error
    return scan


def _check_header(dataset: Dataset, header_text: str) -> tuple[str, ...]:
    text = header_text.lstrip("\ufeff")
    if not text.strip():
        raise _Rejection("no_header", "the file has no header row", 1)
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
    return tuple(f"unknown column {name!r} is ignored" for name in mapping.unknown)


def validate_stream(name: str, stream: IO[bytes]) -> FileVerdict:
    """Check one file as a stream, never holding it whole: name, compression, encoding and header.

    Rows are not judged here: a file with some bad rows is accepted and the row rules deal with them.
    """
    file_name = name.rsplit("/", 1)[-1]
    dataset = dataset_for_file_name(file_name)
    if dataset is None:
        known = ", ".join(f"{d}.csv" for d in DATASETS)
        return FileVerdict(name, None, False, "unknown_dataset", f"{file_name!r} is not one of the datasets ({known})")
    scan = _Scan()
    try:
        scan = _scan(file_name, stream)
        if scan.bytes_read == 0 or not scan.header_text.lstrip("\ufeff").strip():
            raise _Rejection("empty", "the file is empty", 1)
        if not scan.header_done:
            scan.header_text += "\n"
        warnings = _check_header(dataset, scan.header_text)
    except _Rejection as rejection:
        return FileVerdict(
            name,
            dataset.name,
            False,
            rejection.code,
            rejection.reason,
            rejection.line,
            column=rejection.extra.get("column"),  # type: ignore[arg-type]
            examples=rejection.extra.get("examples", ()),  # type: ignore[arg-type]
            bytes_read=scan.bytes_read,
            lines=scan.newlines,
        )
    lines = scan.newlines + (1 if scan.last_byte not in (b"\n", b"") else 0)
    if not scan.data_after_header:
        warnings += ("the file has a header but no data rows",)
    return FileVerdict(
        name,
        dataset.name,
        True,
        warnings=warnings,
        bytes_read=scan.bytes_read,
        lines=lines,
        has_data_rows=scan.data_after_header,
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
            verdict = FileVerdict(
                str(path),
                verdict.dataset,
                False,
                "duplicate_dataset",
                f"the batch already has a file for {verdict.dataset}",
            )
        elif verdict.accepted and verdict.dataset:
            seen.add(verdict.dataset)
        verdicts.append(replace(verdict, file=str(path)))
    present = {v.dataset for v in verdicts if v.dataset}
    missing = tuple(name for name in DATASETS if name not in present)
    return BatchVerdict(tuple(verdicts), missing)
