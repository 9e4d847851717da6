"""Stage progress: plain lines off a terminal, and Spark's task counts drawn under the stage on one."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

from rental_analytics.platform.progress import StageProgress, TaskCounts, follow_spark, task_counts


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Info:
    numTasks: int
    numActiveTasks: int
    numCompletedTasks: int


@dataclass
class FakeTracker:
    """Spark's StatusTracker as far as the progress reads it: the running stages and their task counts."""

    stages: dict[int, Info] = field(default_factory=dict)

    def getActiveStageIds(self) -> list[int]:
        return list(self.stages)

    def getStageInfo(self, stageId: int) -> Info | None:
        return self.stages.get(stageId)


def test_off_a_terminal_each_stage_is_one_plain_line_with_the_seconds_so_far():
    out, clock = io.StringIO(), Clock()
    progress = StageProgress(out, clock=clock)
    progress("checking the files")
    clock.now += 2.25
    progress("starting Spark (local mode)")
    clock.now += 41.0
    progress("writing the report")
    progress.follow(FakeTracker({1: Info(8, 2, 3)}))  # no status line off a terminal, so no polling either
    progress.close()

    assert out.getvalue() == (
        "[    0.0s] checking the files\n[    2.2s] starting Spark (local mode)\n[   43.2s] writing the report\n"
    )
    assert progress.current == "writing the report"


def test_on_a_terminal_the_status_line_shows_tasks_and_time_left_and_is_erased_by_the_next_stage():
    out, clock = io.StringIO(), Clock()
    tracker = FakeTracker({4: Info(numTasks=200, numActiveTasks=4, numCompletedTasks=0)})
    progress = StageProgress(out, terminal=True, clock=clock)
    progress("computing analytics tables")
    progress._tracker = tracker  # what follow() polls from its thread; here the test polls by hand

    clock.now += 5
    progress.poll()  # the baseline: no task done since the stage set appeared, so no estimate yet
    tracker.stages[4].numCompletedTasks = 50
    clock.now += 10  # 50 tasks in 10 s: the other 150 take about 30 s
    progress.poll()
    tracker.stages = {}  # between Spark jobs: the line goes
    progress.poll()
    clock.now += 1
    progress("writing the report")
    progress.close()

    erase = "\r\x1b[K"
    assert out.getvalue() == (
        "[    0.0s] computing analytics tables\n"
        "  5s [----------------] 0/200 tasks, 4 running, Spark stage 4"
        f"{erase}  15s [####------------] 50/200 tasks, 4 running, Spark stage 4, about 30s left"
        f"{erase}"
        "[   16.0s] writing the report\n"
    )


def test_the_estimate_restarts_when_other_spark_stages_run():
    progress = StageProgress(io.StringIO(), terminal=True, clock=Clock())
    first = progress.status_line(TaskCounts((1,), 0, 10, 2), 0.0)
    halfway = progress.status_line(TaskCounts((1,), 5, 10, 2), 60.0)
    other = progress.status_line(TaskCounts((2, 3), 5, 30, 4), 61.0)
    later = progress.status_line(TaskCounts((2, 3), 15, 30, 4), 81.0)

    assert "about" not in first
    assert halfway.endswith("5/10 tasks, 2 running, Spark stage 1, about 1m00s left")
    assert other.endswith("5/30 tasks, 4 running, Spark stages 2, 3")
    assert later.endswith("15/30 tasks, 4 running, Spark stages 2, 3, about 30s left")


def test_task_counts_add_up_the_running_stages_and_skip_the_ones_gone():
    class Vanishing(FakeTracker):
        def getActiveStageIds(self) -> list[int]:
            return [7, 3, 9]  # 9 ended between the two calls

    tracker = Vanishing({3: Info(10, 2, 4), 7: Info(5, 1, 1)})
    assert task_counts(tracker) == TaskCounts((3, 7, 9), done=5, total=15, running=3)
    assert task_counts(FakeTracker()) is None


def test_a_tracker_that_fails_draws_nothing_and_raises_nothing():
    class Broken(FakeTracker):
        def getActiveStageIds(self) -> list[int]:
            raise ConnectionError("the JVM is gone")

    out = io.StringIO()
    progress = StageProgress(out, terminal=True, clock=Clock())
    progress._tracker = Broken()
    progress.poll()
    assert out.getvalue() == ""


def test_follow_spark_polls_only_a_stage_progress_on_a_terminal():
    class Spark:
        class sparkContext:  # the shape of pyspark's attribute
            @staticmethod
            def statusTracker() -> FakeTracker:
                return FakeTracker({1: Info(4, 1, 2)})

    follow_spark(print, Spark())  # any other Progress is left alone
    plain = StageProgress(io.StringIO(), terminal=False)
    follow_spark(plain, Spark())
    assert plain._thread is None
    out = io.StringIO()
    drawn = StageProgress(out, terminal=True, poll_seconds=0.01)
    follow_spark(drawn, Spark())
    assert drawn._thread is not None
    for _ in range(1000):  # wait for the thread's first drawing (not a timing assertion: no bound is checked)
        if out.getvalue():
            break
        time.sleep(0.01)
    drawn.close()
    assert not drawn._thread.is_alive()
    assert out.getvalue().endswith("\r\x1b[K")  # the status line was drawn, then cleared by close()


class ClosedPipe(io.StringIO):
    """Standard error piped into a reader that has gone (`run ... 2>&1 | head -2`)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_progress_whose_reader_went_away_writes_nothing_more_and_fails_nothing():
    progress = StageProgress(ClosedPipe(), terminal=True)
    progress("reading the batch")
    progress.follow(FakeTracker({1: Info(8, 2, 3)}))
    progress.poll()
    progress("writing the report")
    progress.close()
    assert progress.current == "writing the report"
