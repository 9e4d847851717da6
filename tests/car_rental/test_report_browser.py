"""The car-rental page as a person sees it: rendered by a real headless Chromium, offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from rental_analytics.car_rental.report import write_reports
from tests.car_rental.test_report import success
from tests.html_page import CHROMIUM, chromium, png_size


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH (Debian package chromium; .ci/run installs it)")
def test_chromium_renders_the_headline_figures_and_the_tables(tmp_path: Path):
    page = write_reports(tmp_path / "report", success())

    dom, shot = chromium(page, tmp_path)

    text = dom.text
    assert "Total revenue $367,395.00" in text and "Rentals accepted 4,918" in text and "Reject rate 1.64%" in text
    assert "Location Location ID Utilization Rental hours Vehicles" in text
    assert dom.count("svg") == 3 and dom.count("script") == 0
    assert png_size(shot) == (1280, 2400)
    assert shot.stat().st_size > 50_000  # a blank page of that size is a few kilobytes
