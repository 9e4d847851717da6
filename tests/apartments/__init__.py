"""Tests of the apartments pipeline."""
