"""Tests of what both pipelines share."""
