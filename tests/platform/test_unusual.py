"""The unusual-data rule on recorded histories of row counts."""

from __future__ import annotations

import pytest

from rental_analytics.platform.unusual import UnusualDataRule, check, check_all

RULE = UnusualDataRule(window=14, min_history=5, k=3.0, min_relative_band=0.1)
DAILY_RENTALS = [10_120, 9_870, 10_340, 9_950, 10_010, 10_230, 9_790, 10_100]


@pytest.mark.parametrize(
    ("seen", "unusual"),
    [(10_050, False), (11_000, False), (6_000, True), (14_500, True), (0, True)],
)
def test_a_count_far_from_the_trailing_mean_is_unusual(seen: float, unusual: bool):
    assert (check("rentals", DAILY_RENTALS, seen, RULE) is not None) is unusual


def test_too_little_history_judges_nothing():
    assert check("rentals", DAILY_RENTALS[:4], 0, RULE) is None


def test_a_flat_history_still_allows_small_changes():
    assert check("locations", [300] * 10, 310, RULE) is None
    assert check("locations", [300] * 10, 340, RULE) is not None


def test_only_the_window_counts():
    old_and_small = [100] * 20 + DAILY_RENTALS
    assert check("rentals", old_and_small, 10_000, UnusualDataRule(window=8)) is None


def test_the_finding_says_what_was_expected_and_seen():
    finding = check("rental_transactions", DAILY_RENTALS, 6_000, RULE)
    assert finding is not None
    assert finding.describe().startswith("rental_transactions: 6,000 rows, expected about 10,051 (between ")
    assert "the mean of the last 8 runs ± 3 standard deviations" in finding.describe()


def test_each_series_is_judged_on_its_own_history():
    history = [{"users": 500.0, "rentals": r} for r in DAILY_RENTALS]
    history[0] = {"rentals": DAILY_RENTALS[0]}  # an early run without users
    findings = check_all(history, {"users": 500.0, "rentals": 2_000.0, "new_table": 7.0}, RULE)
    assert [f.series for f in findings] == ["rentals"]
