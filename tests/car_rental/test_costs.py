"""A run's cost and stage times, computed from recorded AWS responses that are checked against botocore's models."""

from __future__ import annotations

import json
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.stub import Stubber
from botocore.validate import ParamValidator

from rental_analytics.car_rental.contract import INSIGHT_QUERIES
from rental_analytics.car_rental.costs import (
    EBS_NOT_COUNTED,
    PriceTable,
    athena_items,
    cluster_items,
    cost_summary,
    crawler_items,
    serverless_items,
    stage_times,
)
from rental_analytics.car_rental.publish import ReportRequest, ReportSettings, publish_report
from rental_analytics.car_rental.report import render_html
from rental_analytics.platform.aws import AwsClients
from rental_analytics.platform.config import ConfigError
from tests.car_rental import usage_responses as R
from tests.car_rental.sample_batch import ATHENA_CSV
from tests.repo import ROOT
from tests.templates import CAR_RENTAL

ENV = json.loads((ROOT / "events" / "env.json").read_text())["PublishReportFunction"]
PRICES = PriceTable.from_env(ENV)
SCANNED = 123_456


@pytest.mark.parametrize(
    ("service", "operation", "response"),
    [
        ("emr", "DescribeCluster", R.DESCRIBE_CLUSTER),
        ("emr", "ListInstances", R.LIST_INSTANCES),
        ("glue", "ListCrawls", R.LIST_CRAWLS),
        ("athena", "GetQueryExecution", R.get_query_execution("q-1", SCANNED)),
        ("stepfunctions", "GetExecutionHistory", R.execution_history()),
        ("emr-serverless", "GetJobRun", R.GET_JOB_RUN),
        ("emr-serverless", "ListJobRuns", R.LIST_JOB_RUNS),
    ],
)
def test_each_recorded_response_has_its_operations_shape(service: str, operation: str, response: dict[str, Any]):
    _check_shape(service, operation, response)


def _check_shape(service: str, operation: str, response: dict[str, Any]) -> None:
    shape = botocore.session.get_session().get_service_model(service).operation_model(operation).output_shape
    report = ParamValidator().validate(response, shape)
    assert not report.has_errors(), report.generate_report()


def test_the_price_table_of_the_stack_is_read_whole_and_refused_when_broken():
    assert PRICES is not None and PRICES.prices_date == ENV["PRICES_DATE"]
    assert PRICES.instances["r6g.2xlarge"].ec2 == pytest.approx(0.4032)
    assert PriceTable.from_env({}) is None  # no table: the usage is reported unpriced
    with pytest.raises(ConfigError):
        PriceTable.from_env({**ENV, "INSTANCE_PRICES": "m5.xlarge:0.192"})


def test_the_cluster_is_priced_per_instance_hour_by_type_and_market():
    items = {i.item: i for i in cluster_items(R.DESCRIBE_CLUSTER, R.LIST_INSTANCES["Instances"], PRICES)}
    hours = 21 / 60  # each instance ran from minute 1 to minute 22
    assert set(items) == {
        "EC2 and EMR, m5.xlarge On-Demand",
        "EC2 and EMR, r6g.2xlarge On-Demand",
        "EC2 and EMR, r7g.2xlarge Spot",
    }  # the unfulfilled Spot request is not billed
    assert items["EC2 and EMR, m5.xlarge On-Demand"].cost == pytest.approx(hours * (0.192 + 0.048))
    assert items["EC2 and EMR, r6g.2xlarge On-Demand"].cost == pytest.approx(hours * (0.4032 + 0.1008))
    # Spot: the EC2 price at the stack's share of On-Demand, the EMR fee in full.
    assert items["EC2 and EMR, r7g.2xlarge Spot"].cost == pytest.approx(hours * (0.4284 * 0.4 + 0.1071))
    assert all(i.quantity == pytest.approx(hours) for i in items.values())


