"""Benchmark: `rental-analytics run car-rental` beside a DuckDB reference and a plain PySpark job, same batch.

Each runs as its own process, one after another; peak memory is the largest sum of resident memory over
that process and its children (the JVM is a child of the Python driver), sampled every 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss(root: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * PAGE
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


def measure(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak resident bytes of a command and its children.

    A peak counts only when two samples in a row reach it. When the JVM starts a process (Hadoop runs
    `chmod` for local files), the child shares the JVM's memory until it has started the new program and
    shows the JVM's whole resident size: caught in one sample, it would count the JVM twice.
    """
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = previous = 0
    while process.poll() is None:
        current = _tree_rss(process.pid)
        peak = max(peak, min(previous, current))
        previous = current
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {process.returncode}")
    return elapsed, peak


def _side_by_side(rentals: int, workdir: Path) -> dict[str, object]:
    """Generate (or reuse) a batch of `rentals` and time the three implementations on it, one after another."""
    batch = workdir / f"batch-{rentals}"
    if not (batch / "rental_transactions.csv").exists():
        subprocess.run(
            [sys.executable, "-m", "rental_analytics.cli", "generate", "car-rental", "--output", str(batch),
             "--rentals", str(rentals)],
            check=True,
        )  # fmt: skip
    outputs = {name: workdir / f"{name}-{rentals}" for name in ("spark", "plain", "reference")}
    for folder in outputs.values():
        shutil.rmtree(folder, ignore_errors=True)
    reference_seconds, reference_peak = measure(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from benchmarks.duckdb_reference import reference_tables; "
         "reference_tables(Path(sys.argv[1]), Path(sys.argv[2]))", str(batch), str(outputs["reference"])]
    )  # fmt: skip
    plain_seconds, plain_peak = measure(
        [sys.executable, "-m", "benchmarks.plain_pyspark", "--input", str(batch), "--output", str(outputs["plain"])]
    )
    spark_seconds, spark_peak = measure(
        [sys.executable, "-m", "rental_analytics.cli", "run", "car-rental", "--input", str(batch),
         "--output", str(outputs["spark"]), "--batch-id", "bench"]
    )  # fmt: skip
    return {
        "rentals": rentals,
        "input_mb": round(sum(p.stat().st_size for p in batch.iterdir()) / 1e6, 1),
        "duckdb_seconds": round(reference_seconds, 1),
        "duckdb_peak_gib": round(reference_peak / 2**30, 2),
        "plain_pyspark_seconds": round(plain_seconds, 1),
        "plain_pyspark_peak_gib": round(plain_peak / 2**30, 2),
        "run_seconds": round(spark_seconds, 1),
        "run_rows_per_second": round(rentals / spark_seconds),
        "run_peak_gib": round(spark_peak / 2**30, 2),
        "run_to_duckdb": round(spark_seconds / reference_seconds, 2),
        "run_to_plain_pyspark": round(spark_seconds / plain_seconds, 2),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
    }


def main() -> None:
    """Time the DuckDB reference, the plain PySpark job and `run car-rental` on each batch size; print and save."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rentals", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--workdir", type=Path, default=Path("bench-output"))
    args = parser.parse_args()
    for rentals in args.rentals:
        result = _side_by_side(rentals, args.workdir)
        print(json.dumps(result, indent=2), flush=True)
        (args.workdir / f"result-{rentals}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
