"""One run at a time per local data root, in start order: a lock file under --output, and a queue of tickets."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rental_analytics.platform.errors import StageError
from rental_analytics.platform.progress import Progress

LOCK_FILE = ".run.lock"
# Each waiting run's ticket, named by its start: the oldest live ticket takes the lock when it is free.
QUEUE_DIR = ".run.queue"
# How often a waiting run tries the lock, and how often it says again what it waits for.
POLL_SECONDS = 0.5
REMIND_SECONDS = 30.0
# How long a run that takes over waits for the processes of the ended run (its Java process) to exit: the JVM
# exits within seconds of its parent, as it sees its input close.
HELPERS_EXIT_SECONDS = 60.0


def _holder_text(holder: dict[str, Any]) -> str:
    started = holder.get("started", "?")
    where = f"process {holder.get('pid', '?')} on {holder.get('host', '?')}, started {started}"
    return f"the run of {holder.get('what', 'an unknown batch')} ({where})"


def _read_holder(handle: Any) -> dict[str, Any] | None:
    handle.seek(0)
    text = handle.read()
    try:
        holder = json.loads(text) if text.strip() else None
    except ValueError:
        return None  # cut short while being written: whoever wrote it held the lock only a moment
    return holder if isinstance(holder, dict) else None


def _try_lock(handle: Any, root: Path) -> bool:
    """Take `handle`'s flock if it is free; a file system that cannot lock is a settings error."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            raise StageError(
                "locking the output",
                f"{root} is on a file system that cannot lock files, so two runs on it could overlap",
                "give an --output on a local disk",
            ) from error
        raise


def _open_lock_file(root: Path) -> int:
    """The lock file's descriptor, never through a link: the run writes its name into it and empties it."""
    try:
        return os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise
        raise StageError(
            "locking the output",
            f"{root / LOCK_FILE} is a symbolic link; the run lock must be a file of the output folder itself",
            f"remove the link ({root / LOCK_FILE}) and run again",
        ) from error


@contextlib.contextmanager
def _ticket(root: Path, me: dict[str, Any]) -> Iterator[str]:
    """This run's place in the queue, named by its start time.

    The ticket is held (flock) while the run waits, so a run killed while waiting leaves a ticket any later run
    can see is dead; it is locked before it is renamed into place, so it is never seen unlocked while alive.
    """
    queue = root / QUEUE_DIR
    queue.mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(4).hex()}"
    draft = queue / f".{name}"
    with draft.open("w", encoding="utf-8") as handle:
        if not _try_lock(handle, root):
            raise RuntimeError(f"a new ticket {draft} was locked by another process")
        handle.write(json.dumps(me))  # so that a run queued behind this one can say which run it waits for
        handle.flush()
        draft.rename(queue / name)
        try:
            yield name
        finally:
            (queue / name).unlink(missing_ok=True)


def _earlier_live_tickets(root: Path, mine: str) -> list[dict[str, Any]]:
    """The live runs queued before this one, first first; dead ones' tickets are removed on the way."""
    queue, live = root / QUEUE_DIR, []
    for name in sorted(p.name for p in queue.iterdir() if not p.name.startswith(".")):
        if name >= mine:
            break
        try:
            with (queue / name).open("r", encoding="utf-8") as other:
                if _try_lock(other, root):  # its run has ended without taking the lock
                    (queue / name).unlink(missing_ok=True)
                    continue
                live.append(_read_holder(other) or {})
        except FileNotFoundError:
            continue  # it took the lock, or gave up, as we looked
    return live


