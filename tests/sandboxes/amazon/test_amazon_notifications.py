"""Notifications API v1 routes of the Amazon sandbox against the official model: grantless destinations,
seller subscriptions, Amazon's conflict answers, validation and the usage plan."""

from __future__ import annotations

import pytest
from amazon_helpers import (
    NOTIFICATIONS_MODEL,
    NOTIFICATIONS_SCOPE,
    Amz,
    grantless_token,
    serve,
)
from sqs_helpers import new_queue, sqs_client

from sandboxes.amazon.config import AmazonSandboxConfig
from sandboxes.swagger import validate

DESTINATIONS = "/notifications/v1/destinations"
SUBSCRIPTION = "/notifications/v1/subscriptions/ORDER_CHANGE"


def _destination_body(arn: str) -> dict:
    return {"name": "order-events", "resourceSpecification": {"sqs": {"arn": arn}}}


def test_client_credentials_grant(amz):
    r = amz.lwa(grant_type="client_credentials", scope=NOTIFICATIONS_SCOPE)
    assert r.status_code == 200
    body = r.json()
    assert body["scope"] == NOTIFICATIONS_SCOPE and body["token_type"] == "bearer" and "refresh_token" not in body
    r = amz.lwa(grant_type="client_credentials", scope="sellingpartnerapi::orders")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_scope")
    r = amz.lwa(grant_type="client_credentials")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
    r = amz.lwa(grant_type="client_credentials", scope=NOTIFICATIONS_SCOPE, client_secret="nope")
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")


def test_grantless_and_seller_tokens_each_open_only_their_operations(amz):
    grantless = grantless_token(amz)
    arn = "arn:aws:sqs:us-east-1:123456789012:order-events"
    r = amz.post(DESTINATIONS, json=_destination_body(arn))  # a seller's token on a grantless operation
    assert r.status_code == 403
    validate(NOTIFICATIONS_MODEL, "CreateDestinationResponse", r.json())
    assert amz.get("/orders/2026-01-01/orders/113-0000001-0000001", token=grantless).status_code == 403
    assert amz.get(SUBSCRIPTION, token=grantless).status_code == 403  # getSubscription needs the seller
    rotation = grantless_token(amz, "sellingpartnerapi::client_credential:rotation")
    assert amz.get(DESTINATIONS, token=rotation).status_code == 403  # a grantless token of another scope
    assert amz.get(DESTINATIONS, token=grantless).status_code == 200


def test_destinations_conform_and_conflict_on_the_same_arn(amz):
    grantless = grantless_token(amz)
    arn = "arn:aws:sqs:us-east-1:123456789012:order-events"
    r = amz.post(DESTINATIONS, token=grantless, json=_destination_body(arn))
    assert r.status_code == 200, r.text
    validate(NOTIFICATIONS_MODEL, "CreateDestinationResponse", r.json())
    destination = r.json()["payload"]
    assert destination["resource"] == {"sqs": {"arn": arn}} and destination["name"] == "order-events"

    again = amz.post(DESTINATIONS, token=grantless, json=_destination_body(arn))
    assert again.status_code == 409
    validate(NOTIFICATIONS_MODEL, "CreateDestinationResponse", again.json())
    error = again.json()["errors"][0]
    assert error["code"] == "Conflict" and arn in error["details"]

    listed = amz.get(DESTINATIONS, token=grantless)
    validate(NOTIFICATIONS_MODEL, "GetDestinationsResponse", listed.json())
    assert listed.json()["payload"] == [destination]
    one = amz.get(f"{DESTINATIONS}/{destination['destinationId']}", token=grantless)
    validate(NOTIFICATIONS_MODEL, "GetDestinationResponse", one.json())
    assert one.json()["payload"] == destination

    deleted = amz.call("DELETE", f"{DESTINATIONS}/{destination['destinationId']}", token=grantless)
    assert (deleted.status_code, deleted.json()) == (200, {})
    gone = amz.get(f"{DESTINATIONS}/{destination['destinationId']}", token=grantless)
    assert gone.status_code == 404
    validate(NOTIFICATIONS_MODEL, "GetDestinationResponse", gone.json())


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x"},
        {"name": "x", "resourceSpecification": {"sqs": {"arn": "not-an-arn"}}},
        {"name": "x", "resourceSpecification": {"eventBridge": {"region": "us-east-1", "accountId": "123456789012"}}},
    ],
)
def test_create_destination_rejects_invalid_requests(amz, body):
    r = amz.post(DESTINATIONS, token=grantless_token(amz), json=body)
    assert r.status_code == 400
    validate(NOTIFICATIONS_MODEL, "CreateDestinationResponse", r.json())


def test_create_destination_refuses_a_queue_that_does_not_exist(sqs_endpoint):
    config = AmazonSandboxConfig(speed=100.0, sqs_endpoint_url=sqs_endpoint)
    with serve(config) as (base, app):
        amz = Amz(base, app)
        grantless = grantless_token(amz)
        r = amz.post(DESTINATIONS, token=grantless, json=_destination_body("arn:aws:sqs:us-east-1:123456789012:none"))
        assert r.status_code == 400 and "does not exist" in r.json()["errors"][0]["details"]
        _, arn = new_queue(sqs_client(sqs_endpoint))
        assert amz.post(DESTINATIONS, token=grantless, json=_destination_body(arn)).status_code == 200


