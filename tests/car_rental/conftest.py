"""Fixtures of the car-rental tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from tests.car_rental.gate_stack import Stack, moto_stack


@pytest.fixture
def stack() -> Iterator[Stack]:
    """The upload gate's world under moto, fresh for each test."""
    with mock_aws():
        yield moto_stack()
