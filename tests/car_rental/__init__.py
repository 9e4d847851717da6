"""Tests of the car-rental pipeline."""
