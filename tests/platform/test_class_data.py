"""The kept class-data archive: written by one JVM, checked, then used by the next; never a broken one."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from rental_analytics.platform import class_data

pytestmark = pytest.mark.skipif(class_data.java_executable() is None, reason="needs a java on PATH")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv(class_data.CACHE_ENV, str(cache))
    return cache


def _ended_process() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _archive_name() -> str:
    java = class_data.java_executable()
    assert java is not None
    return class_data._archive_name(java)


def _write_archive(path: Path, age_seconds: float = class_data.SETTLE_SECONDS + 1) -> None:
    """What a JVM leaves when it exits with -XX:ArchiveClassesAtExit, written `age_seconds` ago."""
    java = class_data.java_executable()
    subprocess.run([str(java), f"-XX:ArchiveClassesAtExit={path}", "-version"], check=True, capture_output=True)
    _age(path, age_seconds)


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_the_first_jvm_writes_an_archive_under_its_own_name(folder: Path):
    options = class_data.java_options()

    assert options == f"-XX:ArchiveClassesAtExit={folder / _archive_name()}.{os.getpid()} {class_data.QUIET}"
    assert folder.is_dir() and not list(folder.iterdir())


def test_an_archive_a_finished_jvm_wrote_is_used_by_the_next(folder: Path):
    folder.mkdir()
    _write_archive(folder / f"{_archive_name()}.{_ended_process()}")

    options = class_data.java_options()

    assert options == f"-XX:SharedArchiveFile={folder / _archive_name()} {class_data.QUIET}"
    assert [p.name for p in folder.iterdir()] == [_archive_name()]
    java = class_data.java_executable()
    assert subprocess.run([str(java), *options.split(), "-version"], capture_output=True).returncode == 0


def test_a_truncated_archive_is_deleted_and_never_used(folder: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(folder.parent)
    # A JVM killed while it writes leaves such a file; mapping it would crash every later JVM.
    folder.mkdir()
    whole = folder.parent / "whole.jsa"
    _write_archive(whole)
    truncated = folder / f"{_archive_name()}.{_ended_process()}"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    _age(truncated, class_data.SETTLE_SECONDS + 1)

    options = class_data.java_options()

    assert options.startswith("-XX:ArchiveClassesAtExit=")
    assert not truncated.exists() and not (folder / _archive_name()).exists()
    assert not list(folder.parent.glob("hs_err_pid*"))  # the crash it took to find out leaves no report behind


def test_an_archive_still_being_written_is_left_alone(folder: Path):
    folder.mkdir()
    by_a_live_process = folder / f"{_archive_name()}.{os.getppid()}"
    by_a_live_process.write_bytes(b"half written")
    _age(by_a_live_process, class_data.SETTLE_SECONDS + 1)
    # Its Python process has ended, but the JVM writes the archive as it exits, a moment later.
    just_changed = folder / f"{_archive_name()}.{_ended_process()}"
    just_changed.write_bytes(b"half written")

    assert class_data.java_options().startswith("-XX:ArchiveClassesAtExit=")
    assert by_a_live_process.read_bytes() == just_changed.read_bytes() == b"half written"


def test_archives_of_other_installs_go_once_unused_for_a_month(folder: Path):
    folder.mkdir()
    stale, in_use = folder / "spark-0000000000000000.jsa", folder / "spark-1111111111111111.jsa"
    stale.write_bytes(b"an archive of an install gone since")
    _age(stale, class_data.UNUSED_DAYS * 86400 + 60)
    in_use.write_bytes(b"an archive of another checkout, used last week")
    _age(in_use, 7 * 86400)

    class_data.java_options()

    assert (stale.exists(), in_use.exists()) == (False, True)


def test_using_an_archive_marks_it_in_use(folder: Path):
    folder.mkdir()
    _write_archive(folder / _archive_name(), age_seconds=class_data.UNUSED_DAYS * 86400)

    class_data.java_options()

    assert time.time() - (folder / _archive_name()).stat().st_mtime < 60


@pytest.mark.parametrize("setting", ["off", "/tmp/a folder with spaces"])
def test_no_archive_when_turned_off_or_the_path_cannot_be_passed(monkeypatch: pytest.MonkeyPatch, setting: str):
    monkeypatch.setenv(class_data.CACHE_ENV, setting)

    assert class_data.java_options() == ""


def test_no_archive_for_a_spark_set_up_with_its_own_folders(folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path):
    # Spark puts SPARK_CONF_DIR on the class path, and a JVM with a folder there fails as it writes an archive.
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))

    assert class_data.java_options() == ""


_SPARK_RUN = """
from rental_analytics.platform.spark_session import local_session
spark = local_session("class-data-test")
print(spark.sparkContext.getConf().get("spark.driver.extraJavaOptions"))
print(spark.range(10).selectExpr("sum(id)").first()[0])
"""


@pytest.mark.spark
def test_a_spark_run_leaves_the_archive_the_next_run_starts_from(folder: Path):
    env = {k: v for k, v in os.environ.items() if k not in class_data.CLASS_PATH_ENV}
    env[class_data.CACHE_ENV] = str(folder)

    def spark_run() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", _SPARK_RUN], env=env, capture_output=True, text=True, timeout=300, check=True
        )
        return done.stdout.splitlines()

    first = spark_run()
    assert "-XX:ArchiveClassesAtExit=" in first[0] and first[1] == "45"
    assert [p.name for p in folder.iterdir()] == [_archive_name()]  # written and in place as the run ended

    second = spark_run()
    assert f"-XX:SharedArchiveFile={folder / _archive_name()}" in second[0] and second[1] == "45"


class _JvmStillWriting:
    """A JVM process handle whose wait is cut short by a second Ctrl-C."""

    def __init__(self) -> None:
        self.stdin = io.BytesIO()
        self.returncode = None

    def wait(self, timeout: float) -> int:
        raise KeyboardInterrupt


def test_ctrl_c_while_the_archive_is_written_leaves_at_once(folder: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    from pyspark import SparkContext

    folder.mkdir()
    candidate = folder / f"{_archive_name()}.{os.getpid()}"
    monkeypatch.setattr(SparkContext, "_gateway", types.SimpleNamespace(proc=_JvmStillWriting()))
    monkeypatch.setattr(SparkContext, "_active_spark_context", None)

    class_data._finish_archive(candidate, folder / _archive_name())  # raises nothing

    assert "Ctrl-C" in capsys.readouterr().err  # the wait was announced, and how to skip it
    assert not (folder / _archive_name()).exists()  # the JVM finishes on its own; a later run takes it up


def test_an_archive_this_user_cannot_touch_is_still_used(folder: Path, monkeypatch: pytest.MonkeyPatch):
    # A cache folder shared with another user: their archive can be read, not marked in use.
    folder.mkdir()
    _write_archive(folder / _archive_name())

    def refused(*_: object) -> None:
        raise PermissionError("not the owner")

    monkeypatch.setattr(class_data.os, "utime", refused)

    assert class_data.java_options() == f"-XX:SharedArchiveFile={folder / _archive_name()} {class_data.QUIET}"
