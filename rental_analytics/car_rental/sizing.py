"""The EMR cluster sized to the batch: core capacity from the bytes the gate read, within the stack's bounds."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rental_analytics.platform.config import ConfigError

# One unit of core capacity is one core node of the fleet's size class (8 vCPUs, 64 GiB: r5.2xlarge, r6g.2xlarge,
# ...). Locally the job processes about 12 MB of CSV a second on 2 cores (docs/benchmarks.md, 10M rentals: 1.24 GB
# in 102 s); one node of 8 vCPUs takes 2 GB (about 16M rentals) in a few minutes, so a unit per 2 GB keeps the
# Spark step's time near the cluster's start-up time whatever the batch's size.
DEFAULT_BYTES_PER_UNIT = 2_000_000_000


@dataclass(frozen=True)
class CoreCapacity:
    """The core fleet's targets, in units: On-Demand first, the rest on Spot."""

    on_demand_units: int
    spot_units: int

    @property
    def units(self) -> int:
        return self.on_demand_units + self.spot_units

    def as_dict(self) -> dict[str, int]:
        """The form the workflow's fleet reads (`$.core_capacity`)."""
        return {"on_demand_units": self.on_demand_units, "spot_units": self.spot_units}


@dataclass(frozen=True)
class ClusterSizing:
    """The sizing rule's parameters (the stack's CoreBytesPerUnit, CoreMinUnits, CoreMaxUnits, CoreOnDemandUnits).

    The rule: one unit per `bytes_per_unit` bytes of input (rounded up), at least `min_units` and at most
    `max_units`; the first `on_demand_units` of them On-Demand, so that a Spot shortage or reclaim never leaves the
    job without a node, and the rest on Spot.
    """

    bytes_per_unit: int = DEFAULT_BYTES_PER_UNIT
    min_units: int = 1
    max_units: int = 8
    on_demand_units: int = 1

    def __post_init__(self) -> None:
        if self.bytes_per_unit < 1 or self.min_units < 1 or self.max_units < self.min_units:
            raise ConfigError(f"cluster sizing needs bytes per unit >= 1 and 1 <= min units <= max units, not {self}")
        if self.on_demand_units < 0:
            raise ConfigError(f"cluster sizing needs on-demand units >= 0, not {self.on_demand_units}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ClusterSizing:
        """CORE_BYTES_PER_UNIT, CORE_MIN_UNITS, CORE_MAX_UNITS and CORE_ON_DEMAND_UNITS, each defaulting as above."""
        names = {
            "bytes_per_unit": "CORE_BYTES_PER_UNIT",
            "min_units": "CORE_MIN_UNITS",
            "max_units": "CORE_MAX_UNITS",
            "on_demand_units": "CORE_ON_DEMAND_UNITS",
        }
        given: dict[str, Any] = {}
        for field_name, variable in names.items():
            text = environ.get(variable, "").strip()
            if text:
                try:
                    given[field_name] = int(text)
                except ValueError:
                    raise ConfigError(f"{variable} must be a whole number, not {text!r}") from None
        return cls(**given)

    def capacity(self, input_bytes: int) -> CoreCapacity:
        """The core capacity for a batch of `input_bytes` bytes (the sum of its files, as the gate read them)."""
        units = min(self.max_units, max(self.min_units, math.ceil(max(input_bytes, 0) / self.bytes_per_unit)))
        on_demand = min(units, self.on_demand_units)
        return CoreCapacity(on_demand, units - on_demand)


def batch_bytes(files: Mapping[str, Mapping[str, Any]]) -> int:
    """The bytes of a batch's files as the gate counted them (the execution input's `files`)."""
    return sum(int(file.get("bytes") or 0) for file in files.values())