@contextlib.contextmanager
def holding_run_lock(root: Path, what: str, progress: Progress) -> Iterator[None]:
    """Hold `root`'s run lock for the body; wait for the run that holds it, saying which run and for how long.

    The lock is the operating system's (flock) on `root/.run.lock`: it goes with the process that holds it, so
    a run that is killed leaves nothing that a later run must honour. Waiting runs take it in the order they
    started (each holds a ticket in `root/.run.queue`), so a later batch never overtakes an earlier one. The
    file names the holder while it runs and is emptied on release; a later run that finds a name in a free lock
    says it takes over from a run that ended without releasing it, and that run's staging is then recovered by
    the pipeline as after any interruption.
    """
    root.mkdir(parents=True, exist_ok=True)
    held = _held_key(root)
    if held in _HELD:  # this process holds it already (a demo generates its batch and then runs it)
        yield
        return
    me = {
        "what": what,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    with os.fdopen(_open_lock_file(root), "r+", encoding="utf-8") as handle:
        with _ticket(root, me) as ticket:  # given back once the lock is taken: the queue holds only waiting runs
            waited_since = None
            reminded = 0.0
            while True:
                ahead = _earlier_live_tickets(root, ticket)
                if not ahead and _try_lock(handle, root):
                    break
                now = time.monotonic()
                if waited_since is None or now - reminded >= REMIND_SECONDS:
                    waited = "" if waited_since is None else f" (waiting {now - waited_since:.0f} s)"
                    progress(f"waiting for {_waited_for(_read_holder(handle), ahead)} to finish with {root}{waited}")
                    waited_since = now if waited_since is None else waited_since
                    reminded = now
                time.sleep(POLL_SECONDS)
        earlier = _read_holder(handle)
        if earlier is not None:
            progress(f"taking over the lock of {root} from {_holder_text(earlier)}, which ended without releasing it")
            _wait_for_helpers(earlier, root, progress)
        _write_holder(handle, me)
        _HELD[held] = (handle, me)
        try:
            yield
        finally:
            del _HELD[held]
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


# The data roots whose lock this process holds, by device and inode, so that however a root is spelled a nested
# hold of it goes on at once instead of waiting for itself; with each, the open lock file and what it says.
_HELD: dict[tuple[int, int], tuple[Any, dict[str, Any]]] = {}


def _write_holder(handle: Any, holder: dict[str, Any]) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(holder))
    handle.flush()


def note_helper_process(pid: int) -> None:
    """Name a process this run started (Spark's JVM) in every lock it holds.

    The JVM outlives a run that is killed by a moment, still writing; a run that takes the lock over waits for
    it to exit before it recovers that run's staging.
    """
    for handle, holder in _HELD.values():
        holder.setdefault("helpers", []).append([pid, _start_time(pid)])
        _write_holder(handle, holder)


def _start_time(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (Linux), so a reused pid is not taken for it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])  # a zombie has exited


def _still_runs(pid: int, started: int | None) -> bool:
    if Path("/proc/self/stat").exists():
        return started is not None and _start_time(pid) == started
    try:
        os.kill(pid, 0)  # without /proc: whether a process of that pid exists at all
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_for_helpers(earlier: dict[str, Any], root: Path, progress: Progress) -> None:
    try:
        helpers = [(int(pid), None if started is None else int(started)) for pid, started in earlier.get("helpers", [])]
    except (TypeError, ValueError):
        helpers = []  # not written by a run: nothing to wait for
    deadline = time.monotonic() + HELPERS_EXIT_SECONDS
    said = False
    while running := [pid for pid, started in helpers if _still_runs(pid, started)]:
        if time.monotonic() > deadline:
            raise StageError(
                "locking the output",
                f"process {running[0]} of the run that ended without releasing {root} still runs",
                f"stop it (kill {running[0]}) and run again",
            )
        if not said:
            progress(f"waiting for process {running[0]} (Java) of the run that ended to exit")
            said = True
        time.sleep(POLL_SECONDS)


def _held_key(root: Path) -> tuple[int, int]:
    status = root.stat()
    return status.st_dev, status.st_ino


def _waited_for(holder: dict[str, Any] | None, ahead: list[dict[str, Any]]) -> str:
    """The run holding the lock, else the first run queued before this one, and how many are queued."""
    if holder is None and ahead:
        first, *others = ahead
        more = f", and for {len(others)} more run(s) queued before this one" if others else ""
        return f"{_holder_text(first)}, queued before this one{more}"
    queued = f", and for {len(ahead)} run(s) queued before this one" if ahead else ""
    return f"{_holder_text(holder or {})}{queued}"
