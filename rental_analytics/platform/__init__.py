"""What both pipelines run on: AWS clients, settings, progress, Spark, file system, code shipping, unusual data."""
