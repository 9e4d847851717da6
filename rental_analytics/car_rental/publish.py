"""The report step in AWS: read the Athena results, write summary.json and report.html, compose the notification."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from rental_analytics.car_rental.contract import BATCH_ID_PATTERN, INSIGHT_QUERIES, MANIFEST_NAME
from rental_analytics.car_rental.insights import neutralised_csv
from rental_analytics.car_rental.report import (
    Failure,
    build_summary,
    failed_outcome,
    history_trend,
    notification_lines,
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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ReportSettings:
        """Read DATA_BUCKET and WARNING_TOPIC_ARN; UNUSUAL_DATA_K and UNUSUAL_DATA_WINDOW tune the rule.

        REPORT_CURRENCY (an ISO code, default USD) names the currency the report prints amounts in.
        """
        bucket, topic = require_env(environ, "DATA_BUCKET", "WARNING_TOPIC_ARN")
        rule = UnusualDataRule(
            window=int(environ.get("UNUSUAL_DATA_WINDOW", UnusualDataRule.window)),
            k=float(environ.get("UNUSUAL_DATA_K", UnusualDataRule.k)),
        )
        return cls(bucket, topic, rule, environ.get("REPORT_CURRENCY", DEFAULT_CURRENCY))


@dataclass(frozen=True)
class ReportRequest:
    """What the workflow hands the report step: the batch, and each insight query's result or where the run failed."""

    batch_id: str
    results: dict[str, str]  # query name -> s3:// URI of Athena's CSV; empty for a failed run
    input_path: str | None = None  # the folder the job read; the gate's manifest there names the files it judged
    failure: Failure | None = None

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
        return cls(
            batch_id,
            results,
            None if input_path is None else str(input_path),
            None if failure is None else Failure.from_event(failure),
        )


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


def publish_report(request: ReportRequest, settings: ReportSettings, aws: AwsClients) -> dict[str, Any]:
    """Write the batch's report next to its job outcome and return the notification to send.

    A failed run (`request.failure`) gets its page and summary too, without insights: the run's own history of
    row counts and its warnings are left as they were.
    """
    bucket, prefix = settings.data_bucket, f"reports/{request.batch_id}"
    outcome = json.loads(read_text(aws.s3, bucket, f"{prefix}/job_outcome.json") or "{}")
    if request.failure is not None:
        failed = failed_outcome(outcome, request.failure)
        summary = build_summary(
            request.batch_id, failed, {}, _gate_verdicts(aws, request.input_path), None, settings.currency
        )
        summary["failed_state"] = request.failure.state
        return _written(aws, bucket, prefix, summary, [])
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
    trend = history_trend(earlier, request.batch_id, today, warnings, settings.rule)
    summary = build_summary(
        request.batch_id, outcome, insights, _gate_verdicts(aws, request.input_path), trend, settings.currency
    )
    report = _written(aws, bucket, prefix, summary, warnings)
    _record_and_warn(aws, settings, request.batch_id, earlier, today, warnings)
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
) -> None:
    """Record this batch's row counts in the history, and warn when they stand out from the earlier ones."""
    aws.s3.put_object(
        Bucket=settings.data_bucket,
        Key=HISTORY_KEY,
        Body=json.dumps([*earlier, {"batch_id": batch_id, "counts": today}]).encode(),
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
