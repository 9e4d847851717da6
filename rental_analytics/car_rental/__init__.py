"""The car-rental pipeline: row rules, analytics tables and the Spark job."""
