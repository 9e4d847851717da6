"""A local run killed at any stage leaves the previous tables, and the next run ends with the new ones."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from rental_analytics.cli import main
from tests.repo import ROOT

pytestmark = [pytest.mark.spark, pytest.mark.e2e]

# Progress lines of `run car-rental`; the kill lands somewhere in the stage each one starts. One stage of each
# kind a kill can meet: nothing staged yet; folders staged and one being written (the quarantine, the processed
# tables and the analytics are staged the same way); the journal written and the folders being moved.
STAGES = [
    "reading the batch and applying the row rules",
    "merging rentals into the processed history",
    "publishing the new tables",
]


def _rows(folder: Path) -> list[tuple[Any, ...]]:
    table = pq.read_table(folder, partitioning="hive")
    columns = sorted(table.column_names)
    return sorted((tuple(str(row[c]) for c in columns) for row in table.to_pylist()), key=repr)


def snapshot(out: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every published table's rows, and the batch's quarantined rows."""
    folders = [*sorted((out / "processed").iterdir()), *sorted((out / "analytics").iterdir())]
    folders += sorted((out / "quarantine" / "b2" / "rows").glob("*"))
    return {str(f.relative_to(out)): _rows(f) for f in folders if f.is_dir()}


def _arguments(batch: Path, out: Path) -> list[str]:
    return ["run", "car-rental", "--input", str(batch), "--output", str(out), "--max-reject-rate", "0.05"]


def _run(batch: Path, out: Path) -> None:
    # In this process, on the tests' Spark session: only the run that is killed needs a process of its own.
    assert main(_arguments(batch, out)) == 0


@pytest.fixture(scope="module")
def world(spark, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("interruption")
    for name, seed in (("b1", 1), ("b2", 2)):
        assert main(["generate", "car-rental", "--output", str(base / name), "--rentals", "400", "--seed", str(seed),
                     "--bad-share", "0.002"]) == 0  # fmt: skip
    _run(base / "b1", base / "before")
    shutil.copytree(base / "before", base / "after")
    _run(base / "b2", base / "after")
    return {"base": base, "before": snapshot(base / "before"), "after": snapshot(base / "after")}


def _killed_in(stage: str, batch: Path, out: Path) -> None:
    """Start a run in a process of its own and kill it (SIGKILL) once it says it has begun `stage`."""
    command = [sys.executable, "-m", "rental_analytics.cli", *_arguments(batch, out)]
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert run.stderr is not None
    for line in run.stderr:
        if stage in line:
            run.kill()
            break
    run.wait(timeout=600)
    assert run.returncode == -9, f"the run ended before '{stage}'"


def test_runs_killed_in_each_stage_leave_the_old_tables_and_the_next_run_finishes(world, tmp_path: Path):
    # Each killed run starts from what the one before it left, so each also recovers from a kill; only the
    # run that is let finish uses the tests' Spark session.
    base: Path = world["base"]
    out = tmp_path / "out"
    shutil.copytree(base / "before", out)
    for stage in STAGES:
        _killed_in(stage, base / "b2", out)
        if not list((out / "tmp" / "publish").glob("*/_PUBLISH.json")):
            assert snapshot(out) == world["before"], f"a run killed in '{stage}' changed the published tables"
    _run(base / "b2", out)
    assert snapshot(out) == world["after"]
    assert list((out / "tmp" / "publish").iterdir()) == []


def test_two_runs_on_one_output_started_together_give_the_history_of_both_in_start_order(world, tmp_path: Path, capsys):
    # The second starts once the first has taken the lock (its Spark is starting): it waits, then runs on the
    # first one's tables, which gives what the two run one after the other give. The second runs in this
    # process, on the tests' Spark session: only the first needs a process of its own.
    base: Path = world["base"]
    out = tmp_path / "out"
    command = [sys.executable, "-m", "rental_analytics.cli", *_arguments(base / "b1", out)]
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert first.stderr is not None
    for line in first.stderr:
        if "starting Spark" in line:
            break
    capsys.readouterr()
    second = main(_arguments(base / "b2", out))
    second_said = capsys.readouterr().err
    first_rest = first.communicate(timeout=600)[1]

    assert (first.returncode, second) == (0, 0), first_rest + second_said
    assert snapshot(out) == world["after"]
    assert "waiting for the run of batch b1" in second_said
