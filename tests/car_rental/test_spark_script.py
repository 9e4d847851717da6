"""The EMR step entry point runs the same core job and exits 1 when the batch fails."""

from __future__ import annotations

import pytest

from spark_scripts.car_rental_job import main, parse_args
from tests.car_rental import sample_batch

pytestmark = pytest.mark.spark


def test_arguments_become_a_job():
    job = parse_args(["--input", "s3://b/raw/x/", "--output", "s3://b", "--batch-id", "x", "--max-reject-rate", "0.2"])
    assert (job.input_dir, job.output_dir, job.batch_id, job.max_reject_rate) == ("s3://b/raw/x/", "s3://b", "x", 0.2)
    assert job.path("analytics", "daily_metrics") == "s3://b/analytics/daily_metrics"


def test_exit_code_follows_the_batch(spark, write_batch, tmp_path):
    batch = str(write_batch(sample_batch.files()))
    common = ["--input", batch, "--output", str(tmp_path / "out"), "--batch-id", "b1"]
    assert main([*common, "--max-reject-rate", "0.5"]) == 0
    assert main([*common, "--max-reject-rate", "0.1"]) == 1  # 1 of 5 rows is rejected
