"""The embedded default: the whole car-rental pipeline on a laptop, with local folders standing in for S3."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rental_analytics.car_rental.contract import quarantine_folder
from rental_analytics.car_rental.gate.files import BatchVerdict, validate_folder
from rental_analytics.car_rental.insights import run_insights
from rental_analytics.car_rental.report import (
    Failure,
    build_summary,
    failed_outcome,
    notification_lines,
    summary_lines,
    write_reports,
)
from rental_analytics.platform.errors import Terminated
from rental_analytics.platform.progress import Progress, follow_spark
from rental_analytics.platform.run_lock import holding_run_lock
from rental_analytics.platform.text import printable

# The longest file name most file systems take, in bytes.
MAX_NAME_BYTES = 255
# Below this many bytes of input (about 200,000 rows), the JVM's optimising compiler costs more time than it
# saves (docs/benchmarks.md: the demo and 1M rentals, with and without it).
QUICK_START_BYTES = 20_000_000


@dataclass(frozen=True)
class RunResult:
    """How a local run ended and where its report is."""

    succeeded: bool
    summary: dict[str, Any]
    report_dir: Path


def quarantine_files(verdict: BatchVerdict, output_dir: Path, batch_id: str) -> None:
    """Keep each rejected file as it arrived, with a JSON report beside it, in a folder of its own.

    The folder is the one the upload gate uses (`quarantine_folder`), the file's size and time standing for
    the version S3 would give it.
    """
    for file in verdict.files:
        if file.accepted:
            continue
        source = Path(file.file)
        stat = source.stat()
        folder = output_dir / quarantine_folder(batch_id, source.name, f"{stat.st_size}:{stat.st_mtime_ns}")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / source.name)
        report = folder / _report_name(source.name)
        report.write_text(json.dumps(file.as_dict(), indent=2), encoding="utf-8")


def _report_name(name: str) -> str:
    """`<name>.report.json`; for a name too long to take the suffix, `.report.json`.

    The gate judges no hidden file, so no file kept in the quarantine is named `.report.json`.
    """
    report = f"{name}.report.json"
    return report if len(os.fsencode(report)) <= MAX_NAME_BYTES else ".report.json"


def run_car_rental(
    input_dir: Path, output_dir: Path, batch_id: str, max_reject_rate: float, progress: Progress
) -> RunResult:
    """Gate, Spark job, insight queries and report for one batch folder, one run at a time per output folder.

    A run rewrites the processed history and the analytics that every run of `output_dir` shares: a second run
    waits for the first (`platform.run_lock`), so two runs started together give the history of both.
    """
    with holding_run_lock(output_dir, f"batch {batch_id}", progress):
        return _run_car_rental(input_dir, output_dir, batch_id, max_reject_rate, progress)


class _Run:
    """What a local run has learned so far, so that however it ends its report says where it stopped."""

    def __init__(self, batch_id: str, report_dir: Path, progress: Progress) -> None:
        self.batch_id, self.report_dir, self.say = batch_id, report_dir, progress
        self.stage = "starting"
        self.files: list[dict[str, Any]] = []
        self.outcome: dict[str, Any] = {}
        self.clock = StageClock()

    def usage(self) -> dict[str, Any]:
        """The summary's `run`: the stages' times so far (a local run has no cloud cost)."""
        return self.clock.run()

    def __call__(self, message: str) -> None:
        """Report progress, and note it as the stage a failure from here on happened in."""
        self.stage = message
        self.say(message)

    def failed(self, error: BaseException) -> RunResult:
        """Write the report of a run stopped by an error in the stage it had reached."""
        name = (
            "terminated"
            if isinstance(error, Terminated)
            else "interrupted"
            if isinstance(error, KeyboardInterrupt)
            else type(error).__name__
        )
        failure = Failure.from_event({"state": self.stage, "error": name, "cause": str(error)})
        summary = build_summary(self.batch_id, failed_outcome(self.outcome, failure), {}, self.files, run=self.usage())
        summary["failed_state"] = failure.state
        return _finish(self.report_dir, summary, False)


def _run_car_rental(
    input_dir: Path, output_dir: Path, batch_id: str, max_reject_rate: float, progress: Progress
) -> RunResult:
    run = _Run(batch_id, output_dir / "reports" / batch_id, progress)
    try:
        return _run_stages(run, input_dir, output_dir, max_reject_rate)
    except BaseException as error:  # the report is written, then the error ends the command as it would have
        run.failed(error)
        raise


def _run_stages(run: _Run, input_dir: Path, output_dir: Path, max_reject_rate: float) -> RunResult:
    from rental_analytics.platform.spark_session import StartingSession

    batch_id, report_dir = run.batch_id, run.report_dir
    run(f"checking the files in {input_dir}")
    size = sum(path.stat().st_size for path in input_dir.iterdir() if path.is_file())
    # Spark's JVM starts on the other core while the gate checks the files.
    starting = StartingSession(log_dir=output_dir / "logs", quick_start=size < QUICK_START_BYTES)
    verdict = validate_folder(input_dir)
    run.files = [f.as_dict() for f in verdict.files]
    run("setting rejected files aside in the quarantine")
    quarantine_files(verdict, output_dir, batch_id)
    run.clock.done("gate")
    if not verdict.runnable:
        starting.discard()
        message = "the batch was not processed: " + "; ".join(verdict.problems())
        return _finish(report_dir, build_summary(batch_id, {"message": message}, {}, run.files, run=run.usage()), False)
    for problem in verdict.problems():  # files of no dataset, set aside
        run.say(printable(f"set aside, not part of the batch: {problem}"))

    run("starting Spark (local mode)")
    from rental_analytics.car_rental.job import BatchJob, held_to_the_gate, run_batch

    spark = starting.get()
    follow_spark(run.say, spark)
    run.clock.done("start")
    verdicts = {f.dataset: f.as_dict() for f in verdict.files if f.dataset}
    job = held_to_the_gate(BatchJob(str(input_dir), str(output_dir), batch_id, max_reject_rate), verdicts)
    run.outcome = run_batch(spark, job, run).as_dict()
    run.clock.done("Spark")
    if not run.outcome["succeeded"]:
        return _finish(report_dir, build_summary(batch_id, run.outcome, {}, run.files, run=run.usage()), False)
    run("running the insight queries (DuckDB)")
    insights = run_insights(output_dir / "analytics", report_dir / "insights")
    run.clock.done("queries")
    run("writing the report")
    return _finish(report_dir, build_summary(batch_id, run.outcome, insights, run.files, run=run.usage()), True)


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
    (report_dir / "notification.txt").write_text("\n".join(notification_lines(summary)) + "\n", encoding="utf-8")
    return RunResult(succeeded, summary, report_dir)


def print_result(result: RunResult, out: TextIO) -> None:
    """The short summary a person reads at the end of a run."""
    for line in summary_lines(result.summary):
        print(line, file=out)
    print(printable(f"Report: {(result.report_dir / 'report.html').resolve()}"), file=out)