def test_each_instance_is_billed_by_the_whole_second_and_one_minute_at_least():
    # EC2 and EMR bill by the second with a 60-second minimum: a node that ran 20 s costs a minute, one that ran
    # 90.4 s costs 91 s. The recorded instances ran 21 minutes each, above the minimum.
    [primary, core, *_] = R.LIST_INSTANCES["Instances"]
    short = {
        **primary,
        "Status": {**primary["Status"], "Timeline": {"CreationDateTime": R.at(1), "EndDateTime": R.at(1 + 20 / 60)}},
    }
    odd = {
        **core,
        "Status": {**core["Status"], "Timeline": {"CreationDateTime": R.at(1), "EndDateTime": R.at(1 + 90.4 / 60)}},
    }
    _check_shape("emr", "ListInstances", {"Instances": [short, odd]})
    billed = {i.item: i for i in cluster_items(R.DESCRIBE_CLUSTER, [short, odd], PRICES)}
    assert billed["EC2 and EMR, m5.xlarge On-Demand"].quantity == pytest.approx(60 / 3600)
    assert billed["EC2 and EMR, m5.xlarge On-Demand"].cost == pytest.approx(60 / 3600 * (0.192 + 0.048))
    assert billed["EC2 and EMR, r6g.2xlarge On-Demand"].quantity == pytest.approx(91 / 3600)


def test_a_type_missing_from_the_table_is_reported_unpriced_and_the_total_incomplete():
    instances = [{**R.LIST_INSTANCES["Instances"][0], "InstanceType": "x2gd.16xlarge"}]
    [item] = cluster_items(R.DESCRIBE_CLUSTER, instances, PRICES)
    assert item.cost is None
    summary = cost_summary([item], PRICES)
    assert summary["complete"] is False and summary["total"] is None


def test_athena_bills_at_least_10_mb_a_query_and_the_crawler_10_minutes_of_this_runs_crawls():
    queries = [{"name": "small", "statistics": {"DataScannedInBytes": SCANNED}},
               {"name": "large", "statistics": {"DataScannedInBytes": 2 * 10**12}}]  # fmt: skip
    small, large = athena_items(queries, PRICES)
    assert small.quantity == SCANNED and small.cost == pytest.approx(10**7 / 10**12 * 5)
    assert large.cost == pytest.approx(10.0)
    [crawl] = crawler_items(R.LIST_CRAWLS, R.at(-2), PRICES)  # the crawl of a day earlier is not this run's
    assert crawl.quantity == pytest.approx(0.05) and crawl.cost == pytest.approx(10 / 60 * 0.44)


def test_a_serverless_job_run_is_priced_by_its_billed_resources():
    vcpu, memory, storage = serverless_items(R.GET_JOB_RUN, PRICES)
    assert vcpu.quantity == 1.5 and vcpu.cost == pytest.approx(1.5 * 0.052624)
    assert memory.cost == pytest.approx(6.0 * 0.0057785)
    assert storage.cost == 0.0


def test_each_stage_takes_its_time_from_the_history_and_the_clusters_timeline():
    stages = stage_times(R.execution_history()["events"], "cluster", R.at(25) + R.dt.timedelta(seconds=10), R.at(7))
    assert {s["stage"]: s["seconds"] for s in stages} == {
        "queue": 120.0,  # started, then the lock, until the cluster was asked for
        "start": 420.0,  # the cluster's creation to ready
        "Spark": 600.0,  # ready to the step's end
        "stop": 300.0,
        "crawler": 120.0,
        "queries": 60.0,
        "report": 10.0,
    }


def _stubbed(service: str, *responses: tuple[str, dict[str, Any]]) -> Any:
    client = boto3.client(service, region_name="us-east-1")
    stubber = Stubber(client)  # validates each response against the service model as it is added
    for operation, response in responses:
        stubber.add_response(operation, response)
    stubber.activate()
    return client


