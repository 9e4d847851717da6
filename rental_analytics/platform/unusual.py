"""Unusual data: a run's row counts set against the same counts in the runs before it (docs/operations.md, Warnings)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class UnusualDataRule:
    """Trailing mean ± k standard deviations of the last `window` runs, judged once `min_history` runs exist.

    The band is never narrower than ±`min_relative_band` of the mean: a history that never moved would
    otherwise flag a change of one row.
    """

    window: int = 14
    min_history: int = 5
    k: float = 3.0
    min_relative_band: float = 0.1


@dataclass(frozen=True)
class Finding:
    """One count outside its expected band, told the way a person needs it."""

    series: str
    seen: float
    expected: float
    low: float
    high: float
    runs: int
    k: float

    def describe(self) -> str:
        """What was expected and what was seen."""
        return (
            f"{self.series}: {self.seen:,.0f} rows, expected about {self.expected:,.0f} "
            f"(between {self.low:,.0f} and {self.high:,.0f}: the mean of the last {self.runs} runs "
            f"± {self.k:g} standard deviations)"
        )


def check(series: str, history: Sequence[float], seen: float, rule: UnusualDataRule) -> Finding | None:
    """A finding when `seen` falls outside the band the recent `history` (oldest first) sets, else None."""
    recent = list(history)[-rule.window :]
    if len(recent) < rule.min_history:
        return None
    mean = statistics.fmean(recent)
    spread = max(rule.k * statistics.pstdev(recent), rule.min_relative_band * abs(mean))
    low, high = mean - spread, mean + spread
    if low <= seen <= high:
        return None
    return Finding(series, seen, mean, max(low, 0.0), high, len(recent), rule.k)


def check_all(
    history: Sequence[Mapping[str, float]], today: Mapping[str, float], rule: UnusualDataRule
) -> list[Finding]:
    """Every series of `today` judged against the runs in `history` (oldest first) that recorded it."""
    findings = []
    for series, seen in sorted(today.items()):
        past = [run[series] for run in history if series in run]
        finding = check(series, past, seen, rule)
        if finding:
            findings.append(finding)
    return findings
