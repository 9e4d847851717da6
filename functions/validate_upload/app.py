"""S3 upload gate: judges each file dropped under raw/ and starts the workflow when its batch is complete."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3Model
from aws_lambda_powertools.utilities.typing import LambdaContext

from rental_analytics.car_rental.gate.admission import GateSettings, Upload, admit_upload
from rental_analytics.platform.aws import clients

logger, metrics, tracer = Logger(), Metrics(), Tracer()
settings = GateSettings.from_env()  # fails the cold start when a variable is missing


@logger.inject_lambda_context(correlation_id_path='Records[0].responseElements."x-amz-request-id"')
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=S3Model)
def lambda_handler(event: S3Model, context: LambdaContext) -> dict[str, Any]:
    """Judge every record of the notification; one record's outcome never hides another's."""
    deadline = settings.check_deadline(context.get_remaining_time_in_millis() / 1000)
    outcomes = [admit_upload(Upload.from_record(record), settings, clients(), deadline) for record in event.Records]
    for outcome in outcomes:
        logger.info("upload judged", extra=outcome.as_dict())
        for name, unit, value in outcome.metrics():
            metrics.add_metric(name=name, unit=unit, value=value)
    return {"outcomes": [outcome.as_dict() for outcome in outcomes]}
