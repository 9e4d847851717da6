"""The apartments pipeline: JDBC extract from MySQL, data quality, and the SCD2 dimensional model."""
