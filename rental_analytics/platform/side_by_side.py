"""Independent Spark actions submitted at once from threads, so one's planning and idle cores serve another."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence


def side_by_side(calls: Sequence[Callable[[], None]]) -> None:
    """Run every call, each in a thread of its own, and return when all have ended.

    One query at a time leaves cores idle while the driver plans it and while a stage runs fewer tasks than
    there are cores (a table gathered into one file); with several under way, the scheduler gives the idle
    cores another query's tasks. The task slots still bound the work done at once, so memory is bounded as
    for one query. The first failure is raised once every call has ended, so no
    write is still under way when the caller cleans up. The threads are daemons: a Ctrl-C in the caller's
    thread ends the process (and Spark's JVM with it) without waiting for them.
    """
    if len(calls) <= 1:
        for call in calls:
            call()
        return
    failures: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        try:
            call()
        except BaseException as failure:  # raised again in the caller's thread below
            failures.append(failure)

    threads = [threading.Thread(target=run, args=(call,), daemon=True) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
