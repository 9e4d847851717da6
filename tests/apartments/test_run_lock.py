"""An apartments run waits for the run that holds its data root, as a car-rental run does."""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

import pytest

from rental_analytics.apartments.db_url import DatabaseUrl
from rental_analytics.apartments.local_run import run_apartments, undo_last_load_date
from rental_analytics.platform import run_lock
from tests.platform.test_run_lock import _holder

# Nothing listens here: once it has the lock, the run fails at its first connection, which is all this needs.
pytestmark = pytest.mark.spark  # the run starts from the tests' session

NOWHERE = DatabaseUrl.parse("mysql://etl@127.0.0.1:9/db")
NO_WAREHOUSE = DatabaseUrl.parse("postgresql://etl@127.0.0.1:9/db")


@pytest.mark.parametrize("command", ["run", "undo"])
def test_an_apartments_command_waits_for_the_run_that_holds_its_output(
    spark, tmp_path: Path, monkeypatch, command: str
):
    monkeypatch.setattr(run_lock, "POLL_SECONDS", 0.05)
    holder, release = _holder(tmp_path)
    said: list[str] = []

    def apartments() -> None:
        try:
            if command == "run":
                run_apartments(NOWHERE, NO_WAREHOUSE, tmp_path / "out", date(2024, 6, 2), said.append)
            else:
                undo_last_load_date(NO_WAREHOUSE, tmp_path / "out", said.append)
        except Exception as error:  # the failure after the lock is not what is tested
            said.append(f"ended: {type(error).__name__}")

    waiting = threading.Thread(target=apartments)
    waiting.start()
    time.sleep(1.0)
    assert waiting.is_alive()
    assert len(said) == 1 and said[0].startswith("waiting for the run of batch a")  # nothing else began
    release.touch()
    waiting.join(timeout=120)
    assert holder.wait(timeout=30) == 0 and not waiting.is_alive()
    assert len(said) > 1
