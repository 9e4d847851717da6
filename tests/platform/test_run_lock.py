"""One run at a time per output folder: a later run waits for the earlier, and takes over from a dead one."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rental_analytics.platform import run_lock
from rental_analytics.platform.errors import StageError
from rental_analytics.platform.run_lock import LOCK_FILE, holding_run_lock
from tests.repo import ROOT

# A run in a process of its own: it holds the lock, says so in a file, and waits for a file that lets it go.
HOLDER = """
import sys, time
from pathlib import Path
from rental_analytics.platform.run_lock import holding_run_lock
root, ready, release = (Path(p) for p in sys.argv[1:4])
with holding_run_lock(root, "batch a", lambda line: print(line, flush=True)):
    ready.touch()
    while not release.exists():
        time.sleep(0.05)
"""


def _holder(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    ready, release = tmp_path / "ready", tmp_path / "release"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "out"), str(ready), str(release)], cwd=ROOT, text=True
    )
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the holder did not take the lock"
        time.sleep(0.05)
    return process, release


def test_a_later_run_waits_for_the_earlier_one_and_says_which_it_waits_for(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(run_lock, "POLL_SECONDS", 0.05)
    holder, release = _holder(tmp_path)
    said: list[str] = []

    def progress(line: str) -> None:
        said.append(line)
        if len(said) == 1:
            release.touch()  # the earlier run ends once the later one has said that it waits

    with holding_run_lock(tmp_path / "out", "batch b", progress):
        assert holder.wait(timeout=30) == 0  # the earlier run had ended before this one got the lock
    assert said[0].startswith(f"waiting for the run of batch a (process {holder.pid} on ")
    assert str(tmp_path / "out") in said[0]
    assert not any("taking over" in line for line in said)
    assert (tmp_path / "out" / LOCK_FILE).read_text() == ""  # released: no holder named


def test_a_run_killed_while_it_holds_the_lock_is_taken_over_at_once(tmp_path: Path):
    holder, _ = _holder(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    said: list[str] = []

    started = time.monotonic()
    with holding_run_lock(tmp_path / "out", "batch b", said.append):
        pass

    assert time.monotonic() - started < 5
    assert [line for line in said if "waiting" in line] == []
    [taken] = said
    assert taken.startswith(f"taking over the lock of {tmp_path / 'out'} from the run of batch a (process {holder.pid}")
    assert taken.endswith("which ended without releasing it")


def test_the_lock_names_its_holder_while_it_runs(tmp_path: Path):
    with holding_run_lock(tmp_path / "out", "batch b", lambda _: None):
        assert '"what": "batch b"' in (tmp_path / "out" / LOCK_FILE).read_text()


def test_a_file_system_without_locks_is_a_settings_error(tmp_path: Path, monkeypatch):
    def no_locks(*_: object) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(run_lock.fcntl, "flock", no_locks)
    with pytest.raises(StageError, match="cannot lock files") as raised, holding_run_lock(tmp_path, "b", print):
        pass
    assert raised.value.exit_code == 2


# A run that waits for the lock with a poll of its own, and writes its name to a log once it holds it.
WAITER = """
import sys, time
from pathlib import Path
from rental_analytics.platform import run_lock
root, name, poll, log = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), Path(sys.argv[4])
run_lock.POLL_SECONDS = poll
with run_lock.holding_run_lock(root, "batch " + name, lambda line: None):
    with log.open("a") as out:
        out.write(name + "\\n")
