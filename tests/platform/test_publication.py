"""Publishing folders in one step: the journal decides whether an interrupted publication is finished or dropped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rental_analytics.platform.publication import JOURNAL, Publication, commit, recover

pytestmark = pytest.mark.spark


def _folder(path: Path, content: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "part-0").write_text(content)


def _content(path: Path) -> str | None:
    return (path / "part-0").read_text() if (path / "part-0").exists() else None


def _staged(tmp_path: Path) -> Publication:
    _folder(tmp_path / "zone" / "a", "old a")
    _folder(tmp_path / "zone" / "gone", "old gone")
    publication = Publication(str(tmp_path / "staging" / "b1"))
    _folder(Path(publication.stage("a", str(tmp_path / "zone" / "a"))), "new a")
    _folder(Path(publication.stage("b", str(tmp_path / "zone" / "b"))), "new b")
    publication.delete(str(tmp_path / "zone" / "gone"))
    return publication


def test_a_commit_moves_every_folder_and_removes_the_staging(spark, tmp_path: Path):
    commit(spark, _staged(tmp_path))
    zone = tmp_path / "zone"
    assert (_content(zone / "a"), _content(zone / "b"), (zone / "gone").exists()) == ("new a", "new b", False)
    assert list((tmp_path / "staging").iterdir()) == []


def test_staging_without_a_journal_is_dropped_and_nothing_moves(spark, tmp_path: Path):
    _staged(tmp_path)
    said: list[str] = []
    recover(spark, str(tmp_path / "staging"), said.append)
    zone = tmp_path / "zone"
    assert (_content(zone / "a"), (zone / "b").exists(), _content(zone / "gone")) == ("old a", False, "old gone")
    assert said == ["removing the unfinished staging of b1"]
    assert list((tmp_path / "staging").iterdir()) == []


def test_a_journal_half_applied_is_finished(spark, tmp_path: Path):
    publication = _staged(tmp_path)
    journal = {"moves": publication.moves, "deletions": publication.deletions}
    (Path(publication.root) / JOURNAL).write_text(json.dumps(journal))
    # Stopped after the first move: `a` is in place, `b` still staged, `gone` still there.
    staged_a, target_a = publication.moves[0]
    Path(target_a, "part-0").write_text("new a")
    Path(staged_a, "part-0").unlink()
    Path(staged_a).rmdir()

    said: list[str] = []
    recover(spark, str(tmp_path / "staging"), said.append)
    zone = tmp_path / "zone"
    assert (_content(zone / "a"), _content(zone / "b"), (zone / "gone").exists()) == ("new a", "new b", False)
    assert said == ["finishing the interrupted publication of b1"]


def test_a_journal_cut_short_is_treated_as_no_journal(spark, tmp_path: Path):
    publication = _staged(tmp_path)
    (Path(publication.root) / JOURNAL).write_text('{"moves": [["')
    recover(spark, str(tmp_path / "staging"), lambda _: None)
    assert _content(tmp_path / "zone" / "a") == "old a"


@contextmanager
def _hadoop_working_directory(spark, folder: Path) -> Iterator[None]:
    """Resolve Hadoop's relative local paths against `folder`, as a run started there would."""
    context: Any = spark.sparkContext
    local = context._jvm.org.apache.hadoop.fs.FileSystem.getLocal(context._jsc.hadoopConfiguration())
    previous = local.getWorkingDirectory()
    local.setWorkingDirectory(context._jvm.org.apache.hadoop.fs.Path(str(folder)))
    try:
        yield
    finally:
        local.setWorkingDirectory(previous)


def test_a_journal_of_relative_paths_is_finished_from_another_working_directory(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # A local run given `--output out` and stopped after its journal, then run again from elsewhere: the journal
    # must name the folders the first run meant, not whatever `out` means in the new working directory.
    first, elsewhere = tmp_path / "first", tmp_path / "elsewhere"
    _folder(first / "out" / "zone" / "a", "old a")
    _folder(elsewhere / "out" / "zone" / "a", "another output's a")
    publication = Publication("out/staging/b1")
    _folder(first / publication.stage("a", "out/zone/a"), "new a")

    def stopped(*_: object) -> None:
        raise KeyboardInterrupt  # as if the run were stopped right after writing its journal

    monkeypatch.setattr("rental_analytics.platform.publication._apply", stopped)
    with _hadoop_working_directory(spark, first), pytest.raises(KeyboardInterrupt):
        commit(spark, publication)
    monkeypatch.undo()

    with _hadoop_working_directory(spark, elsewhere):
        recover(spark, str(first / "out" / "staging"), lambda _: None)
    assert _content(first / "out" / "zone" / "a") == "new a"
    assert _content(elsewhere / "out" / "zone" / "a") == "another output's a"
    assert list((first / "out" / "staging").iterdir()) == []


def test_a_commit_with_a_staged_folder_missing_raises_before_the_journal_and_changes_nothing(spark, tmp_path: Path):
    # Found by attack 30: the missing folder was taken for one already moved, and the commit reported success.
    publication = _staged(tmp_path)
    publication.stage("never_built", str(tmp_path / "zone" / "c"))
    with pytest.raises(FileNotFoundError, match="never_built"):
        commit(spark, publication)
    zone = tmp_path / "zone"
    assert (_content(zone / "a"), (zone / "b").exists(), _content(zone / "gone")) == ("old a", False, "old gone")
    assert not (Path(publication.root) / JOURNAL).exists()
