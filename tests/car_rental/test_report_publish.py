"""The page the report step writes in AWS (moto): the trend against earlier batches and the currency setting."""

from __future__ import annotations

import json

from rental_analytics.car_rental.publish import ReportRequest, ReportSettings, publish_report
from tests.car_rental.test_publish import ATHENA_CSV, _event, _report_aws
from tests.html_page import assert_inert


def _page(s3, batch: str) -> str:
    return s3.get_object(Bucket="data", Key=f"reports/{batch}/report.html")["Body"].read().decode()


def test_the_page_in_aws_shows_the_batch_against_the_history_and_the_warning(s3):
    for name, text in ATHENA_CSV.items():
        s3.put_object(Bucket="artifacts", Key=f"athena-results/{name}.csv", Body=text.encode())
    aws, settings = _report_aws(s3)
    for day, rows in enumerate([1000, 1040, 980, 1010, 990, 60], start=1):
        batch = f"2024-06-{day:02d}"
        outcome = {
            "succeeded": True,
            "transaction_rows": rows,
            "valid_transactions": rows,
            "reference_rows": {"users": 200},
        }
        s3.put_object(Bucket="data", Key=f"reports/{batch}/job_outcome.json", Body=json.dumps(outcome).encode())
        report = publish_report(ReportRequest.from_event({**_event(), "batch_id": batch}), settings, aws)

    first = assert_inert(_page(s3, "2024-06-01")).text
    assert "0 earlier batch(es) on record; the counts are judged once 5 exist." in first
    text = assert_inert(_page(s3, "2024-06-06")).text
    assert "Unusual row counts: " + report["warnings"][0] in text
    assert "rental_transactions 60 1,004 980 to 1,040" in text and "Rental rows per batch" in text
    summary = json.loads(s3.get_object(Bucket="data", Key="reports/2024-06-06/summary.json")["Body"].read())
    assert [run["batch_id"] for run in summary["trend"]["runs"]] == [f"2024-06-{d:02d}" for d in range(1, 7)]


def test_the_currency_is_read_from_the_environment():
    env = {"DATA_BUCKET": "data", "WARNING_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:w"}
    assert ReportSettings.from_env(env).currency == "USD"
    assert ReportSettings.from_env({**env, "REPORT_CURRENCY": "EUR"}).currency == "EUR"
