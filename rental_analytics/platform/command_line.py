"""What every pipeline's subcommands share: exit codes, argument types and the command groups they join."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # what shells report for a process ended by Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # and by SIGTERM (128 + 15): timeout, systemd, a container's stop

# A subcommand's work: the parsed arguments in, the process exit code out.
Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class CommandGroups:
    """Where a pipeline adds its subcommands: `rental-analytics X`, or `rental-analytics generate|validate|run X`."""

    top: argparse._SubParsersAction[argparse.ArgumentParser]
    generate: argparse._SubParsersAction[argparse.ArgumentParser]
    validate: argparse._SubParsersAction[argparse.ArgumentParser]
    run: argparse._SubParsersAction[argparse.ArgumentParser]


def rate(text: str) -> float:
    """An argparse type: a share between 0 and 1."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
