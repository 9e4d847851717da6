"""The root SAM template and the pipeline stacks it nests, read as plain data for the tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.repo import ROOT


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads `!Ref`, `!Sub` and the other short forms as plain values."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _tag)


@dataclass(frozen=True)
class Template:
    """One template file and its parsed body."""

    path: Path
    body: dict[str, Any]

    @property
    def resources(self) -> dict[str, Any]:
        return self.body["Resources"]

    @property
    def parameters(self) -> dict[str, Any]:
        return self.body.get("Parameters", {})

    @property
    def outputs(self) -> dict[str, Any]:
        return self.body.get("Outputs", {})

    def of_type(self, resource_type: str) -> dict[str, Any]:
        """Name -> properties of every resource of one type."""
        return {n: r.get("Properties", {}) for n, r in self.resources.items() if r["Type"] == resource_type}


def load(relative: str) -> Template:
    path = ROOT / relative
    return Template(path, yaml.load(path.read_text(), Loader=_CloudFormationLoader))


ROOT_STACK = load("template.yaml")
CAR_RENTAL = load("stacks/car_rental.yaml")
APARTMENTS = load("stacks/apartments.yaml")
ALL = (ROOT_STACK, CAR_RENTAL, APARTMENTS)
