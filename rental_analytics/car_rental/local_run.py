"""The embedded default: the whole car-rental pipeline on a laptop, with local folders standing in for S3."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rental_analytics.car_rental.gate.files import BatchVerdict, validate_folder
from rental_analytics.car_rental.insights import run_insights
from rental_analytics.car_rental.report import build_summary, summary_lines, write_reports
from rental_analytics.platform.progress import Progress, follow_spark
from rental_analytics.platform.run_lock import holding_run_lock

# Below this many bytes of input (about 200,000 rows), the JVM's optimising compiler costs more time than it
# saves (docs/benchmarks.md: the demo and 1M rentals, with and without it).
QUICK_START_BYTES = 20_000_000


@dataclass(frozen=True)
class RunResult:
    """How a local run ended and where its report is."""

    succeeded: bool
    summary: dict[str, Any]
    report_dir: Path


def quarantine_files(verdict: BatchVerdict, quarantine_dir: Path) -> None:
    """Keep each rejected file as it arrived, with a JSON report beside it."""
    for file in verdict.files:
        if file.accepted:
            continue
        quarantine_dir.mkdir(parents=True, exist_ok=True)
        source = Path(file.file)
        shutil.copyfile(source, quarantine_dir / source.name)
        report = quarantine_dir / f"{source.name}.report.json"
        report.write_text(json.dumps(file.as_dict(), indent=2), encoding="utf-8")


def run_car_rental(
    input_dir: Path, output_dir: Path, batch_id: str, max_reject_rate: float, progress: Progress
) -> RunResult:
    """Gate, Spark job, insight queries and report for one batch folder, one run at a time per output folder.

    A run rewrites the processed history and the analytics that every run of `output_dir` shares: a second run
    waits for the first (`platform.run_lock`), so two runs started together give the history of both.
    """
    with holding_run_lock(output_dir, f"batch {batch_id}", progress):
        return _run_car_rental(input_dir, output_dir, batch_id, max_reject_rate, progress)


def _run_car_rental(
    input_dir: Path, output_dir: Path, batch_id: str, max_reject_rate: float, progress: Progress
) -> RunResult:
    from rental_analytics.platform.spark_session import StartingSession

    report_dir = output_dir / "reports" / batch_id
    clock = StageClock()
    progress(f"checking the files in {input_dir}")
    size = sum(path.stat().st_size for path in input_dir.iterdir() if path.is_file())
    # Spark's JVM starts on the other core while the gate checks the files.
    starting = StartingSession(log_dir=output_dir / "logs", quick_start=size < QUICK_START_BYTES)
    verdict = validate_folder(input_dir)
    files = [f.as_dict() for f in verdict.files]
    quarantine_files(verdict, output_dir / "quarantine" / batch_id)
    clock.done("gate")
    if not verdict.runnable:
        starting.discard()
        message = "the batch was not processed: " + "; ".join(verdict.problems())
        return _finish(report_dir, build_summary(batch_id, {"message": message}, {}, files, run=clock.run()), False)
    for problem in verdict.problems():  # files of no dataset, set aside
        progress(f"set aside, not part of the batch: {problem}")

    progress("starting Spark (local mode)")
    from rental_analytics.car_rental.job import BatchJob, held_to_the_gate, run_batch

    spark = starting.get()
    follow_spark(progress, spark)
    clock.done("start")
    verdicts = {f.dataset: f.as_dict() for f in verdict.files if f.dataset}
    job = held_to_the_gate(BatchJob(str(input_dir), str(output_dir), batch_id, max_reject_rate), verdicts)
    outcome = run_batch(spark, job, progress)
    clock.done("Spark")
    if not outcome.succeeded:
        return _finish(report_dir, build_summary(batch_id, outcome.as_dict(), {}, files, run=clock.run()), False)
    progress("running the insight queries (DuckDB)")
    insights = run_insights(output_dir / "analytics", report_dir / "insights")
    clock.done("queries")
    progress("writing the report")
    return _finish(report_dir, build_summary(batch_id, outcome.as_dict(), insights, files, run=clock.run()), True)


class StageClock:
    """The seconds of each stage of a local run, as they end (the report's own writing is not in it)."""

    def __init__(self) -> None:
        self._last = time.monotonic()
        self._stages: list[dict[str, Any]] = []

    def done(self, stage: str) -> None:
        now = time.monotonic()
        self._stages.append({"stage": stage, "seconds": round(now - self._last, 3)})
        self._last = now

    def run(self) -> dict[str, Any]:
        """The summary's `run`: a local run has stage times and no cloud cost."""
        return {"mode": "local", "stages": list(self._stages), "cost": None}


def _finish(report_dir: Path, summary: dict[str, Any], succeeded: bool) -> RunResult:
    write_reports(report_dir, summary)
    # Locally the notification that SNS sends in AWS is a file beside the report.
    (report_dir / "notification.txt").write_text("\n".join(summary_lines(summary)) + "\n", encoding="utf-8")
    return RunResult(succeeded, summary, report_dir)


def print_result(result: RunResult, out: TextIO) -> None:
    """The short summary a person reads at the end of a run."""
    for line in summary_lines(result.summary):
        print(line, file=out)
    print(f"Report: {(result.report_dir / 'report.html').resolve()}", file=out)