"""


def _queued(tmp_path: Path, count: int) -> None:
    deadline = time.monotonic() + 30
    while len([p for p in (tmp_path / "out" / run_lock.QUEUE_DIR).iterdir() if not p.name.startswith(".")]) < count:
        assert time.monotonic() < deadline, f"{count} runs did not queue"
        time.sleep(0.02)


def _waiter(tmp_path: Path, name: str, poll: float) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", WAITER, str(tmp_path / "out"), name, str(poll), str(tmp_path / "log")]
    return subprocess.Popen(command, cwd=ROOT, text=True)


def test_waiting_runs_take_the_lock_in_the_order_they_started(tmp_path: Path):
    # The earlier waiter polls slowly and the later one fast: without the queue the later one would win.
    holder, release = _holder(tmp_path)
    earlier = _waiter(tmp_path, "b", 1.0)
    _queued(tmp_path, 1)
    later = _waiter(tmp_path, "c", 0.01)
    _queued(tmp_path, 2)
    release.touch()
    assert [p.wait(timeout=30) for p in (holder, earlier, later)] == [0, 0, 0]
    assert (tmp_path / "log").read_text().split() == ["b", "c"]
    assert [p.name for p in (tmp_path / "out" / run_lock.QUEUE_DIR).iterdir()] == []


def test_a_waiting_run_that_is_killed_leaves_no_place_in_the_queue(tmp_path: Path):
    holder, release = _holder(tmp_path)
    killed = _waiter(tmp_path, "b", 0.05)
    _queued(tmp_path, 1)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    release.touch()
    assert holder.wait(timeout=30) == 0
    with holding_run_lock(tmp_path / "out", "batch c", lambda _: None):
        pass
    assert [p.name for p in (tmp_path / "out" / run_lock.QUEUE_DIR).iterdir()] == []


def test_a_lock_file_that_is_a_link_is_refused_and_its_target_left_alone(tmp_path: Path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / LOCK_FILE).symlink_to(target)
    with pytest.raises(StageError, match="is a symbolic link"), holding_run_lock(tmp_path / "out", "b", print):
        pass
    assert target.read_text() == "keep me"


def test_a_run_queued_behind_a_stopped_waiter_names_the_run_it_waits_for(tmp_path: Path, monkeypatch):
    # The holder ends while an earlier waiter is stopped (Ctrl-Z): the lock is free, and the queue keeps order.
    monkeypatch.setattr(run_lock, "POLL_SECONDS", 0.05)
    holder, release = _holder(tmp_path)
    stopped = _waiter(tmp_path, "b", 0.05)
    _queued(tmp_path, 1)
    stopped.send_signal(signal.SIGSTOP)
    release.touch()
    assert holder.wait(timeout=30) == 0
    said: list[str] = []

    def progress(line: str) -> None:
        said.append(line)
        stopped.send_signal(signal.SIGCONT)

    with holding_run_lock(tmp_path / "out", "batch c", progress):
        assert stopped.wait(timeout=30) == 0  # it went first
    assert said[0].startswith(f"waiting for the run of batch b (process {stopped.pid} on ")
    assert "queued before this one" in said[0]
    assert (tmp_path / "log").read_text().split() == ["b"]


def test_a_run_that_holds_the_lock_may_hold_it_again_however_the_root_is_spelled(tmp_path: Path):
    (tmp_path / "out").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "out")
    with holding_run_lock(tmp_path / "out", "demo", print):
        with holding_run_lock(tmp_path / "link", "batch demo", print):
            assert "demo" in (tmp_path / "out" / LOCK_FILE).read_text()
        assert "demo" in (tmp_path / "out" / LOCK_FILE).read_text()  # the inner hold did not release it
    assert (tmp_path / "out" / LOCK_FILE).read_text() == ""


def test_a_demo_writes_its_sample_batch_only_once_it_holds_the_lock(tmp_path: Path, monkeypatch):
    # Another demo on the same --output would otherwise rewrite the batch the running one is reading.
    from rental_analytics.car_rental import cli as car_rental_cli
    from rental_analytics.cli import main

    monkeypatch.setattr(run_lock, "POLL_SECONDS", 0.05)
    holder, release = _holder(tmp_path)
    batch = tmp_path / "out" / "incoming" / "demo-batch"
    written_while_held: list[bool] = []

    def progress_of_the_wait(_: str) -> None:
        written_while_held.append(batch.exists())
        release.touch()

    monkeypatch.setattr(car_rental_cli, "_run_batch", lambda *args: 0)  # the run itself is tested elsewhere
    monkeypatch.setattr(car_rental_cli, "holding_run_lock", _with_progress(progress_of_the_wait), raising=False)
    assert main(["demo", "--rentals", "20", "--output", str(tmp_path / "out")]) == 0
    release.touch()
    assert holder.wait(timeout=30) == 0
    assert written_while_held == [False]
    assert (batch / "rental_transactions.csv").is_file()


def _with_progress(progress: Callable[[str], None]) -> Callable[..., Any]:
    """The run lock, saying what it waits for to `progress` whatever progress the caller gives."""

    def holding(root: Path, what: str, _: object) -> Any:
        return holding_run_lock(root, what, progress)

    return holding


# A run that starts a helper process (as a local run starts Spark's JVM), names it in the lock, and is then
# killed: the helper lives on a moment, as the JVM does after its parent.
HOLDER_WITH_HELPER = """
import subprocess, sys, time
from pathlib import Path
from rental_analytics.platform import run_lock
root, ready, lives = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(" + lives + ")"])
with run_lock.holding_run_lock(root, "batch a", lambda line: None):
    run_lock.note_helper_process(helper.pid)
    print(helper.pid, flush=True)
    ready.touch()
    time.sleep(600)
"""


def test_a_run_taking_over_from_a_killed_one_waits_for_the_processes_it_left(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(run_lock, "POLL_SECONDS", 0.05)
    ready = tmp_path / "ready"
    command = [sys.executable, "-c", HOLDER_WITH_HELPER, str(tmp_path / "out"), str(ready), "1.5"]
    holder = subprocess.Popen(command, cwd=ROOT, text=True, stdout=subprocess.PIPE)
    helper = int(holder.stdout.readline()) if holder.stdout else 0
    holder.kill()
    holder.wait(timeout=30)
    said: list[str] = []

    with holding_run_lock(tmp_path / "out", "batch b", said.append):
        assert run_lock._start_time(helper) is None  # it has exited (or is a zombie no one reaped)
    assert any(line.startswith(f"waiting for process {helper} (Java) of the run that ended") for line in said)


def test_a_takeover_does_not_wait_for_a_reused_pid(tmp_path: Path):
    (tmp_path / "out").mkdir()
    # Our own pid, noted as started at another time: a process that has ended and whose pid is in use again.
    holder = {"what": "batch a", "pid": 1, "helpers": [[os.getpid(), -1]]}
    (tmp_path / "out" / LOCK_FILE).write_text(json.dumps(holder))
    said: list[str] = []
    with holding_run_lock(tmp_path / "out", "batch b", said.append):
        pass
    assert not any("waiting for process" in line for line in said)
