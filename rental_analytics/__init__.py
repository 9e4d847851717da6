"""Rental marketplace analytics: the core package shared by the CLI, Lambda functions and Spark jobs."""
