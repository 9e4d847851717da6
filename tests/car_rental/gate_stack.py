"""The upload gate's world under moto: the data bucket, the alert topic (read through a queue) and the workflow."""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest

from rental_analytics.car_rental.gate.admission import (
    GateSettings,
    ObjectVersion,
    Upload,
    admit_upload,
    marker_key,
    parse_upload_key,
    quarantine_key,
)
from rental_analytics.platform.aws import AwsClients
from tests.car_rental import sample_batch
from tests.lambda_handlers import load_handler
from tests.repo import ROOT

EVENTS = ROOT / "events"
BUCKET = json.loads((EVENTS / "s3_put_users.json").read_text())["Records"][0]["s3"]["bucket"]["name"]
BATCH = "2024-06-01"


@dataclass
class Stack:
    """The moto stand-ins for the resources the gate talks to."""

    aws: AwsClients
    settings: GateSettings
    alerts_queue: str

    def put(self, key: str, content: bytes) -> Upload:
        response = self.aws.s3.put_object(Bucket=BUCKET, Key=key, Body=content)
        return Upload(BUCKET, key, response.get("VersionId"), response["ETag"])

    def admit(self, upload: Upload) -> Any:
        return admit_upload(upload, self.settings, self.aws)

    def executions(self) -> list[dict[str, Any]]:
        listed = self.aws.stepfunctions.list_executions(stateMachineArn=self.settings.state_machine_arn)["executions"]
        return [self.aws.stepfunctions.describe_execution(executionArn=e["executionArn"]) for e in listed]

    def alerts(self) -> list[dict[str, str]]:
        sqs = boto3.client("sqs")
        messages = sqs.receive_message(QueueUrl=self.alerts_queue, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    def body(self, key: str) -> bytes | None:
        try:
            return bytes(self.aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        except self.aws.s3.exceptions.NoSuchKey:
            return None

    def quarantined(self, upload: Upload) -> str:
        return quarantine_key(parse_upload_key(upload.key), version_of(upload))

    def marker(self, upload: Upload, dataset: str) -> dict[str, Any] | None:
        body = self.body(marker_key(parse_upload_key(upload.key), dataset, version_of(upload)))
        return None if body is None else json.loads(body)

    def gate_handler(self, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
        """The Lambda handler module, loaded as the runtime loads it, with this stack's settings."""
        return load_handler(
            "validate_upload",
            monkeypatch,
            DATA_BUCKET=self.settings.data_bucket,
            STATE_MACHINE_ARN=self.settings.state_machine_arn,
            ALERT_TOPIC_ARN=self.settings.alert_topic_arn,
        )

    def put_batch(self, files: dict[str, str] | None = None) -> list[Upload]:
        files = files or sample_batch.files()
        return [self.put(f"raw/{BATCH}/{name}.csv", text.encode()) for name, text in files.items()]


def version_of(upload: Upload) -> ObjectVersion:
    return ObjectVersion(upload.key, upload.version_id, (upload.etag or "").strip('"'))


def moto_stack() -> Stack:
    """Inside `mock_aws`: a versioned data bucket, the alert topic read through a queue, and the real workflow."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    topic = boto3.client("sns").create_topic(Name="alerts")["TopicArn"]
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="car-rental-pipeline",
        definition=(ROOT / "statemachine" / "car_rental_pipeline.asl.json").read_text(),
        roleArn="arn:aws:iam::123456789012:role/pipeline",
    )["stateMachineArn"]
    aws = AwsClients(s3=s3, stepfunctions=sfn, sns=boto3.client("sns"))
    return Stack(aws, GateSettings(BUCKET, machine, topic, alert_wait_seconds=0.2), queue_url)
