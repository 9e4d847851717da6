"""Sending the upload events the gate failed three times through it again, from its on-failure queue."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

from rental_analytics.platform.progress import Progress

# Hands one original S3 notification back to the gate (in AWS: an asynchronous invoke of the function).
Deliver = Callable[[Mapping[str, Any]], None]


@dataclass
class Redrive:
    """What a redrive did: events sent through the gate again, and messages left in the queue with why."""

    delivered: int = 0
    left: list[str] = field(default_factory=list)


def failed_event(body: str) -> Mapping[str, Any] | None:
    """The S3 notification inside a Lambda on-failure record, or None when the message holds none."""
    try:
        record = json.loads(body)
    except ValueError:
        return None
    payload = record.get("requestPayload") if isinstance(record, dict) else None
    if not isinstance(payload, dict) or not isinstance(payload.get("Records"), list):
        return None
    return payload


def redrive_failed_uploads(sqs: Any, queue_url: str, deliver: Deliver, progress: Progress) -> Redrive:
    """Deliver every failed event again and delete its message once delivered; unreadable ones stay."""
    result = Redrive()
    seen: set[str] = set()
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            return result
        for message in fresh:
            seen.add(message["MessageId"])
            event = failed_event(message["Body"])
            if event is None:
                result.left.append(f"message {message['MessageId']} holds no S3 notification; it stays in the queue")
                continue
            deliver(event)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            result.delivered += 1
            keys = ", ".join(r.get("s3", {}).get("object", {}).get("key", "?") for r in event["Records"])
            progress(f"sent again: {keys}")
