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
    assert apartments_extract.main([*day, "--mysql-url", url, "--mysql-driver", "mariadb", *glue_extras]) == 0
    assert apartments_quality.main([*day, "--run-id", "r1"]) == 0
    assert apartments_transform.main(day) == 0
    assert (tmp_path / "curated" / "fact_bookings").is_dir()

    assert apartments_quality.main([*day, "--min-completeness", "1.0"]) == 1
    printed = capsys.readouterr().out
    assert "Data Quality Breach: " in printed and "completeness is 99.5833% (1 of 240 rows fail)" in printed
    older = ["--output", out, "--load-date", "2024-06-01"]
    assert apartments_extract.main([*older, "--mysql-url", url, "--mysql-driver", "mariadb"]) == 1
    assert apartments_transform.main(older) == 1
    assert capsys.readouterr().out.count("2024-06-01 is older and cannot be applied") == 2


def test_the_extract_is_told_its_driver_and_fails_at_start_without_it(spark, source, tmp_path: Path, capsys):
    # Glue 5.0 has Oracle's Connector/J and not MariaDB's; here it is the other way round. Either way a driver
    # the runtime lacks stops the job in one line before anything is read or written.
    generate_marketplace(source, MarketplaceOptions(apartments=5))
    day = ["--output", str(tmp_path), "--load-date", "2024-06-02", "--mysql-url", str(source)]
    with pytest.raises(SystemExit):
        apartments_extract.parse_args(day)  # no default: where the job runs decides
    capsys.readouterr()

    assert apartments_extract.main([*day, "--mysql-driver", "mysql-connector-j"]) == 2
    printed = capsys.readouterr().out
    assert "com.mysql.cj.jdbc.Driver is not on the classpath; pass --mysql-driver" in printed
    assert "Traceback" not in printed
    assert not (tmp_path / "raw").exists()


def test_the_glue_extract_reads_the_secret_with_connector_j():
    import json

    import boto3
    from moto import mock_aws

    from rental_analytics.apartments.job_args import source_url
    from rental_analytics.platform import aws

    with mock_aws():
        secret = {"username": "etl", "password": "pw", "host": "aurora.internal", "port": 3306, "dbname": "market"}
        arn = boto3.client("secretsmanager").create_secret(Name="source", SecretString=json.dumps(secret))["ARN"]
        aws.clients.cache_clear()  # the process's clients, made inside the mock
        args = apartments_extract.parse_args(
            ["--output", "s3://data", "--source-secret-id", arn, "--mysql-driver", "mysql-connector-j"]
        )
        url = source_url(args)
        aws.clients.cache_clear()
    assert (url.jdbc_url, url.driver_class) == (
        "jdbc:mysql://aurora.internal:3306/market?useCursorFetch=true&connectTimeout=30000&socketTimeout=3600000",
        "com.mysql.cj.jdbc.Driver",
    )


def test_quality_arguments_become_rules():
    args = apartments_quality.parse_args(["--output", "s3://b", "--min-accuracy", "0.95", "--statuses", "active, sold"])
    rules = apartments_quality.rules_from(args)
    assert rules.thresholds == {"completeness": 0.99, "accuracy": 0.95, "consistency": 0.99}
    assert rules.statuses == ("active", "sold")