def test_subscription_lifecycle_and_state_conflict(amz):
    grantless = grantless_token(amz)
    arn = "arn:aws:sqs:us-east-1:123456789012:order-events"
    destination_id = amz.post(DESTINATIONS, token=grantless, json=_destination_body(arn)).json()["payload"][
        "destinationId"
    ]
    assert amz.get(SUBSCRIPTION).status_code == 404
    body = {
        "payloadVersion": "1.0",
        "destinationId": destination_id,
        "processingDirective": {
            "eventFilter": {
                "eventFilterType": "ORDER_CHANGE",
                "orderChangeTypes": ["OrderStatusChange", "BuyerRequestedChange"],
            }
        },
    }
    r = amz.post(SUBSCRIPTION, json=body)
    assert r.status_code == 200, r.text
    validate(NOTIFICATIONS_MODEL, "CreateSubscriptionResponse", r.json())
    subscription = r.json()["payload"]
    assert subscription["destinationId"] == destination_id
    assert subscription["processingDirective"] == body["processingDirective"]

    conflict = amz.post(SUBSCRIPTION, json=body)
    assert conflict.status_code == 409
    validate(NOTIFICATIONS_MODEL, "CreateSubscriptionResponse", conflict.json())
    assert conflict.json()["errors"][0]["code"] == "StateConflict"

    mine = amz.get(SUBSCRIPTION)
    validate(NOTIFICATIONS_MODEL, "GetSubscriptionResponse", mine.json())
    assert mine.json()["payload"] == subscription
    listed = amz.get("/notifications/v1/subscriptions", params={"notificationTypes": "ORDER_CHANGE"})
    validate(NOTIFICATIONS_MODEL, "GetSubscriptionsResponse", listed.json())
    assert listed.json()["payload"]["subscriptions"] == [subscription]
    by_id = f"{SUBSCRIPTION}/{subscription['subscriptionId']}"
    assert amz.get(by_id).status_code == 403  # grantless operation: a seller's token is refused
    r = amz.get(by_id, token=grantless)
    validate(NOTIFICATIONS_MODEL, "GetSubscriptionByIdResponse", r.json())
    assert r.json()["payload"] == subscription

    in_use = amz.call("DELETE", f"{DESTINATIONS}/{destination_id}", token=grantless)
    assert in_use.status_code == 409
    deleted = amz.call("DELETE", by_id, token=grantless)
    assert (deleted.status_code, deleted.json()) == (200, {})
    assert amz.call("DELETE", by_id, token=grantless).status_code == 404
    assert amz.get(SUBSCRIPTION).status_code == 404
    assert amz.call("DELETE", f"{DESTINATIONS}/{destination_id}", token=grantless).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "detail"),
    [
        (SUBSCRIPTION, {"payloadVersion": "1.0"}, "destinationId"),
        (SUBSCRIPTION, {"payloadVersion": "2.0", "destinationId": "{d}"}, "payloadVersion"),
        (SUBSCRIPTION, {"payloadVersion": "1.0", "destinationId": "nope"}, "destinationId"),
        ("/notifications/v1/subscriptions/ANY_OFFER_CHANGED", {"payloadVersion": "1.0", "destinationId": "{d}"}, ""),
        (
            SUBSCRIPTION,
            {
                "payloadVersion": "1.0",
                "destinationId": "{d}",
                "processingDirective": {"eventFilter": {"eventFilterType": "ORDER_CHANGE", "orderChangeTypes": ["X"]}},
            },
            "",
        ),
        (
            SUBSCRIPTION,
            {"payloadVersion": "1.0", "destinationId": "{d}", "processingDirective": {"filterExpression": "a == b"}},
            "filterExpression",
        ),
    ],
)
def test_create_subscription_rejects_invalid_requests(amz, path, body, detail):
    grantless = grantless_token(amz)
    arn = "arn:aws:sqs:us-east-1:123456789012:order-events"
    destination_id = amz.post(DESTINATIONS, token=grantless, json=_destination_body(arn)).json()["payload"][
        "destinationId"
    ]
    if body.get("destinationId") == "{d}":
        body = {**body, "destinationId": destination_id}
    r = amz.post(path, json=body)
    assert r.status_code == 400, r.text
    validate(NOTIFICATIONS_MODEL, "CreateSubscriptionResponse", r.json())
    assert detail in str(r.json()["errors"][0])
    assert amz.get(SUBSCRIPTION).status_code == 404


def test_usage_plan_one_per_second_burst_five():
    # at speed 0.1 (a token every 10 s) the sixth call finds none however slowly the six are made
    with serve(AmazonSandboxConfig(speed=0.1)) as (base, app):
        amz = Amz(base, app)
        grantless = grantless_token(amz)
        answers = [amz.get(DESTINATIONS, token=grantless) for _ in range(6)]
        assert [r.status_code for r in answers] == [200] * 5 + [429]
        assert answers[0].headers["x-amzn-RateLimit-Limit"] == "0.1"  # Amazon's 1 request/s × speed
        validate(NOTIFICATIONS_MODEL, "GetDestinationsResponse", answers[-1].json())
        # the seller's operations have buckets of their own
        assert amz.get(SUBSCRIPTION).status_code == 404
