"""The report step in AWS: read the Athena results, write summary.json and report.html, compose the notification."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rental_analytics.car_rental.contract import BATCH_ID_PATTERN, INSIGHT_QUERIES, MANIFEST_NAME
from rental_analytics.car_rental.costs import (
    COMPUTE_MODES,
    EBS_NOT_COUNTED,
    CostItem,
    PriceTable,
    athena_items,
    cluster_items,
    cost_summary,
    crawler_items,
    serverless_items,
    stage_times,
    still_billing,
    unbilled,
)
from rental_analytics.car_rental.insights import neutralised_csv
from rental_analytics.car_rental.report import (
    Failure,
    build_summary,
    failed_outcome,
    history_trend,
    notification_lines,
    run_totals,
    safe_html,
)
from rental_analytics.platform.aws import AwsClients, read_text
from rental_analytics.platform.config import ConfigError, require_env
from rental_analytics.platform.html_report import DEFAULT_CURRENCY
from rental_analytics.platform.unusual import UnusualDataRule, check_all

HISTORY_KEY = "reports/_history/row_counts.json"


@dataclass(frozen=True)
class ReportSettings:
    """The data bucket (job outcomes, gate verdicts, reports), the topic for warnings, the report's currency."""

    data_bucket: str
    warning_topic_arn: str
    rule: UnusualDataRule = field(default_factory=UnusualDataRule)
    currency: str = DEFAULT_CURRENCY
    # What the run used and what that cost: the compute mode, the crawler whose crawls it reads, the prices.
    compute_mode: str = "cluster"
    crawler_name: str | None = None
    prices: PriceTable | None = None
    serverless_application_id: str | None = None
    prices_problem: str | None = None  # a price table that does not parse: the cost is unknown, the report written

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ReportSettings:
        """Read DATA_BUCKET and WARNING_TOPIC_ARN; UNUSUAL_DATA_K and UNUSUAL_DATA_WINDOW tune the rule.

        REPORT_CURRENCY (an ISO code, default USD) names the currency the report prints amounts in. COMPUTE_MODE
        (cluster or serverless), SERVERLESS_APPLICATION_ID, CRAWLER_NAME and the price table
        (`PriceTable.from_env`) price the run.
        """
        bucket, topic = require_env(environ, "DATA_BUCKET", "WARNING_TOPIC_ARN")
        rule = UnusualDataRule(
            window=int(environ.get("UNUSUAL_DATA_WINDOW", UnusualDataRule.window)),
            k=float(environ.get("UNUSUAL_DATA_K", UnusualDataRule.k)),
        )
        mode = environ.get("COMPUTE_MODE", "cluster")
        if mode not in COMPUTE_MODES:
            raise ConfigError(f"COMPUTE_MODE must be one of {', '.join(COMPUTE_MODES)}, not {mode!r}")
        # A typo in a price must not fail every report (the failure report included): it only leaves the cost unknown.
        prices, prices_problem = None, None
        try:
            prices = PriceTable.from_env(environ)
        except ConfigError as error:
            prices_problem = str(error)
        return cls(
            bucket,
            topic,
            rule,
            environ.get("REPORT_CURRENCY", DEFAULT_CURRENCY),
            mode,
            environ.get("CRAWLER_NAME") or None,
            prices,
            environ.get("SERVERLESS_APPLICATION_ID") or None,
            prices_problem,
        )


