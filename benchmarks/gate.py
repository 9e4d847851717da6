"""Benchmark: the upload gate's throughput and peak memory on one core, against a plain pyarrow read.

A generated `rental_transactions.csv` is repeated until it reaches the requested size (the gate does not
look across rows, so repeated rows cost it the same as new ones). Each measurement runs in its own process,
pinned to one CPU, and reports its peak resident memory (ru_maxrss).

`--shape` builds instead a file of one row repeated, in the shapes that cost the gate the most per byte
(`WORST_SHAPES`); only the gate is timed on them, as pyarrow's plain read refuses rows of another width.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rental_analytics.car_rental.gate import rows as row_checks
from rental_analytics.car_rental.generate import GeneratorOptions, generate_car_rental

MIB = 1 << 20
# Rows under the rentals' header that cost the gate the most per byte, each for its own reason.
WORST_SHAPES = {
    # pyarrow hands each row of another width to a Python handler, one at a time
    "short": b"x\n",
    "long": b"R1,U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,1,extra\n",
    # a quoted line break ends the quote scan's fast path for its row
    "quoted_line_break": b'"R\n1",U1,V1,2024-06-01 08:00,2024-06-01 09:00,L1,,1\n',
    "quoted_line_breaks_only": b'"\n","\n","\n","\n","\n","\n","\n","\n"\n',
    # every field quoted: the quote scan's run of short quoted fields
    "all_quoted": b'"R1","U1","V1","2024-06-01 08:00","2024-06-01 09:00","L1","","1"\n',
    # the same with a tab inside quotes: every chunk holds a control character, so the scan looks where each is
    "all_quoted_tabs": b'"R\t1","U1","V1","2024-06-01 08:00","2024-06-01 09:00","L1","","1"\n',
    # the shortest rows of the right width: the per-row costs (id hashes, rule kernels) weigh the most
    "blank": b",,,,,,,\n",
}


def build_file(folder: Path, size_bytes: int, bad_share: float) -> Path:
    """A rental_transactions.csv of at least `size_bytes`, made from one generated body repeated."""
    seed_folder = folder / "seed"
    generate_car_rental(seed_folder, GeneratorOptions(rentals=200_000, bad_share=bad_share))
    header, body = (seed_folder / "rental_transactions.csv").read_bytes().split(b"\n", 1)
    target = folder / "rental_transactions.csv"
    with target.open("wb") as out:
        out.write(header + b"\n")
        written = len(header) + 1
        while written < size_bytes:
            out.write(body)
            written += len(body)
    return target


def build_shape(folder: Path, size_bytes: int, shape: str) -> Path:
    """A rental_transactions.csv of at least `size_bytes`: the contract's header, then one row repeated."""
    from rental_analytics.car_rental.contract import RENTAL_TRANSACTIONS

    header = ",".join(RENTAL_TRANSACTIONS.columns).encode() + b"\n"
    row = WORST_SHAPES[shape]
    target = folder / "rental_transactions.csv"
    folder.mkdir(parents=True, exist_ok=True)
    target.write_bytes(header + row * max(1, (size_bytes - len(header)) // len(row)))
    return target


def _measure(kind: str, path: Path, block_mib: int | None) -> dict[str, float]:
    """Run inside the child process: one pass over the file, timed."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from rental_analytics.car_rental.gate import rows as row_checks

    if block_mib:
        row_checks.BLOCK_BYTES = block_mib * MIB
    started, cpu_started = time.perf_counter(), time.process_time()
    if kind == "gate":
        from rental_analytics.car_rental.gate.files import validate_file

        verdict = validate_file(path)
        assert verdict.accepted, verdict.reason
        rows = verdict.rows
        if verdict.row_issues:
            print(f"row issues: {verdict.row_issues}", file=sys.stderr)
    else:
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        columns = path.open().readline().strip().split(",")
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(use_threads=False, block_size=row_checks.BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(columns, pa.string())),
        )
        rows = sum(batch.num_rows for batch in reader)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": rows, "peak_bytes": peak}


def _run_child(kind: str, path: Path, block_mib: int | None) -> dict[str, float]:
    block = ["--block-mib", str(block_mib)] if block_mib else []
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.gate", "--child", kind, str(path), *block],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(output))


def main(argv: list[str] | None = None) -> int:
    """Build the file, then time the plain read and the gate, each in a fresh process."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB (default 1024)")
    parser.add_argument("--bad-share", type=float, default=0.02, help="share of rows broken on purpose")
    parser.add_argument("--keep", type=Path, help="build the file in this folder and keep it")
    parser.add_argument("--block-mib", type=int, help="override the reader's block size (MiB)")
    parser.add_argument("--shape", choices=sorted(WORST_SHAPES), help="one of the gate's worst shapes, gate only")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_measure(args.child[0], Path(args.child[1]), args.block_mib)))
        return 0
    with tempfile.TemporaryDirectory(dir=args.keep) as scratch:
        folder = args.keep or Path(scratch)
        if args.shape:
            path = build_shape(folder, args.size_mb * MIB, args.shape)
        else:
            path = build_file(folder, args.size_mb * MIB, args.bad_share)
        size = path.stat().st_size
        results = [] if args.shape else [("plain pyarrow read", _run_child("plain", path, args.block_mib))]
        gate = _run_child("gate", path, args.block_mib)
        results.append(("upload gate", gate))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, one core used")
    block = args.block_mib or row_checks.BLOCK_BYTES // MIB
    shape = f"shape {args.shape}, " if args.shape else ""
    print(f"file: {shape}{size / MIB:,.1f} MiB, {gate['rows']:,} rows; reader block {block} MiB")
    for name, result in results:
        rate = size / MIB / result["seconds"]
        peak = result["peak_bytes"] / MIB
        per_row = result["seconds"] / result["rows"] * 1e6
        print(
            f"{name:>20}: {result['seconds']:6.1f} s  {rate:7.2f} MiB/s  {per_row:6.2f} µs/row  peak {peak:6.0f} MiB"
            f"  CPU {result['cpu_seconds']:.1f} s"  # on a shared machine, contention shows in the wall time only
        )
    if not args.shape:
        print(f"gate time / plain read time: {gate['seconds'] / results[0][1]['seconds']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
