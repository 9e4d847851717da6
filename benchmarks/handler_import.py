"""Benchmark: cold-start import time of a Lambda handler module, from `python -X importtime`."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Placeholder settings: importing the handler builds its settings object, which needs them to exist.
PLACEHOLDER_ENV = {
    "DATA_BUCKET": "example-data-bucket",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:example",
    "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:example",
    "WARNING_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:example-warnings",
    "POWERTOOLS_METRICS_NAMESPACE": "RentalAnalytics",
    "POWERTOOLS_SERVICE_NAME": "benchmark",
}


def import_microseconds(function: str) -> int:
    """One fresh interpreter's cumulative import time of `app`, in microseconds."""
    env = {**os.environ, **PLACEHOLDER_ENV, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app"],
        cwd=ROOT / "functions" / function,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    last = result.stderr.strip().splitlines()[-1]
    return int(last.split("|")[1])


def main(argv: list[str] | None = None) -> int:
    """Print each run's figure and the slowest."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("function", nargs="?", default="validate_upload")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    runs = [import_microseconds(args.function) for _ in range(args.runs)]
    print(f"{args.function}: import of app in ms per run: {', '.join(f'{r / 1000:.0f}' for r in runs)}")
    print(f"slowest: {max(runs) / 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
