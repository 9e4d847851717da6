"""Upload events the gate failed three times wait in a queue; a redrive sends them through the gate again."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from rental_analytics.car_rental.gate.redrive import failed_event, redrive_failed_uploads
from tests.car_rental.gate_stack import BUCKET, Stack
from tests.lambda_handlers import FakeContext


def _on_failure_record(upload_key: str, version_id: str | None, etag: str) -> dict[str, Any]:
    """What Lambda's on-failure destination sends for an asynchronous S3 invocation that kept failing."""
    event = {
        "Records": [
            {
                "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                "eventTime": "2024-06-01T10:00:00.000Z", "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:EXAMPLE"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "id"},
                "s3": {
                    "s3SchemaVersion": "1.0", "configurationId": "gate",
                    "bucket": {"name": BUCKET, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": f"arn:aws:s3:::{BUCKET}"},
                    "object": {"key": upload_key, "size": 10, "eTag": etag, "versionId": version_id, "sequencer": "0A1B"},
                },
            }
        ]
    }  # fmt: skip
    return {
        "version": "1.0",
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "Rate exceeded", "errorType": "ClientError"},
    }


def test_a_failed_last_upload_is_sent_again_and_starts_its_batch(stack: Stack, monkeypatch: pytest.MonkeyPatch):
    uploads = stack.put_batch()
    for upload in uploads[:3]:
        stack.admit(upload)
    last = uploads[3]
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="gate-failed-events")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(_on_failure_record(last.key, last.version_id, last.etag)))
    sqs.send_message(QueueUrl=queue, MessageBody="not a lambda record")
    app = stack.gate_handler(monkeypatch)
    said: list[str] = []

    result = redrive_failed_uploads(sqs, queue, lambda event: app.lambda_handler(event, FakeContext()), said.append)

    assert (result.delivered, len(result.left)) == (1, 1)
    assert said == [f"sent again: {last.key}"]
    [execution] = stack.executions()
    assert json.loads(execution["input"])["files"]["rental_transactions"]["version_id"] == last.version_id
    left = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert left["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"  # the unreadable one, kept


@pytest.mark.parametrize("body", ["", "[]", '{"requestPayload": "x"}', '{"requestPayload": {"Records": 1}}'])
def test_messages_without_an_s3_notification_are_not_delivered(body: str):
    assert failed_event(body) is None
