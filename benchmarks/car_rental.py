"""Benchmark: `rental-analytics run car-rental` against the DuckDB reference on the same generated batch.

Each side runs as its own process; peak memory is the largest sum of resident memory over that process
and its children (the JVM is a child of the Python driver), sampled every 0.2 s.
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
    """Wall seconds and peak resident bytes of a command and its children."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_rss(process.pid))
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {process.returncode}")
    return elapsed, peak


def main() -> None:
    """Generate (or reuse) a batch, time both sides, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rentals", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("bench-output"))
    args = parser.parse_args()
    batch = args.workdir / f"batch-{args.rentals}"
    if not (batch / "rental_transactions.csv").exists():
        subprocess.run(
            [sys.executable, "-m", "rental_analytics.cli", "generate", "car-rental", "--output", str(batch),
             "--rentals", str(args.rentals)],
            check=True,
        )  # fmt: skip
    out = args.workdir / f"out-{args.rentals}"
    shutil.rmtree(out, ignore_errors=True)
    spark_seconds, spark_peak = measure(
        [sys.executable, "-m", "rental_analytics.cli", "run", "car-rental", "--input", str(batch),
         "--output", str(out), "--batch-id", "bench"]
    )  # fmt: skip
    reference_seconds, reference_peak = measure(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from benchmarks.duckdb_reference import reference_tables; "
         "reference_tables(Path(sys.argv[1]), Path(sys.argv[2]))", str(batch), str(args.workdir / "reference")]
    )  # fmt: skip
    result = {
        "rentals": args.rentals,
        "input_mb": round(sum(p.stat().st_size for p in batch.iterdir()) / 1e6, 1),
        "spark_seconds": round(spark_seconds, 1),
        "spark_rows_per_second": round(args.rentals / spark_seconds),
        "spark_peak_gib": round(spark_peak / 2**30, 2),
        "duckdb_seconds": round(reference_seconds, 1),
        "duckdb_rows_per_second": round(args.rentals / reference_seconds),
        "duckdb_peak_gib": round(reference_peak / 2**30, 2),
        "ratio_to_duckdb": round(spark_seconds / reference_seconds, 2),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
    }
    print(json.dumps(result, indent=2))
    (args.workdir / f"result-{args.rentals}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