def test_the_report_states_the_runs_cost_and_stage_times_and_the_history_keeps_them(s3):
    for name, text in ATHENA_CSV.items():
        s3.put_object(Bucket="artifacts", Key=f"athena-results/{name}.csv", Body=text.encode())
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="warnings")["TopicArn"]
    aws = AwsClients(
        s3=s3,
        sns=sns,
        stepfunctions=_stubbed("stepfunctions", ("get_execution_history", R.execution_history())),
        emr=_stubbed("emr", ("describe_cluster", R.DESCRIBE_CLUSTER), ("list_instances", R.LIST_INSTANCES)),
        glue=_stubbed("glue", ("list_crawls", R.LIST_CRAWLS)),
    )
    settings = ReportSettings.from_env({**ENV, "DATA_BUCKET": "data", "WARNING_TOPIC_ARN": topic})
    event = {
        "batch_id": "2024-06-01",
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:car-rental-abc:2024-06-01-0123",
        "cluster": {"ClusterId": R.CLUSTER_ID},
        "insights": [
            {
                "name": name,
                "output": f"s3://artifacts/athena-results/{name}.csv",
                "statistics": R.get_query_execution(name, SCANNED)["QueryExecution"]["Statistics"],
            }
            for name in INSIGHT_QUERIES
        ],
    }

    report = publish_report(ReportRequest.from_event(event), settings, aws)

    summary = json.loads(s3.get_object(Bucket="data", Key="reports/2024-06-01/summary.json")["Body"].read())
    cost = summary["run"]["cost"]
    hours = 21 / 60
    expected = (
        hours * (0.192 + 0.048 + 0.4032 + 0.1008 + 0.4284 * 0.4 + 0.1071)
        + len(INSIGHT_QUERIES) * 10**7 / 10**12 * 5
        + 10 / 60 * 0.44
    )
    assert cost["complete"] is True and cost["total"] == pytest.approx(expected)
    assert cost["prices_date"] == ENV["PRICES_DATE"] and cost["unknown"] == []
    assert cost["not_counted"] == [EBS_NOT_COUNTED]  # and the run is complete all the same
    assert [s["stage"] for s in summary["run"]["stages"]] == [
        "queue", "start", "Spark", "stop", "crawler", "queries", "report"
    ]  # fmt: skip
    assert f"Cost of the run: USD {expected:.4f}" in report["message"]
    assert "Time per stage: queue 2 min 0 s, start 7 min 0 s, Spark 10 min 0 s" in report["message"]
    page = render_html(summary)
    assert "Time and cost" in page and f"${expected:,.4f}" in page
    assert "Not counted: the EBS volumes of the cluster" in page
    [recorded] = json.loads(s3.get_object(Bucket="data", Key="reports/_history/row_counts.json")["Body"].read())
    assert recorded["cost"] == pytest.approx(expected) and recorded["seconds"] > 1600


def test_a_usage_lookup_that_fails_leaves_the_report_and_names_what_is_missing(s3):
    s3.put_object(Bucket="data", Key="reports/2024-06-01/job_outcome.json", Body=b"{}")
    emr = boto3.client("emr", region_name="us-east-1")
    stubber = Stubber(emr)
    stubber.add_client_error("describe_cluster", "AccessDeniedException", "not allowed")
    stubber.activate()
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="warnings")["TopicArn"]
    aws = AwsClients(s3=s3, sns=sns, stepfunctions=None, emr=emr)
    settings = ReportSettings.from_env({**ENV, "DATA_BUCKET": "data", "WARNING_TOPIC_ARN": topic})
    event = {"batch_id": "2024-06-01", "cluster": {"ClusterId": R.CLUSTER_ID},
             "failure": {"state": "Run the Spark job", "error": "States.TaskFailed", "cause": "boom"}}  # fmt: skip

    report = publish_report(ReportRequest.from_event(event), settings, aws)

    summary = json.loads(s3.get_object(Bucket="data", Key="reports/2024-06-01/summary.json")["Body"].read())
    assert summary["status"] == "failed"
    assert summary["run"]["cost"]["complete"] is False
    assert "AccessDeniedException" in summary["run"]["cost"]["unknown"][0]
    assert "Cost of the run:" in report["message"]


