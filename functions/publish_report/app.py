"""Report step of the car-rental workflow: writes the batch report from the Athena results, returns the notification."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from rental_analytics.car_rental.publish import ReportRequest, ReportSettings, publish_report
from rental_analytics.platform.aws import clients

logger, metrics, tracer = Logger(), Metrics(), Tracer()
settings = ReportSettings.from_env()  # fails the cold start when a variable is missing


@logger.inject_lambda_context(correlation_id_path="batch_id")
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Validate the workflow's payload, write the report, and hand the notification back to the workflow."""
    report = publish_report(ReportRequest.from_event(event), settings, clients())
    metrics.add_metric(name="RowsRejected", unit="Count", value=report["rows_rejected"])
    metrics.add_metric(name="RowsAccepted", unit="Count", value=report["rows_accepted"])
    logger.info("report written", extra={"summary": report["summary"]})
    return report
