"""amazon_notifications_setup end to end: the Amazon sandbox's Notifications API, a real SQS queue (moto server),
real Airflow (dag.test()); the destination and the ORDER_CHANGE subscription are created once, a rerun changes
nothing, and a subscription someone else made is found, reported and (only with ``replace``) replaced."""

from __future__ import annotations

import json
import uuid

import pytest

from sandboxes.amazon.config import DEFAULT_SELLER_ID

pytestmark = pytest.mark.e2e

SETUP = "amazon_notifications_setup"


@pytest.fixture
def amazon_sandbox(sqs_endpoint):
    """This module's Amazon sandbox: it publishes ORDER_CHANGE to the local SQS without delay."""
    from sandboxes.amazon.app import create_app
    from sandboxes.amazon.config import AmazonSandboxConfig
    from sandboxes.server import serve_in_thread

    app = create_app(
        AmazonSandboxConfig(
            speed=100.0,
            seed=7,
            initial_orders=0,
            finances_v0_removed=True,
            sqs_endpoint_url=sqs_endpoint,
            notification_delay_seconds=0,
        )
    )
    with serve_in_thread(app) as base_url:
        yield base_url, app


@pytest.fixture
def sqs(sqs_endpoint, monkeypatch):
    """A boto3 SQS client on the local SQS, the ``sales_channel_sqs`` connection to it, and a fresh queue URL."""
    import boto3

    monkeypatch.setenv(
        "AIRFLOW_CONN_SALES_CHANNEL_SQS",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": sqs_endpoint, "region_name": "us-east-1"},
            }
        ),
    )
    client = boto3.client(
        "sqs",
        endpoint_url=sqs_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.queue_url = client.create_queue(QueueName=f"order-change-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    return client


def subscriptions(channel) -> list[dict]:
    return channel.amazon("GET", "/_sandbox/notifications")["subscriptions"]


def setup_result(channel, key: str = "return_value") -> dict:
    ti = next(t for t in channel.last_run.get_task_instances() if t.task_id == "subscribe")
    return ti.xcom_pull(task_ids="subscribe", key=key)


def test_setup_creates_once_and_rerun_changes_nothing(channel, sqs):
    channel.configure(merchant_id=DEFAULT_SELLER_ID)
    assert channel.run_dag(SETUP, {"queue_url": sqs.queue_url}) == {"subscribe": "success"}
    first = setup_result(channel)
    arn = sqs.get_queue_attributes(QueueUrl=sqs.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert first["queue_arn"] == arn and first["changed"] is True
    account = first["accounts"]["us-main"]
    assert (account["destination"], account["subscription"]) == ("created", "created")
    assert account["filter"] == ["OrderStatusChange", "BuyerRequestedChange"]

    state = channel.amazon("GET", "/_sandbox/notifications")
    assert [d["resource"]["sqs"]["arn"] for d in state["destinations"]] == [arn]
    (subscription,) = state["subscriptions"]
    assert subscription["sellerId"] == DEFAULT_SELLER_ID
    assert subscription["payloadVersion"] == "1.0"
    assert subscription["destinationId"] == account["destination_id"]
    assert subscription["processingDirective"] == {
        "eventFilter": {
            "eventFilterType": "ORDER_CHANGE",
            "orderChangeTypes": ["OrderStatusChange", "BuyerRequestedChange"],
        }
    }

    assert channel.run_dag(SETUP, {"queue_url": sqs.queue_url}) == {"subscribe": "success"}
    again = setup_result(channel)
    assert again["changed"] is False
    assert again["accounts"]["us-main"] == {**account, "destination": "exists", "subscription": "exists"}
    assert channel.amazon("GET", "/_sandbox/notifications") == state


def test_other_subscription_is_reported_and_replaced_only_when_asked(channel, sqs):
    """A subscription without our filter (made by hand, say) is ``differs`` and untouched; ``replace`` swaps it."""
    from amazon_commerce_sync.hooks.amazon_notifications import AmazonNotificationsHook

    channel.configure(merchant_id=DEFAULT_SELLER_ID)
    arn = sqs.get_queue_attributes(QueueUrl=sqs.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    app = AmazonNotificationsHook("amazon_sp_api", grantless=True)
    destination = app.create_destination("by-hand", arn)
    by_hand = AmazonNotificationsHook("amazon_sp_api", grantless=False).create_subscription(
        destination["destinationId"]
    )

    # the run fails (a green one would hide that no notification reaches the queue), and says what to do
    assert channel.run_dag(SETUP, {"queue_url": sqs.queue_url}) == {"subscribe": "failed"}
    report = setup_result(channel, "report")["accounts"]["us-main"]
    assert (report["destination"], report["subscription"]) == ("exists", "differs")
    assert report["destination_id"] == destination["destinationId"]
    assert [s["subscriptionId"] for s in subscriptions(channel)] == [by_hand["subscriptionId"]]

    assert channel.run_dag(SETUP, {"queue_url": sqs.queue_url, "replace": True}) == {"subscribe": "success"}
    report = setup_result(channel)["accounts"]["us-main"]
    assert report["subscription"] == "replaced"
    (now,) = subscriptions(channel)
    assert now["subscriptionId"] == report["subscription_id"] != by_hand["subscriptionId"]
    assert now["processingDirective"]["eventFilter"]["orderChangeTypes"] == [
        "OrderStatusChange",
        "BuyerRequestedChange",
    ]


def test_destination_conflict_and_subscription_state_conflict_are_read_back(channel, sqs):
    """Amazon's 409s (destination for the ARN exists; the seller has a subscription) end in the existing ones."""
    from amazon_commerce_sync import notifications
    from amazon_commerce_sync.errors import ConflictError
    from amazon_commerce_sync.hooks.amazon_notifications import AmazonNotificationsHook

    arn = sqs.get_queue_attributes(QueueUrl=sqs.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    app = AmazonNotificationsHook("amazon_sp_api", grantless=True)
    seller = AmazonNotificationsHook("amazon_sp_api", grantless=False)
    existing = app.create_destination("first", arn)
    with pytest.raises(ConflictError):
        app.create_destination("second", arn)
    # A stale view of getDestinations (empty) makes ensure_destination create, get the 409 and read it back.
    real = app.get_destinations
    views = iter([[], real()])
    app.get_destinations = lambda: next(views)
    assert notifications.ensure_destination(app, arn) == (existing, False)

    ours = seller.create_subscription(
        existing["destinationId"], processing_directive=notifications.PROCESSING_DIRECTIVE
    )
    real_get = seller.get_subscription
    answers = iter([None, ours])

    def stale_then_real(*args):
        found = next(answers)
        if found is None:
            from amazon_commerce_sync.errors import NotFoundError

            raise NotFoundError("not yet visible", operation="getSubscription", status=404)
        return real_get(*args)

    seller.get_subscription = stale_then_real
    assert notifications.ensure_subscription(seller, app, existing["destinationId"]) == (ours, "exists")
    assert len(subscriptions(channel)) == 1