def test_the_history_shows_cost_and_time_per_batch_as_a_trend():
    from rental_analytics.car_rental.report import build_summary, history_trend
    from rental_analytics.platform.unusual import UnusualDataRule

    earlier = [
        {"batch_id": "2024-05-30", "counts": {"rental_transactions": 900.0}, "cost": 0.41, "seconds": 1500.0},
        {"batch_id": "2024-05-31", "counts": {"rental_transactions": 950.0}},  # recorded before costs were kept
    ]
    usage = {"mode": "cluster", "stages": [{"stage": "Spark", "seconds": 600.0}],
             "cost": cost_summary(athena_items([{"name": "q", "statistics": {}}], PRICES), PRICES)}  # fmt: skip
    trend = history_trend(earlier, "2024-06-01", {"rental_transactions": 1000.0}, [], UnusualDataRule(), usage)
    assert [(r["batch_id"], r.get("cost"), r.get("seconds")) for r in trend["runs"]] == [
        ("2024-05-30", 0.41, 1500.0),
        ("2024-05-31", None, None),
        ("2024-06-01", pytest.approx(0.00005), 600.0),
    ]
    page = render_html(build_summary("2024-06-01", {"succeeded": True}, {}, [], trend, run=usage))
    assert "Cost per batch in USD" in page and "Minutes per batch" in page


def test_in_serverless_mode_the_report_prices_the_job_run_named_after_the_execution(s3):
    s3.put_object(Bucket="data", Key="reports/2024-06-01/job_outcome.json", Body=b"{}")
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="warnings")["TopicArn"]
    application = R.GET_JOB_RUN["jobRun"]["applicationId"]
    aws = AwsClients(
        s3=s3,
        sns=sns,
        stepfunctions=_stubbed("stepfunctions", ("get_execution_history", {"events": []})),
        emrserverless=_stubbed("emr-serverless", ("list_job_runs", R.LIST_JOB_RUNS), ("get_job_run", R.GET_JOB_RUN)),
    )
    environ = {**ENV, "COMPUTE_MODE": "serverless", "SERVERLESS_APPLICATION_ID": application}
    settings = ReportSettings.from_env({**environ, "DATA_BUCKET": "data", "WARNING_TOPIC_ARN": topic})
    event = {
        "batch_id": "2024-06-01",
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:car-rental-abc:2024-06-01-0123",
        "cluster": {"ClusterId": ""},  # no cluster in serverless mode
        "failure": {"state": "Check the crawler", "error": "CrawlFailed", "cause": "FAILED"},
    }

    publish_report(ReportRequest.from_event(event), settings, aws)

    cost = json.loads(s3.get_object(Bucket="data", Key="reports/2024-06-01/summary.json")["Body"].read())["run"]
    assert cost["mode"] == "serverless"
    assert cost["cost"]["total"] == pytest.approx(1.5 * 0.052624 + 6.0 * 0.0057785)
    assert cost["cost"]["not_counted"] == []  # the billed resources are all of it (1 minute a worker at least)
    assert [i["item"] for i in cost["cost"]["items"]][:3] == [
        "EMR Serverless vCPU", "EMR Serverless memory", "EMR Serverless storage"
    ]  # fmt: skip


def test_a_compute_mode_the_report_step_does_not_know_fails_at_start():
    with pytest.raises(ConfigError, match="COMPUTE_MODE"):
        ReportSettings.from_env({**ENV, "COMPUTE_MODE": "kubernetes"})


def test_a_cluster_ended_on_the_failure_path_has_its_stop_time_too():
    events = [
        {**e, "stateEnteredEventDetails": {"name": "Terminate the cluster after the failure"}}
        if e.get("stateEnteredEventDetails", {}).get("name") == "Terminate the cluster"
        else {**e, "stateExitedEventDetails": {"name": "Terminate the cluster after the failure"}}
        if e.get("stateExitedEventDetails", {}).get("name") == "Terminate the cluster"
        else e
        for e in R.execution_history()["events"]
    ]
    stages = {s["stage"]: s["seconds"] for s in stage_times(events, "cluster", R.at(26), R.at(7))}
    assert stages["stop"] == 300.0


def _left_running() -> tuple[dict[str, Any], dict[str, Any]]:
    """A cluster that did not terminate (WAITING, no end anywhere) and its instances, as EMR answers then."""
    cluster = {**R.DESCRIBE_CLUSTER["Cluster"]}
    cluster["Status"] = {"State": "WAITING", "Timeline": {"CreationDateTime": R.at(0), "ReadyDateTime": R.at(7)}}
    instances = []
    for instance in R.LIST_INSTANCES["Instances"]:
        timeline = {k: v for k, v in instance["Status"]["Timeline"].items() if k != "EndDateTime"}
        instances.append({**instance, "Status": {"State": "RUNNING", "Timeline": timeline}})
    return {"Cluster": cluster}, {"Instances": instances}


