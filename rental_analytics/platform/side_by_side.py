"""Independent Spark actions submitted at once, each from a thread of its own, so that no core waits on one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence


def side_by_side(calls: Sequence[Callable[[], None]]) -> None:
    """Run every call, each in a thread of its own, and return when all have ended.

    One query at a time leaves cores idle while the driver plans it and while a stage runs fewer tasks than
    there are cores (a table gathered into one file); with several under way, the scheduler gives the idle
    cores another query's tasks. The task slots still bound how many tasks hold memory at once; what grows is
    the driver's share, as each query builds its own broadcast tables (docs/benchmarks.md: the 10M run).
    The first failure is raised once every call has ended, so no write is still under way when the caller
    cleans up. The threads are daemons: a Ctrl-C in the caller's thread ends the process (and Spark's JVM with
    it) without waiting for them.
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