@dataclass(frozen=True)
class ReportRequest:
    """What the workflow hands the report step: the batch, and each insight query's result or where the run failed."""

    batch_id: str
    results: dict[str, str]  # query name -> s3:// URI of Athena's CSV; empty for a failed run
    input_path: str | None = None  # the folder the job read; the gate's manifest there names the files it judged
    failure: Failure | None = None
    # What the run's time and cost are read from: its execution, its cluster or job run, each query's statistics.
    execution_arn: str | None = None
    cluster_id: str | None = None
    job_run: dict[str, str] | None = None  # {"application_id", "job_run_id"}
    query_statistics: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The compute mode and serverless application the run's own definition used: the stack's (and so this
    # function's settings) may have been switched since the run started.
    compute_mode: str | None = None
    application_id: str | None = None

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> ReportRequest:
        """Validate the workflow's payload: a contract batch id, and one result per known query or a failure."""
        batch_id = str(event.get("batch_id", ""))
        if not BATCH_ID_PATTERN.fullmatch(batch_id):
            raise ConfigError(f"batch_id {batch_id!r} is not a contract batch id")
        failure = event.get("failure")
        if failure is not None and not isinstance(failure, Mapping):
            raise ConfigError("failure must be the workflow's object of state, error and cause")
        results = {str(item["name"]): str(item["output"]) for item in event.get("insights", [])}
        unknown = sorted(set(results) - set(INSIGHT_QUERIES))
        missing = [] if failure is not None else [name for name in INSIGHT_QUERIES if name not in results]
        if unknown or missing or not all(uri.startswith("s3://") for uri in results.values()):
            raise ConfigError(
                f"insights must name each query once with an s3:// result (missing {missing}, unknown {unknown})"
            )
        input_path = event.get("input_path")
        if input_path is not None and not str(input_path).startswith("s3://"):
            raise ConfigError(f"input_path {input_path!r} must be an s3:// folder")
        job_run = event.get("job_run")
        compute = event.get("compute") or {}
        mode = _optional_text(compute.get("mode")) if isinstance(compute, Mapping) else None
        if mode is not None and mode not in COMPUTE_MODES:
            raise ConfigError(f"compute.mode must be one of {', '.join(COMPUTE_MODES)}, not {mode!r}")
        return cls(
            batch_id,
            results,
            None if input_path is None else str(input_path),
            None if failure is None else Failure.from_event(failure),
            _optional_text(event.get("execution_arn")),
            _optional_text((event.get("cluster") or {}).get("ClusterId")),
            {k: str(v) for k, v in job_run.items()} if isinstance(job_run, Mapping) else None,
            {
                str(item["name"]): dict(item["statistics"])
                for item in event.get("insights", [])
                if isinstance(item.get("statistics"), Mapping)
            },
            mode,
            _optional_text(compute.get("application_id")) if isinstance(compute, Mapping) else None,
        )


def _optional_text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def _typed(value: str) -> Any:
    """Athena's CSV holds text; numbers come back as numbers, everything else stays text."""
    if value == "":
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return Decimal(value)
    except InvalidOperation:
        return value


def parse_athena_csv(text: str) -> list[dict[str, Any]]:
    """The rows of an Athena result file."""
    return [{k: _typed(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


def _gate_verdicts(aws: AwsClients, input_path: str | None) -> list[dict[str, Any]]:
    """The verdicts on exactly the files the job read, from the manifest the gate staged beside them."""
    if input_path is None:
        return []
    bucket, prefix = _split(input_path)
    manifest = json.loads(read_text(aws.s3, bucket, prefix.rstrip("/") + "/" + MANIFEST_NAME) or "{}")
    return [file["verdict"] for _, file in sorted(manifest.get("files", {}).items()) if "verdict" in file]


# The AWS errors a lookup of the run's usage can meet: the report is written without that item, saying so.
_LOOKUP_ERRORS = (ClientError, BotoCoreError, KeyError)


def _crawls(glue: Any, crawler: str) -> list[dict[str, Any]]:
    """Every crawl ListCrawls keeps of the crawler (boto3 has no paginator for it)."""
    crawls: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"CrawlerName": crawler}
    while True:
        page = glue.list_crawls(**kwargs)
        crawls += page.get("Crawls", [])
        if not page.get("NextToken"):
            return crawls
        kwargs["NextToken"] = page["NextToken"]


def _job_run_of(
    aws: AwsClients, application_id: str, execution_arn: str, started: dt.datetime | None
) -> dict[str, Any] | None:
    """The job run the execution started: the workflow names it after the execution (None if it never started)."""
    name = execution_arn.rsplit(":", 1)[-1]
    since = {"createdAtAfter": started} if started else {}
    pages = aws.emrserverless.get_paginator("list_job_runs").paginate(applicationId=application_id, **since)
    for page in pages:
        for run in page["jobRuns"]:
            if run.get("name") == name:
                return dict(aws.emrserverless.get_job_run(applicationId=application_id, jobRunId=run["id"]))
    return None


def _history_events(aws: AwsClients, execution_arn: str) -> list[dict[str, Any]]:
    pages = aws.stepfunctions.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return [event for page in pages for event in page["events"]]


# The workflow's states that start each mode's compute: once one ran, the run's cost has a compute part.
COMPUTE_STARTS = {"cluster": {"Create the cluster"}, "serverless": {"Run the Spark job on EMR Serverless"}}


def run_usage(request: ReportRequest, settings: ReportSettings, aws: AwsClients, now: dt.datetime) -> dict[str, Any]:
    """The run's time per stage and its cost, read from the responses AWS keeps of it.

    What cannot be read is named in `cost.unknown`: it never fails the report.
    """
    prices = settings.prices
    unknown = [f"the price table: {settings.prices_problem}"] if settings.prices_problem else []
    items: list[CostItem] = []
    ready: dt.datetime | None = None
    events: list[dict[str, Any]] = []
    if request.execution_arn:
        try:
            events = _history_events(aws, request.execution_arn)
        except _LOOKUP_ERRORS as error:
            unknown.append(f"the stage times: {error}")
    started = next((e["timestamp"] for e in events if e.get("type") == "ExecutionStarted"), None)
    entered = {e.get("stateEnteredEventDetails", {}).get("name") for e in events}
    mode = request.compute_mode or settings.compute_mode
    application = request.application_id or settings.serverless_application_id
    compute_found = False
    try:
        if mode == "cluster" and request.cluster_id:
            described = aws.emr.describe_cluster(ClusterId=request.cluster_id)
            ready = described["Cluster"]["Status"]["Timeline"].get("ReadyDateTime")
            pages = aws.emr.get_paginator("list_instances").paginate(ClusterId=request.cluster_id)
            instances = [instance for page in pages for instance in page["Instances"]]
            items += cluster_items(described, instances, prices, now)
            unknown += [still] if (still := still_billing(described)) else []
            compute_found = True
        elif mode == "serverless" and application and request.execution_arn:
            job_run = _job_run_of(aws, application, request.execution_arn, started)
            if job_run is not None:
                ready = job_run["jobRun"].get("startedAt")
                items += serverless_items(job_run, prices)
                unknown += [still] if (still := still_billing(job_run)) else []
                unknown += [missing] if (missing := unbilled(job_run)) else []
                compute_found = True
        if not compute_found and entered & COMPUTE_STARTS[mode]:
            unknown.append(f"the {mode}'s usage: the run started its compute, and none of it could be found")
    except _LOOKUP_ERRORS as error:
        unknown.append(f"the {mode}'s usage: {error}")
    if settings.crawler_name and "Start the crawler" in entered:
        try:
            items += crawler_items({"Crawls": _crawls(aws.glue, settings.crawler_name)}, started, prices)
        except _LOOKUP_ERRORS as error:
            unknown.append(f"the crawler's DPU-hours: {error}")
    queries = [{"name": name, "statistics": stats} for name, stats in sorted(request.query_statistics.items())]
    items += athena_items(queries, prices)
    return {
        "mode": mode,
        "stages": stage_times(events, mode, now, ready) if events else [],
        "cost": cost_summary(items, prices, unknown, [EBS_NOT_COUNTED] if mode == "cluster" else []),
    }


def publish_report(request: ReportRequest, settings: ReportSettings, aws: AwsClients) -> dict[str, Any]:
    """Write the batch's report next to its job outcome and return the notification to send.

    A failed run (`request.failure`) gets its page and summary too, without insights, and the text of the
    workflow's failure alert (`alert`): the run's own history of row counts and its warnings are left as they were.
    """
    bucket, prefix = settings.data_bucket, f"reports/{request.batch_id}"
    outcome = json.loads(read_text(aws.s3, bucket, f"{prefix}/job_outcome.json") or "{}")
    usage = run_usage(request, settings, aws, dt.datetime.now(dt.timezone.utc))
    if request.failure is not None:
        failed = failed_outcome(outcome, request.failure)
        summary = build_summary(
            request.batch_id, failed, {}, _gate_verdicts(aws, request.input_path), None, settings.currency, run=usage
        )
        summary["failed_state"] = request.failure.state
        report = _written(aws, bucket, prefix, summary, [])
        return {**report, "alert": request.failure.alert(request.batch_id, f"s3://{bucket}/{prefix}/report.html")}
    insights = {}
    for name in INSIGHT_QUERIES:
        text = read_text(aws.s3, *_split(request.results[name]))
        if text is None:
            raise FileNotFoundError(f"the result of {name} is not at {request.results[name]}")
        aws.s3.put_object(
            Bucket=bucket,
            Key=f"{prefix}/insights/{name}.csv",
            Body=neutralised_csv(text).encode(),
            ContentType="text/csv",
        )
        insights[name] = parse_athena_csv(text)
    # The page shows the batch against the history, so the history is judged before the page is written.
    earlier = [
        run for run in _history(aws, settings) if run["batch_id"] != request.batch_id
    ]  # a re-run is not its own history
    today = _row_counts(outcome)
    warnings = [f.describe() for f in check_all([run["counts"] for run in earlier], today, settings.rule)]
    trend = history_trend(earlier, request.batch_id, today, warnings, settings.rule, usage)
    summary = build_summary(
        request.batch_id,
        outcome,
        insights,
        _gate_verdicts(aws, request.input_path),
        trend,
        settings.currency,
        run=usage,
    )
    report = _written(aws, bucket, prefix, summary, warnings)
    _record_and_warn(aws, settings, request.batch_id, earlier, today, warnings, run_totals(usage))
    return report


def _written(
    aws: AwsClients, bucket: str, prefix: str, summary: Mapping[str, Any], warnings: list[str]
) -> dict[str, Any]:
    """Write summary.json and report.html under `prefix`; the notification to send and the counts."""
    aws.s3.put_object(
        Bucket=bucket,
        Key=f"{prefix}/summary.json",
        Body=json.dumps(summary, indent=2, default=str).encode(),
        ContentType="application/json",
    )
    aws.s3.put_object(
        Bucket=bucket,
        Key=f"{prefix}/report.html",
        Body=safe_html(summary).encode(),
        ContentType="text/html; charset=utf-8",
    )
    lines = [*notification_lines(summary), f"Report: s3://{bucket}/{prefix}/report.html"]
    rejected = sum(summary["transactions"]["rejected_by_reason"].values())
    return {
        "subject": f"Rental analytics: batch {summary['batch_id']} {summary['status']}"[:100],
        "message": "\n".join(lines),
        "summary": f"s3://{bucket}/{prefix}/summary.json",
        "rows_rejected": rejected,
        "rows_accepted": summary["transactions"]["accepted"],
        "warnings": warnings,
    }


def _row_counts(outcome: Mapping[str, Any]) -> dict[str, float]:
    today = {"rental_transactions": float(outcome.get("transaction_rows", 0))}
    today.update({name: float(rows) for name, rows in outcome.get("reference_rows", {}).items()})
    return today


def _history(aws: AwsClients, settings: ReportSettings) -> list[dict[str, Any]]:
    """Earlier batches' row counts, oldest first."""
    return list(json.loads(read_text(aws.s3, settings.data_bucket, HISTORY_KEY) or "[]"))


def _record_and_warn(
    aws: AwsClients,
    settings: ReportSettings,
    batch_id: str,
    earlier: list[dict[str, Any]],
    today: dict[str, float],
    warnings: list[str],
    totals: Mapping[str, float | None],
) -> None:
    """Record this batch's row counts, cost and time in the history; warn when the counts stand out."""
    aws.s3.put_object(
        Bucket=settings.data_bucket,
        Key=HISTORY_KEY,
        Body=json.dumps([*earlier, {"batch_id": batch_id, "counts": today, **totals}]).encode(),
        ContentType="application/json",
    )
    if not warnings:
        return
    aws.sns.publish(
        TopicArn=settings.warning_topic_arn,
        Subject=f"Rental analytics WARNING: unusual row counts in batch {batch_id}"[:100],
        Message="\n".join(
            [
                f"Batch {batch_id} ran, but its row counts stand out from the batches before it:",
                *warnings,
                f"Where to look: the files under s3://{settings.data_bucket}/raw/{batch_id}/ and the report "
                f"s3://{settings.data_bucket}/reports/{batch_id}/report.html; the history is {HISTORY_KEY}.",
            ]
        ),
    )