@pytest.mark.parametrize("mode", ["cluster", "serverless"])
def test_compute_still_billing_at_report_time_is_counted_so_far_and_never_complete(mode: str):
    from rental_analytics.car_rental.publish import run_usage
    from rental_analytics.car_rental.report import run_totals

    execution = "arn:aws:states:us-east-1:123456789012:execution:car-rental-abc:2024-06-01-0123"
    history = ("get_execution_history", {"events": []})
    if mode == "cluster":
        described, instances = _left_running()
        emr = _stubbed("emr", ("describe_cluster", described), ("list_instances", instances))
        aws = AwsClients(s3=None, sns=None, stepfunctions=_stubbed("stepfunctions", history), emr=emr)
        environ = ENV
    else:
        run = {k: v for k, v in R.GET_JOB_RUN["jobRun"].items() if k not in ("billedResourceUtilization", "endedAt")}
        cancelling = {"jobRun": {**run, "state": "CANCELLING"}}
        runs = {"jobRuns": [{**j, "state": "CANCELLING"} for j in R.LIST_JOB_RUNS["jobRuns"]]}
        serverless = _stubbed("emr-serverless", ("list_job_runs", runs), ("get_job_run", cancelling))
        aws = AwsClients(s3=None, sns=None, stepfunctions=_stubbed("stepfunctions", history), emrserverless=serverless)
        environ = {**ENV, "COMPUTE_MODE": "serverless", "SERVERLESS_APPLICATION_ID": run["applicationId"]}
    settings = ReportSettings.from_env({**environ, "DATA_BUCKET": "data", "WARNING_TOPIC_ARN": "arn:topic"})
    timed_out = {"state": "Run the Spark job", "error": "States.Timeout", "cause": "the Spark job's bound"}
    request = ReportRequest.from_event({"batch_id": "2024-06-01", "execution_arn": execution, "failure": timed_out,
                                        "cluster": {"ClusterId": R.CLUSTER_ID if mode == "cluster" else ""}})  # fmt: skip

    usage = run_usage(request, settings, aws, R.at(60))

    cost = usage["cost"]
    assert cost["complete"] is False and cost["total"] > 0
    assert ["still" in u for u in cost["unknown"]] == [True]
    assert run_totals(usage)["cost"] is None  # not in the trend as a cheap run


@pytest.mark.parametrize(
    "typo",
    [{"INSTANCE_PRICES": "m5.xlarge:0.192"}, {"INSTANCE_PRICES": "m5.xlarge:1:1,m5.xlarge:2:2"},
     {"SERVERLESS_PRICES": "0.05.2:1:1"}, {"SPOT_PRICE_SHARE": "lots"}],
)  # fmt: skip
def test_a_price_table_that_does_not_parse_leaves_the_report_written_and_the_cost_unknown(s3, typo):
    s3.put_object(Bucket="data", Key="reports/2024-06-01/job_outcome.json", Body=b"{}")
    sns = boto3.client("sns")
    topic = sns.create_topic(Name="warnings")["TopicArn"]
    aws = AwsClients(s3=s3, sns=sns, stepfunctions=None)
    settings = ReportSettings.from_env({**ENV, **typo, "DATA_BUCKET": "data", "WARNING_TOPIC_ARN": topic})
    event = {"batch_id": "2024-06-01", "cluster": {"ClusterId": ""},
             "failure": {"state": "Run the Spark job", "error": "States.TaskFailed", "cause": "boom"}}  # fmt: skip

    publish_report(ReportRequest.from_event(event), settings, aws)

    cost = json.loads(s3.get_object(Bucket="data", Key="reports/2024-06-01/summary.json")["Body"].read())["run"]["cost"]
    assert (cost["complete"], cost["total"]) == (False, None)
    assert [u.startswith("the price table: ") for u in cost["unknown"]] == [True]


