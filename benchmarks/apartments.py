"""Benchmark: the apartments jobs (extract over JDBC, data quality, SCD2 model) on N bookings in MariaDB.

The source database is generated once per size (database `ra_bench_<N>` on the given server) and reused.
The jobs run in one child process with a local Spark session; peak memory is that process tree's, JVM
included, sampled as in the car-rental benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import date
from pathlib import Path

from benchmarks.car_rental import measure

LOAD_DATE = date(2024, 6, 2)


def _jobs(server: str, database: str, root: str, partitions: int, result: Path) -> None:
    """Inside the child: time each job and write the figures as JSON."""
    from rental_analytics.apartments import jobs
    from rental_analytics.apartments.db_url import DatabaseUrl
    from rental_analytics.platform.spark_session import local_session

    source = DatabaseUrl.parse(server).with_database(database)
    spark = local_session("apartments-benchmark")
    zones = jobs.Zones(root)
    seconds: dict[str, float] = {}
    started = time.monotonic()
    extracted = jobs.run_extract(spark, source, zones, LOAD_DATE, partitions=partitions)
    seconds["extract"] = time.monotonic() - started
    started = time.monotonic()
    outcome = jobs.run_quality(spark, zones, LOAD_DATE, "bench")
    seconds["quality"] = time.monotonic() - started
    started = time.monotonic()
    modelled = jobs.run_transform(spark, zones, LOAD_DATE)
    seconds["transform"] = time.monotonic() - started
    figures = {"seconds": seconds, "rows": extracted.rows, "passed": outcome.passed, "model": modelled}
    result.write_text(json.dumps(figures))


def _generate(server: str, database: str, bookings: int) -> float:
    import pymysql

    from rental_analytics.apartments.db_url import DatabaseUrl
    from rental_analytics.apartments.generate import MarketplaceOptions, generate_marketplace

    url = DatabaseUrl.parse(server)
    connection = pymysql.connect(host=url.host, port=url.port, user=url.user, password=url.password)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    connection.close()
    started = time.monotonic()
    options = MarketplaceOptions(apartments=bookings // 10, bookings=bookings, viewings=bookings)
    generate_marketplace(url.with_database(database), options)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    """Generate the source when needed, run the jobs in a child process, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bookings", type=int, default=1_000_000)
    parser.add_argument("--server", default="mysql://root@127.0.0.1:3306/test", help="any database on the server")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=Path("bench-output"))
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _jobs(args.server, args.child[0], args.child[1], int(args.child[2]), Path(args.child[3]))
        return 0
    database = f"ra_bench_{args.bookings}"
    stamp = args.workdir / f"{database}.generated"
    generate_seconds = None
    if args.regenerate or not stamp.exists():
        generate_seconds = round(_generate(args.server, database, args.bookings), 1)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(str(generate_seconds))
    root = args.workdir / f"apartments-{args.bookings}"
    shutil.rmtree(root, ignore_errors=True)
    child = [sys.executable, "-m", "benchmarks.apartments", "--server", args.server, "--child"]
    figures_path = args.workdir / f"apartments-stages-{args.bookings}.json"
    child += [database, str(root), str(args.partitions), str(figures_path)]
    total, peak = measure(child)
    figures = json.loads(figures_path.read_text())
    result = {
        "bookings": args.bookings,
        "generate_seconds": generate_seconds,
        "jobs_seconds_with_session_start": round(total, 1),
        "peak_gib": round(peak / 2**30, 2),
        "stage_seconds": {k: round(v, 1) for k, v in figures["seconds"].items()},
        "quality_passed": figures["passed"],
        "rows": figures["rows"],
        "model": figures["model"],
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
    }
    print(json.dumps(result, indent=2))
    (args.workdir / f"apartments-result-{args.bookings}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
