"""Benchmarks and the DuckDB reference implementation they compare against."""
