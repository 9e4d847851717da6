"""Every local run, however it ends, leaves its report, its summary and its notification."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from rental_analytics.car_rental import job, local_run, report
from rental_analytics.car_rental.job import BatchOutcome
from rental_analytics.cli import main
from rental_analytics.platform import spark_session
from tests.car_rental import sample_batch
from tests.html_page import parse

pytestmark = pytest.mark.spark


class Injected(Exception):
    """The failure a test puts into one stage of the run."""


def _raise(error: BaseException):
    def fail(*_: Any, **__: Any) -> Any:
        raise error

    return fail


def _succeeded(_spark: Any, batch: job.BatchJob, _progress: Any = None) -> BatchOutcome:
    return BatchOutcome(
        batch.batch_id, True, "5 of 5 transaction rows accepted", transaction_rows=5, valid_transactions=5
    )


def _sigterm(*_: Any, **__: Any) -> Any:
    """What `timeout`, systemd or a container's stop sends: the signal arrives while the job runs."""
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # the handler raises before this ends
    raise AssertionError("SIGTERM did not end the run")


NO_SPARK = [(job, "run_batch", _succeeded), (local_run, "run_insights", lambda *_: {})]
# Each stage of a local run, how a failure is put into it, and whether the batch itself had succeeded by then.
STAGES: dict[str, tuple[list[tuple[object, str, Any]], bool]] = {
    "gate": ([(local_run, "validate_folder", _raise(Injected("gate")))], False),
    "quarantine": ([(local_run, "quarantine_files", _raise(Injected("quarantine")))], False),
    "spark_start": ([(spark_session.StartingSession, "get", _raise(Injected("spark")))], False),
    "spark_job": ([(job, "run_batch", _raise(Injected("job")))], False),
    "interrupted": ([(job, "run_batch", _raise(KeyboardInterrupt()))], False),
    "terminated": ([(job, "run_batch", _sigterm)], False),
    "publishing": ([(job, "commit", _raise(Injected("commit")))], False),  # after Spark read and wrote the batch
    "insights": ([(job, "run_batch", _succeeded), (local_run, "run_insights", _raise(Injected("insights")))], True),
    "report_page": ([*NO_SPARK, (report, "render_html", _raise(Injected("page")))], True),
    "notification": ([*NO_SPARK, (report, "summary_lines", _raise(Injected("lines")))], True),
}


@pytest.mark.parametrize("stage", STAGES)
def test_a_run_failed_at_any_stage_leaves_its_report_and_notification(
    spark, write_batch, tmp_path: Path, monkeypatch, stage: str
):
    patches, batch_succeeded = STAGES[stage]
    for target, name, replacement in patches:
        monkeypatch.setattr(target, name, replacement)
    files: dict[str, str | bytes] = {**sample_batch.files(), b"notes\xff.txt".decode("utf-8", "surrogateescape"): "x"}
    batch, out = write_batch(files, "b1"), tmp_path / "out"

    code = main(["run", "car-rental", "--input", str(batch), "--output", str(out)])

    reports = out / "reports" / "b1"
    summary = json.loads((reports / "summary.json").read_text(encoding="utf-8"))
    page = (reports / "report.html").read_text(encoding="utf-8")
    notification = (reports / "notification.txt").read_text(encoding="utf-8").splitlines()
    if stage in ("report_page", "notification"):  # the batch succeeded; only the drawing of its report failed
        assert code == 0 and summary["status"] == "succeeded"
    else:
        assert code == {"interrupted": 130, "terminated": 143}.get(stage, 1)
        assert summary["status"] == "failed"
        assert ("succeeded" in summary["message"]) is batch_succeeded  # analytics published, then a later failure
    shown = parse(page).text
    assert page.startswith("<!DOCTYPE html>") and summary["status"].upper() in shown
    assert summary["status"] == "succeeded" or summary["message"][:60] in shown  # where the run stopped
    assert notification[0].startswith(f"Batch b1: {summary['status'].upper()}.")
    assert "notes\\xff.txt" in shown or stage in ("gate", "quarantine", "report_page")
