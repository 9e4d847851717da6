"""Independent calls run at once, and a failure is raised only once every call has ended."""

from __future__ import annotations

import threading

import pytest

from rental_analytics.platform.side_by_side import side_by_side


def test_the_calls_run_at_the_same_time():
    # Each call waits for all the others: run one after another, the first would wait forever.
    barrier = threading.Barrier(3, timeout=10)
    done: list[int] = []

    def call(number: int) -> None:
        barrier.wait()
        done.append(number)

    side_by_side([lambda n=n: call(n) for n in range(3)])

    assert sorted(done) == [0, 1, 2]


def test_a_failure_is_raised_after_the_other_calls_have_ended():
    finished = threading.Event()

    def fails() -> None:
        raise ValueError("the write failed")

    def slow() -> None:
        finished.wait(0.2)
        finished.set()

    with pytest.raises(ValueError, match="the write failed"):
        side_by_side([fails, slow])
    assert finished.is_set()  # the caller cleans up only once nothing is still writing


def test_one_call_runs_in_the_callers_thread():
    threads: list[threading.Thread] = []
    side_by_side([lambda: threads.append(threading.current_thread())])
    assert threads == [threading.current_thread()]
