"""The report step and the code shipping, against moto's S3: files written, notification composed, versions kept."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from rental_analytics.car_rental.contract import INSIGHT_QUERIES
from rental_analytics.car_rental.publish import ReportRequest, ReportSettings, parse_athena_csv, publish_report
from rental_analytics.platform.aws import AwsClients
from rental_analytics.platform.config import ConfigError
from tests.car_rental.sample_batch import ATHENA_CSV
from tests.lambda_handlers import FakeContext, load_handler
from tests.repo import ROOT


def _report_aws(s3: Any) -> tuple[AwsClients, ReportSettings]:
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="warnings")["TopicArn"]
    return AwsClients(s3=s3, stepfunctions=None, sns=sns), ReportSettings("data", topic)


def _sent(topic_arn: str) -> list[tuple[str, str]]:
    from moto.sns.models import sns_backends

    topic = sns_backends["123456789012"]["us-east-1"].topics[topic_arn]
    return [(subject, message) for _, message, subject, *_ in topic.sent_notifications]


def _event() -> dict[str, Any]:
    return {
        "batch_id": "2024-06-01",
        "insights": [{"name": n, "output": f"s3://artifacts/athena-results/{n}.csv"} for n in INSIGHT_QUERIES],
    }


def test_the_report_is_written_from_the_athena_results(s3):
    for name, text in ATHENA_CSV.items():
        s3.put_object(Bucket="artifacts", Key=f"athena-results/{name}.csv", Body=text.encode())
    outcome = {"succeeded": True, "message": "4 of 5 rentals accepted", "valid_transactions": 4,
               "transaction_rows": 5, "rejected_by_reason": {"unknown_location": 1}}  # fmt: skip
    s3.put_object(Bucket="data", Key="reports/2024-06-01/job_outcome.json", Body=json.dumps(outcome).encode())
    manifest = {"files": {"users": {"key": "raw/2024-06-01/users.csv", "verdict": {"file": "raw/2024-06-01/users.csv", "accepted": True}}}}  # fmt: skip
    s3.put_object(Bucket="data", Key="staged/2024-06-01/run-1/_manifest.json", Body=json.dumps(manifest).encode())
    aws, settings = _report_aws(s3)

    event = {**_event(), "input_path": "s3://data/staged/2024-06-01/run-1/"}
    report = publish_report(ReportRequest.from_event(event), settings, aws)

    summary = json.loads(s3.get_object(Bucket="data", Key="reports/2024-06-01/summary.json")["Body"].read())
    assert summary["status"] == "succeeded"
    assert summary["top_locations"][0]["location_id"] == "L1" and summary["top_locations"][0]["total_revenue"] == 150.01
    assert summary["most_rented_vehicle_type"]["vehicle_type"] == "SUV"
    assert summary["files"] == [{"file": "raw/2024-06-01/users.csv", "accepted": True}]
    page = s3.get_object(Bucket="data", Key="reports/2024-06-01/report.html")["Body"].read().decode()
    assert "<svg" in page
    copied = s3.get_object(Bucket="data", Key="reports/2024-06-01/insights/top_spending_users.csv")["Body"].read()
    assert copied.decode() == ATHENA_CSV["top_spending_users"]
    assert report["subject"] == "Rental analytics: batch 2024-06-01 succeeded"
    assert "Airport (L1): 150.01 from 2 rentals" in report["message"]
    assert "unknown_location 1" in report["message"] and "Ama" not in report["message"]
    assert (report["rows_rejected"], report["rows_accepted"]) == (1, 4)


def test_a_missing_result_fails_the_report(s3):
    aws, settings = _report_aws(s3)
    with pytest.raises(FileNotFoundError, match="top_revenue_locations"):
        publish_report(ReportRequest.from_event(_event()), settings, aws)


@pytest.mark.parametrize(
    "event",
    [
        {"batch_id": "../x", "insights": []},
        {"batch_id": "b1", "insights": [{"name": "top_revenue_locations", "output": "s3://a/b"}]},
        {"batch_id": "b1", "insights": [{"name": n, "output": "/local/path"} for n in INSIGHT_QUERIES]},
        {**_event(), "input_path": "/etc/"},
    ],
)
def test_a_malformed_request_is_refused(event):
    with pytest.raises(ConfigError):
        ReportRequest.from_event(event)


def test_athena_csv_values_come_back_typed():
    rows = parse_athena_csv('"a","b","c","d"\n"7","1.50","x",""\n')
    assert rows == [{"a": 7, "b": pytest.approx(1.5), "c": "x", "d": None}]


def test_the_report_handler_runs_the_sample_event(s3, monkeypatch: pytest.MonkeyPatch):
    event = json.loads((ROOT / "events" / "publish_report.json").read_text())
    bucket = json.loads((ROOT / "events" / "env.json").read_text())["PublishReportFunction"]["DATA_BUCKET"]
    s3.create_bucket(Bucket=bucket)
    for item in event["insights"]:
        results_bucket, key = item["output"].removeprefix("s3://").split("/", 1)
        if results_bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
            s3.create_bucket(Bucket=results_bucket)
        s3.put_object(Bucket=results_bucket, Key=key, Body=ATHENA_CSV[item["name"]].encode())
    topic = boto3.client("sns").create_topic(Name="warnings")["TopicArn"]
    app = load_handler("publish_report", monkeypatch, DATA_BUCKET=bucket, WARNING_TOPIC_ARN=topic)

    report = app.lambda_handler(event, FakeContext())

    assert report["summary"] == f"s3://{bucket}/reports/2024-06-01/summary.json"
    assert s3.get_object(Bucket=bucket, Key="reports/2024-06-01/report.html")["ContentLength"] > 0


def test_a_batch_far_from_its_history_sends_one_warning(s3):
    for name, text in ATHENA_CSV.items():
        s3.put_object(Bucket="artifacts", Key=f"athena-results/{name}.csv", Body=text.encode())
    aws, settings = _report_aws(s3)
    for day, rows in enumerate([1000, 1040, 980, 1010, 990, 1020, 60], start=1):
        batch = f"2024-06-{day:02d}"
        outcome = {"succeeded": True, "transaction_rows": rows, "reference_rows": {"users": 200}}
        s3.put_object(Bucket="data", Key=f"reports/{batch}/job_outcome.json", Body=json.dumps(outcome).encode())
        event = {**_event(), "batch_id": batch}
        report = publish_report(ReportRequest.from_event(event), settings, aws)
    again = publish_report(ReportRequest.from_event(event), settings, aws)  # a re-run of the odd batch

    [(subject, message)] = _sent(settings.warning_topic_arn)[:1]
    assert subject == "Rental analytics WARNING: unusual row counts in batch 2024-06-07"
    assert "rental_transactions: 60 rows, expected about 1,007" in message
    assert "s3://data/raw/2024-06-07/" in message
    assert report["warnings"] == again["warnings"] and len(report["warnings"]) == 1
    history = json.loads(s3.get_object(Bucket="data", Key="reports/_history/row_counts.json")["Body"].read())
    assert [run["batch_id"] for run in history] == [f"2024-06-{d:02d}" for d in range(1, 8)]


FAILED_EVENT = json.loads((ROOT / "events" / "publish_failure_report.json").read_text())


def _failure_event(state: str, error: str = "States.TaskFailed", cause: str = "it broke") -> dict[str, Any]:
    return {"batch_id": "2024-06-01", "failure": {"state": state, "error": error, "cause": cause}}


def _summary(s3: Any) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket="data", Key="reports/2024-06-01/summary.json")["Body"].read())


def test_a_batch_the_spark_job_failed_gets_its_page_with_the_jobs_reason(s3):
    outcome = {"succeeded": False, "transaction_rows": 100, "valid_transactions": 90,
               "rejected_by_reason": {"bad_amount": 10}, "reject_rate": 0.1, "max_reject_rate": 0.01,
               "message": "10 of 100 transaction rows were rejected (10.00%), above max_reject_rate 1.00%"}  # fmt: skip
    s3.put_object(Bucket="data", Key="reports/2024-06-01/job_outcome.json", Body=json.dumps(outcome).encode())
    aws, settings = _report_aws(s3)

    report = publish_report(ReportRequest.from_event(_failure_event("Run the Spark job")), settings, aws)

    summary = _summary(s3)
    assert (summary["status"], summary["failed_state"]) == ("failed", "Run the Spark job")
    assert summary["message"] == outcome["message"]
    assert summary["transactions"]["rejected_by_reason"] == {"bad_amount": 10}
    page = s3.get_object(Bucket="data", Key="reports/2024-06-01/report.html")["Body"].read().decode()
    assert "above max_reject_rate" in page
    assert report["subject"] == "Rental analytics: batch 2024-06-01 failed"
    # A failed run is not part of the history the unusual-data rule compares with.
    assert "Contents" not in s3.list_objects_v2(Bucket="data", Prefix="reports/_history/")


def test_a_batch_whose_crawler_failed_says_the_analytics_were_published(s3):
    outcome = {"succeeded": True, "message": "4 of 5 transaction rows accepted", "transaction_rows": 5}
    s3.put_object(Bucket="data", Key="reports/2024-06-01/job_outcome.json", Body=json.dumps(outcome).encode())
    aws, settings = _report_aws(s3)

    event = _failure_event("Check the crawler", "CrawlFailed", "The crawler ended with status FAILED")
    publish_report(ReportRequest.from_event(event), settings, aws)

    summary = _summary(s3)
    assert summary["status"] == "failed"
    assert summary["message"] == (
        "the Spark job succeeded (4 of 5 transaction rows accepted), but the run failed in the state "
        "'Check the crawler': CrawlFailed: The crawler ended with status FAILED"
    )


def test_a_batch_that_never_reached_spark_gets_a_page_naming_the_state(s3):
    aws, settings = _report_aws(s3)
    cause = "Rate exceeded\n(Service: AmazonElasticMapReduce)" + "x" * 40_000
    event = _failure_event("Create the cluster", "EMR.AmazonElasticMapReduceException", cause)

    report = publish_report(ReportRequest.from_event(event), settings, aws)

    summary = _summary(s3)
    assert summary["message"].startswith(
        "the run failed in the state 'Create the cluster': EMR.AmazonElasticMapReduceException: Rate exceeded "
        "(Service: AmazonElasticMapReduce)"
    )
    assert len(summary["message"]) < 2200 and "\n" not in summary["message"]
    assert report["message"].startswith("Batch 2024-06-01: FAILED. the run failed in the state 'Create the cluster'")


def test_the_failure_alert_shows_a_cause_from_data_on_one_printable_line(s3):
    # A location or file name carried into an error message: its line break and escape must not start a line.
    aws, settings = _report_aws(s3)
    cause = "no location 'Airport\nACCEPTED users.csv' \x1b[2J\u2028done"
    event = _failure_event("Run the Spark job", "States.TaskFailed\x1b[31m", cause)

    report = publish_report(ReportRequest.from_event(event), settings, aws)

    assert report["alert"] == (
        "Car-rental batch 2024-06-01 failed in the state: Run the Spark job. Error: States.TaskFailed\\x1b[31m. "
        "Cause: no location 'Airport ACCEPTED users.csv' \\x1b[2J done. "
        "The report: s3://data/reports/2024-06-01/report.html."
    )


def test_the_failure_sample_event_is_a_valid_request():
    request = ReportRequest.from_event(FAILED_EVENT)
    assert request.failure is not None and request.failure.state == "Run the Spark job" and request.results == {}


def test_a_failure_that_is_not_an_object_is_refused():
    with pytest.raises(ConfigError, match="failure"):
        ReportRequest.from_event({"batch_id": "b1", "failure": "Run the Spark job"})
