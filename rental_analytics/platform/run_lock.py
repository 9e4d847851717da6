"""One run at a time per local data root: a lock file under --output that a later run waits for."""

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
# How often a waiting run tries the lock, and how often it says again what it waits for.
POLL_SECONDS = 0.5
REMIND_SECONDS = 30.0


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


@contextlib.contextmanager
def holding_run_lock(root: Path, what: str, progress: Progress) -> Iterator[None]:
    """Hold `root`'s run lock for the body; wait for the run that holds it, saying which run and for how long.

    The lock is the operating system's (flock) on `root/.run.lock`: it goes with the process that holds it, so
    a run that is killed leaves nothing that a later run must honour. The file names the holder while it runs and
    is emptied on release; a later run that finds a name in a free lock says it takes over from a run that ended
    without releasing it, and that run's staging is then recovered by the pipeline as after any interruption.
    """
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK_FILE).open("a+", encoding="utf-8") as handle:
        waited_since = None
        reminded = 0.0
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            except OSError as error:
                if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise StageError(
                        "locking the output",
                        f"{root} is on a file system that cannot lock files, so two runs on it could overlap",
                        "give an --output on a local disk",
                    ) from error
                raise
            now = time.monotonic()
            if waited_since is None or now - reminded >= REMIND_SECONDS:
                holder = _read_holder(handle)
                waited = "" if waited_since is None else f" (waiting {now - waited_since:.0f} s)"
                progress(f"waiting for {_holder_text(holder or {})} to finish with {root}{waited}")
                waited_since = now if waited_since is None else waited_since
                reminded = now
            time.sleep(POLL_SECONDS)
        earlier = _read_holder(handle)
        if earlier is not None:
            progress(f"taking over the lock of {root} from {_holder_text(earlier)}, which ended without releasing it")
        me = {
            "what": what,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(me))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
