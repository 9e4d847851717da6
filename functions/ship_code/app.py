"""Custom resource: copies the Spark scripts and the core package to the artifacts bucket for each deploy."""

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from rental_analytics.platform.aws import clients
from rental_analytics.platform.ship import code_files, handle_custom_resource, put_response, ship

logger = Logger()
# The build puts spark_scripts/ and rental_analytics/ beside this file (Makefile: build-ShipCodeFunction).
PACKAGE_ROOT = Path(__file__).resolve().parent


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    """Ship on Create and Update, answer CloudFormation in every case."""
    handle_custom_resource(event, lambda bucket: ship(clients().s3, bucket, code_files(PACKAGE_ROOT)), put_response)
