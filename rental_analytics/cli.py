"""The `rental-analytics` command line: one program, to which each pipeline adds its own subcommands."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from rental_analytics.apartments import cli as apartments_cli
from rental_analytics.car_rental import cli as car_rental_cli
from rental_analytics.platform.command_line import CommandGroups
from rental_analytics.platform.errors import Terminated, report_failure
from rental_analytics.platform.progress import StageProgress


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rental-analytics")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rental-analytics", description="Rental marketplace analytics.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure and the libraries' logs")
    top = parser.add_subparsers(dest="command", required=True)
    groups = CommandGroups(
        top=top,
        generate=top.add_parser("generate", help="make realistic sample data").add_subparsers(
            dest="pipeline", required=True
        ),
        validate=top.add_parser("validate", help="run a pipeline's upload checks on local files").add_subparsers(
            dest="pipeline", required=True
        ),
        run=top.add_parser("run", help="run a pipeline locally").add_subparsers(dest="pipeline", required=True),
    )
    apartments_cli.register(groups)
    car_rental_cli.register(groups)
    return parser


def _terminated(_signal: int, _frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the installed `rental-analytics` command.

    Every failure ends here as one line on standard error naming the stage, and an exit code: 0 done, 1 the
    batch or load failed, 2 usage or configuration, 130 interrupted, 143 terminated (SIGTERM). `--debug` adds
    the traceback.
    """
    args = _parser().parse_args(argv)
    if not args.debug:
        # Py4J logs its own tracebacks through the root logger when a call is cut short (Ctrl-C).
        logging.basicConfig(handlers=[logging.NullHandler()])
    args.progress = progress = StageProgress()
    command = " ".join(filter(None, (args.command, getattr(args, "pipeline", None))))
    # SIGTERM ends the command as Ctrl-C does, through the failure paths that write a run's report.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main_thread else None
    try:
        with progress:
            return int(args.handler(args))
    except (Exception, KeyboardInterrupt) as error:
        if isinstance(error, BrokenPipeError):
            # What is still buffered for the closed pipe would fail again, and noisily, when Python exits. A
            # standard output that is no file (a test's capture) has nothing to redirect.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return report_failure(error, progress.current, command, args.debug)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
