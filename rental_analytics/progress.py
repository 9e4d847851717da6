"""Stage-by-stage progress for long local runs, printed to standard error."""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

# A stage announcer: the job and the local runner call it with a short description of each stage.
Progress = Callable[[str], None]


class StageProgress:
    """Prints each stage as it starts, with the time spent so far."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._started = time.monotonic()

    def __call__(self, stage: str) -> None:
        """Announce a stage."""
        elapsed = time.monotonic() - self._started
        print(f"[{elapsed:7.1f}s] {stage}", file=self._stream, flush=True)


def job_log(job: str) -> Progress:
    """Progress for a job on EMR or Glue: plain lines on standard output, which the job's log keeps."""

    def say(stage: str) -> None:
        print(f"[{job}] {stage}", flush=True)

    return say
