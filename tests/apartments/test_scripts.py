"""The Glue entry scripts run the core jobs on the real MariaDB and exit 1 on a breach or an old load date."""

from __future__ import annotations

from pathlib import Path

import pytest

from rental_analytics.apartments.generate import MarketplaceOptions, generate_marketplace
from spark_scripts import apartments_extract, apartments_quality, apartments_transform

pytestmark = [pytest.mark.spark, pytest.mark.databases]


def test_the_scripts_run_a_load_date_and_fail_as_they_should(spark, source, tmp_path: Path, capsys):
    generate_marketplace(source, MarketplaceOptions(apartments=80))
    out = str(tmp_path)
    url = str(source)  # the server takes no password
    day = ["--output", out, "--load-date", "2024-06-02"]
    glue_extras = ["--JOB_NAME", "RDS_TO_S3_job", "--job-bookmark-option", "job-bookmark-disable"]
    assert apartments_extract.main([*day, "--mysql-url", url, *glue_extras]) == 0
    assert apartments_quality.main([*day, "--run-id", "r1"]) == 0
    assert apartments_transform.main(day) == 0
    assert (tmp_path / "curated" / "fact_bookings").is_dir()

    assert apartments_quality.main([*day, "--min-completeness", "1.0"]) == 1
    printed = capsys.readouterr().out
    assert "Data Quality Breach: " in printed and "completeness is 99.5833% (1 of 240 rows fail)" in printed
    older = ["--output", out, "--load-date", "2024-06-01"]
    assert apartments_extract.main([*older, "--mysql-url", url]) == 0
    assert apartments_quality.main(older) == 0
    assert apartments_transform.main(older) == 1
    assert "cannot be applied" in capsys.readouterr().out


def test_quality_arguments_become_rules():
    args = apartments_quality.parse_args(["--output", "s3://b", "--min-accuracy", "0.95", "--statuses", "active, sold"])
    rules = apartments_quality.rules_from(args)
    assert rules.thresholds == {"completeness": 0.99, "accuracy": 0.95, "consistency": 0.99}
    assert rules.statuses == ("active", "sold")
