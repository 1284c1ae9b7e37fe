"""Fixtures of the Amazon sandbox tests (helpers live in ``amazon_helpers``)."""

from __future__ import annotations

import pytest
from amazon_helpers import Amz


@pytest.fixture
def amz(amazon_sandbox) -> Amz:
    """An SP-API client logged in as the default seller of a fresh sandbox (speed 100).

    The sandbox's own tests run with Finances v0 still answering (the product's tests run it removed, as after
    Amazon's removal date): they check the sandbox models both states."""
    base, app = amazon_sandbox
    client = Amz(base, app)
    client.settings(finances_v0_removed=False)
    return client


@pytest.fixture
def events(sqs_endpoint):
    """A fresh sandbox that delivers ORDER_CHANGE to the local SQS without delay, a client of it logged in as
    the default seller, a grantless token, and an SQS queue subscribed for the seller:
    ``SimpleNamespace(amz, sqs, url, arn, grantless, destination_id, subscribe(**directive) -> subscriptionId)``."""
    from types import SimpleNamespace

    from amazon_helpers import grantless_token, serve
    from sqs_helpers import new_queue, sqs_client

    from sandboxes.amazon.config import AmazonSandboxConfig

    config = AmazonSandboxConfig(speed=100.0, seed=7, sqs_endpoint_url=sqs_endpoint, notification_delay_seconds=0)
    with serve(config) as (base, app):
        amz = Amz(base, app)
        sqs = sqs_client(sqs_endpoint)
        url, arn = new_queue(sqs)
        grantless = grantless_token(amz)
        r = amz.post(
            "/notifications/v1/destinations",
            token=grantless,
            json={"name": "order-events", "resourceSpecification": {"sqs": {"arn": arn}}},
        )
        assert r.status_code == 200, r.text
        destination_id = r.json()["payload"]["destinationId"]

        def subscribe(**directive):
            body = {"payloadVersion": "1.0", "destinationId": destination_id}
            if directive:
                body["processingDirective"] = {"eventFilter": {"eventFilterType": "ORDER_CHANGE", **directive}}
            r = amz.post("/notifications/v1/subscriptions/ORDER_CHANGE", json=body)
            assert r.status_code == 200, r.text
            return r.json()["payload"]["subscriptionId"]

        yield SimpleNamespace(
            amz=amz, sqs=sqs, url=url, arn=arn, grantless=grantless, destination_id=destination_id, subscribe=subscribe
        )
