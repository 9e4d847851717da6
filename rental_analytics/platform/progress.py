"""Stage-by-stage progress for long local runs on standard error, with Spark's task counts on a terminal."""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Protocol, TextIO

# A stage announcer: the job and the local runner call it with a short description of each stage.
Progress = Callable[[str], None]

_ERASE = "\r\x1b[K"  # back to the start of the line and clear it
_BAR = 16


class StageInfo(Protocol):
    """What the status line needs of a Spark stage (pyspark's SparkStageInfo)."""

    numTasks: int
    numActiveTasks: int
    numCompletedTasks: int


class StatusTracker(Protocol):
    """What the status line needs of Spark's status tracker (pyspark's StatusTracker)."""

    def getActiveStageIds(self) -> list[int]: ...

    def getStageInfo(self, stageId: int) -> StageInfo | None: ...


@dataclass(frozen=True)
class TaskCounts:
    """The tasks of the Spark stages running now."""

    stages: tuple[int, ...]
    done: int
    total: int
    running: int


def task_counts(tracker: StatusTracker) -> TaskCounts | None:
    """The active stages' task counts, or None when Spark is between jobs."""
    stages = tuple(sorted(tracker.getActiveStageIds()))
    infos = [info for info in (tracker.getStageInfo(stage) for stage in stages) if info is not None]
    if not infos:
        return None
    return TaskCounts(
        stages,
        sum(info.numCompletedTasks for info in infos),
        sum(info.numTasks for info in infos),
        sum(info.numActiveTasks for info in infos),
    )


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


class StageProgress:
    """Prints each stage as it starts, with the time spent so far.

    On a terminal, a status line under the current stage shows the running Spark stages' tasks and an
    estimate of the time they have left, redrawn from a background thread that polls Spark's status tracker
    (`follow`). Elsewhere (CI, pipes, files) only the stage lines are written.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        terminal: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll_seconds: float = 0.5,
    ) -> None:
        self._stream = stream or sys.stderr
        self._terminal = _is_terminal(self._stream) if terminal is None else terminal
        self._clock = clock
        self._started = self._stage_started = clock()
        self._poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._drawn = False
        self._gone = False  # writing to the stream failed once: nothing more is written
        self._tracker: StatusTracker | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # The time and done count when the set of running Spark stages last changed: the ETA's baseline.
        self._baseline: tuple[tuple[int, ...], float, int] | None = None
        self.current: str | None = None

    def __call__(self, stage: str) -> None:
        """Announce a stage."""
        with self._lock:
            self._erase()
            self._stage_started = self._clock()
            self._write(f"[{self._stage_started - self._started:7.1f}s] {stage}\n")
            self.current = stage
            self._baseline = None

    def follow(self, tracker: StatusTracker) -> None:
        """Draw Spark's task counts under the current stage until `close`; nothing happens off a terminal."""
        if not self._terminal or self._thread is not None:
            return
        self._tracker = tracker
        self._thread = threading.Thread(target=self._poll_until_closed, name="stage-progress", daemon=True)
        self._thread.start()

    def _poll_until_closed(self) -> None:
        while not self._stop.wait(self._poll_seconds):
            self.poll()

    def poll(self) -> None:
        """Read the tracker once and redraw the status line."""
        if self._tracker is None:
            return
        try:
            counts = task_counts(self._tracker)
        except Exception:  # the JVM may be stopping (the end of a run, Ctrl-C): a display never fails a run
            return
        with self._lock:
            self._erase()
            if counts is None:
                return
            line = self.status_line(counts, self._clock())
            self._write(line[: self._width()])
            self._drawn = True

    def status_line(self, counts: TaskCounts, now: float) -> str:
        """`  12s [###-------------] 45/200 tasks, 4 running, Spark stage 3, about 40s left` (12s: in this stage)."""
        if self._baseline is None or self._baseline[0] != counts.stages:
            self._baseline = (counts.stages, now, counts.done)
        _, since, done_before = self._baseline
        share = counts.done / counts.total if counts.total else 0.0
        filled = int(share * _BAR)
        stages = ", ".join(str(stage) for stage in counts.stages)
        label = "Spark stages" if len(counts.stages) > 1 else "Spark stage"
        line = f"  {_duration(now - self._stage_started)} [{'#' * filled}{'-' * (_BAR - filled)}]"
        line += f" {counts.done}/{counts.total} tasks, {counts.running} running, {label} {stages}"
        finished_since = counts.done - done_before
        if finished_since > 0 and counts.done < counts.total:
            left = (now - since) / finished_since * (counts.total - counts.done)
            line += f", about {_duration(left)} left"
        return line

    def _width(self) -> int | None:
        """One less than the terminal's width: a line that wrapped could not be redrawn in place."""
        try:
            return os.get_terminal_size(self._stream.fileno()).columns - 1
        except (AttributeError, OSError, ValueError):  # not a terminal's file (a test's buffer)
            return None

    def _erase(self) -> None:
        if self._drawn:
            self._write(_ERASE)
            self._drawn = False

    def _write(self, text: str) -> None:
        if self._gone:
            return
        try:
            self._stream.write(text)
            self._stream.flush()
        except OSError:  # the reader went away (`run ... | head`): a display never fails the run it shows
            self._gone = True

    def close(self) -> None:
        """Stop polling and clear the status line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self._erase()

    def __enter__(self) -> StageProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s"


def follow_spark(progress: Progress, spark: Any) -> None:
    """Show the Spark session's task counts under the current stage, when the progress draws on a terminal."""
    if isinstance(progress, StageProgress):
        progress.follow(spark.sparkContext.statusTracker())


def job_log(job: str) -> Progress:
    """Progress for a job on EMR or Glue: plain lines on standard output, which the job's log keeps."""

    def say(stage: str) -> None:
        print(f"[{job}] {stage}", flush=True)

    return say
