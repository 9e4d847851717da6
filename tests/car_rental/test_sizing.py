"""The sizing rule: core capacity from the batch's bytes, monotonic and within the stack's bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rental_analytics.car_rental.sizing import ClusterSizing, batch_bytes
from rental_analytics.platform.config import ConfigError

GB = 1_000_000_000


@st.composite
def sizings(draw: st.DrawFn) -> ClusterSizing:
    low = draw(st.integers(1, 20))
    return ClusterSizing(
        bytes_per_unit=draw(st.integers(1, 10 * GB)),
        min_units=low,
        max_units=draw(st.integers(low, 50)),
        on_demand_units=draw(st.integers(0, 50)),
    )


@settings(max_examples=60, deadline=None)
@given(sizings(), st.integers(0, 200 * GB), st.integers(0, 200 * GB))
def test_capacity_grows_with_the_bytes_and_stays_within_the_bounds(sizing: ClusterSizing, a: int, b: int):
    small, large = sorted((a, b))
    fewer, more = sizing.capacity(small), sizing.capacity(large)
    assert sizing.min_units <= fewer.units <= more.units <= sizing.max_units
    for capacity in (fewer, more):
        assert capacity.on_demand_units == min(capacity.units, sizing.on_demand_units)
        assert capacity.spot_units >= 0


@settings(max_examples=30, deadline=None)
@given(sizings(), st.integers(1, 40))
def test_each_unit_takes_at_most_its_share_of_bytes_until_the_maximum(sizing: ClusterSizing, units: int):
    within = sizing.capacity(units * sizing.bytes_per_unit)
    assert within.units == min(sizing.max_units, max(sizing.min_units, units))
    assert sizing.capacity(units * sizing.bytes_per_unit + 1).units == min(
        sizing.max_units, max(sizing.min_units, units + 1)
    )


def test_the_documented_defaults_give_the_demo_one_node_and_10m_rentals_one():
    # docs/benchmarks.md: the demo's batch is about 3 MB, 10M rentals 1.24 GB of input.
    rule = ClusterSizing()
    assert rule.capacity(3_000_000).as_dict() == {"on_demand_units": 1, "spot_units": 0}
    assert rule.capacity(1_239_000_000).units == 1
    assert rule.capacity(9 * GB).as_dict() == {"on_demand_units": 1, "spot_units": 4}
    assert rule.capacity(100 * GB).units == rule.max_units


def test_the_bytes_of_a_batch_are_the_sum_of_its_files():
    assert batch_bytes({"users": {"bytes": 10}, "locations": {"bytes": 5}, "vehicles": {}}) == 15


@pytest.mark.parametrize(
    "environ",
    [{"CORE_MIN_UNITS": "3", "CORE_MAX_UNITS": "2"}, {"CORE_BYTES_PER_UNIT": "0"}, {"CORE_MAX_UNITS": "many"}],
)
def test_settings_that_cannot_size_a_cluster_fail_at_start(environ: dict[str, str]):
    with pytest.raises(ConfigError):
        ClusterSizing.from_env(environ)


def test_the_settings_come_from_the_environment():
    environ = {"CORE_BYTES_PER_UNIT": "5", "CORE_MIN_UNITS": "2", "CORE_MAX_UNITS": "4", "CORE_ON_DEMAND_UNITS": "0"}
    assert ClusterSizing.from_env(environ) == ClusterSizing(5, 2, 4, 0)