# docs/deployment.md's table, row by row: the serverless job's assumed workers (a driver and two executors of
# 4 vCPUs and 16 GB) and the minutes each is billed, as the text above the table states them.
_SERVERLESS_MINUTES = {"20,000": 1.6, "1M": 1.6, "10M": 2.0}
_STEP_FUNCTIONS = 40 * 0.025 / 1000  # about 40 state transitions at $0.025 per 1,000


def _rounded(value: float, digits: int) -> float:
    return float(Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def _table_rows() -> list[list[str]]:
    text = (ROOT / "docs" / "deployment.md").read_text().split("### Time to insights and cost per batch")[1]
    rows = [line.split("|")[1:-1] for line in text.splitlines() if re.match(r"\| (20,000|1M|10M)", line)]
    return [[cell.strip() for cell in row] for row in rows]


def test_the_deployment_guides_cost_table_is_what_the_report_computes_rounded_as_it_says():
    defaults = {name: str(p.get("Default", "")) for name, p in CAR_RENTAL.parameters.items()}
    prices = PriceTable.from_env({
        "PRICES_DATE": defaults["PricesDate"], "INSTANCE_PRICES": defaults["InstancePrices"],
        "SPOT_PRICE_SHARE": defaults["SpotPriceShare"], "ATHENA_PRICE_PER_TB": defaults["AthenaPricePerTB"],
        "CRAWLER_PRICE_PER_DPU_HOUR": defaults["CrawlerPricePerDpuHour"], "SERVERLESS_PRICES": defaults["ServerlessPrices"],
    })  # fmt: skip
    crawl = {"Crawls": [{"StartTime": R.at(0), "DPUHour": 0.05}]}  # under the 10-minute minimum
    queries = [{"name": n, "statistics": {"DataScannedInBytes": 1000}} for n in INSIGHT_QUERIES]  # 10 MB each
    parts = (
        sum(i.cost or 0.0 for i in crawler_items(crawl, None, prices)),
        sum(i.cost or 0.0 for i in athena_items(queries, prices)),
        _STEP_FUNCTIONS,
    )
    other = sum(parts)
    rows = _table_rows()
    assert len(rows) == 6
    for rentals, mode, stages, time, compute_text, other_text, per_batch in rows:
        size = rentals.split(" ")[0]
        minutes = [float(m) for m in stages.removesuffix(" min").split(" + ")]
        assert time == f"**about {_rounded(sum(minutes), 0):.0f} min**", (size, mode)
        if mode == "`cluster`":
            used = sum(minutes[1:4])  # start, Spark and stop: the cluster's life
            primary, core, *_ = R.LIST_INSTANCES["Instances"]
            nodes = [
                {**n, "Status": {**n["Status"], "Timeline": {"CreationDateTime": R.at(0), "EndDateTime": R.at(used)}}}
                for n in (primary, core)
            ]
            compute = sum(i.cost or 0.0 for i in cluster_items(R.DESCRIBE_CLUSTER, nodes, prices))
        else:
            hours = 3 * _SERVERLESS_MINUTES[size] / 60
            billed = {"vCPUHour": 4 * hours, "memoryGBHour": 16 * hours, "storageGBHour": 0.0}
            job_run = {"jobRun": {**R.GET_JOB_RUN["jobRun"], "billedResourceUtilization": billed}}
            compute = sum(i.cost or 0.0 for i in serverless_items(job_run, prices))
        shown = re.findall(r"\$([0-9.]+)$", compute_text)[0]
        assert float(shown) == _rounded(compute, len(shown.split(".")[1])), (size, mode, compute)
        shown_parts = [s.removeprefix("$") for s in other_text.split(" + ")]
        expected = parts if len(shown_parts) == 3 else (other,)  # crawler + Athena + Step Functions, or their sum
        assert [float(s) for s in shown_parts] == [
            _rounded(v, len(s.split(".")[1])) for v, s in zip(expected, shown_parts)
        ], (size, mode, expected)
        assert per_batch == f"**about ${_rounded(compute + other, 2):.2f}**", (size, mode, compute + other)


def _usage_of(environ: dict[str, str], event: dict[str, Any], aws: AwsClients) -> dict[str, Any]:
    from rental_analytics.car_rental.publish import run_usage

    settings = ReportSettings.from_env({**environ, "DATA_BUCKET": "data", "WARNING_TOPIC_ARN": "arn:topic"})
    return run_usage(ReportRequest.from_event({"batch_id": "2024-06-01", **event}), settings, aws, R.at(60))


EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:car-rental-abc:2024-06-01-0123"
SPARK_FAILED = {"state": "Run the Spark job", "error": "EMR.StepFailed", "cause": "the job failed"}


def test_a_run_is_priced_by_the_compute_mode_it_ran_in_not_the_stacks_mode_now():
    # Started as a serverless run; the stack (and so the report function) was switched to cluster mode since.
    application = R.GET_JOB_RUN["jobRun"]["applicationId"]
    serverless = _stubbed("emr-serverless", ("list_job_runs", R.LIST_JOB_RUNS), ("get_job_run", R.GET_JOB_RUN))
    history = _stubbed("stepfunctions", ("get_execution_history", {"events": []}))
    aws = AwsClients(s3=None, sns=None, stepfunctions=history, emrserverless=serverless)
    event = {"execution_arn": EXECUTION, "cluster": {"ClusterId": ""}, "failure": SPARK_FAILED,
             "compute": {"mode": "serverless", "application_id": application}}  # fmt: skip

    usage = _usage_of(ENV, event, aws)

    assert usage["mode"] == "serverless"
    assert usage["cost"]["total"] == pytest.approx(1.5 * 0.052624 + 6.0 * 0.0057785)
    assert usage["cost"]["complete"] is True


def test_a_run_whose_compute_started_but_cannot_be_found_is_never_complete():
    started = {"events": [
        {"id": 1, "type": "ExecutionStarted", "timestamp": R.at(0)},
        {"id": 2, "type": "TaskStateEntered", "timestamp": R.at(1),
         "stateEnteredEventDetails": {"name": "Run the Spark job on EMR Serverless"}},
    ]}  # fmt: skip
    none_listed = _stubbed("emr-serverless", ("list_job_runs", {"jobRuns": []}))
    history = _stubbed("stepfunctions", ("get_execution_history", started))
    aws = AwsClients(s3=None, sns=None, stepfunctions=history, emrserverless=none_listed)
    event = {"execution_arn": EXECUTION, "cluster": {"ClusterId": ""}, "failure": SPARK_FAILED,
             "compute": {"mode": "serverless", "application_id": "00fapp"}}  # fmt: skip

    cost = _usage_of(ENV, event, aws)["cost"]

    assert cost["complete"] is False
    assert any("none of it could be found" in u for u in cost["unknown"])


@pytest.mark.parametrize(
    "billed",
    [None, {"vCPUHour": 0.5}],
    ids=["no billed figures", "only the vCPU-hours"],
)
def test_an_ended_job_run_without_its_billed_figures_is_not_priced_as_complete(billed: dict[str, float] | None):
    run = {k: v for k, v in R.GET_JOB_RUN["jobRun"].items() if k != "billedResourceUtilization"}
    if billed is not None:
        run["billedResourceUtilization"] = billed
    serverless = _stubbed("emr-serverless", ("list_job_runs", R.LIST_JOB_RUNS), ("get_job_run", {"jobRun": run}))
    history = _stubbed("stepfunctions", ("get_execution_history", {"events": []}))
    aws = AwsClients(s3=None, sns=None, stepfunctions=history, emrserverless=serverless)
    event = {"execution_arn": EXECUTION, "cluster": {"ClusterId": ""}, "failure": SPARK_FAILED,
             "compute": {"mode": "serverless", "application_id": run["applicationId"]}}  # fmt: skip

    cost = _usage_of(ENV, event, aws)["cost"]

    assert cost["complete"] is False
    assert any("ended without its billed" in u for u in cost["unknown"])
    # the total use (without the minimum per worker) does not stand in for what was billed
    assert cost["items"][0]["quantity"] == (0.5 if billed else 0.0)
