"""Helpers for the ORDER_CHANGE tests: a boto3 SQS client on the local SQS (moto) and a receive loop."""

from __future__ import annotations

import functools
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA = Path(__file__).resolve().parents[3] / "reference/sp-api/schemas/OrderChangeNotification.json"
REGION = "us-east-1"


@functools.cache
def order_change_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def sqs_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "sqs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def new_queue(client: Any) -> tuple[str, str]:
    """A fresh queue: (url, arn)."""
    url = client.create_queue(QueueName=f"order-change-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def drain(state: Any, timeout: float = 10.0) -> None:
    """Wait until the sandbox has sent every scheduled notification."""
    deadline = time.monotonic() + timeout
    while state.deliveries.pending():
        assert time.monotonic() < deadline, "notifications still pending"
        time.sleep(0.02)


def receive(client: Any, url: str, count: int, timeout: float = 10.0) -> list[str]:
    """The bodies of ``count`` messages (deleted from the queue), in arrival order; then asserts no more came."""
    bodies: list[str] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < count and time.monotonic() < deadline:
        response = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in response.get("Messages", []):
            bodies.append(message["Body"])
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert len(bodies) >= count, f"expected {count} messages, got {len(bodies)}: {bodies}"
    extra = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    assert not extra, f"unexpected messages: {[m['Body'] for m in extra]}"
    assert len(bodies) == count, f"expected {count} messages, got {bodies}"
    return bodies


def notifications(bodies: list[str]) -> list[dict[str, Any]]:
    """Parse and validate ORDER_CHANGE bodies against Amazon's schema."""
    parsed = [json.loads(body) for body in bodies]
    for message in parsed:
        order_change_validator().validate(message)
    return parsed


def change(message: dict[str, Any]) -> tuple[str, str, str]:
    """(AmazonOrderId, OrderChangeType, Summary.OrderStatus) of a notification."""
    n = message["Payload"]["OrderChangeNotification"]
    return n["AmazonOrderId"], n["OrderChangeType"], n["Summary"]["OrderStatus"]
