"""ORDER_CHANGE notifications end to end: order changes in the Amazon sandbox -> messages in a real SQS queue
(moto in server mode), valid against Amazon's OrderChangeNotification schema; filters and delivery faults."""

from __future__ import annotations

import json
import time

import jsonschema
import pytest
from amazon_helpers import CA, US, Amz, grantless_token, make_order, serve
from sqs_helpers import change, drain, new_queue, notifications, order_change_validator, receive, sqs_client

from sandboxes.amazon.config import AmazonSandboxConfig
from sandboxes.amazon.publisher import OTHER_SELLER_ID

ORDER = "113-0000001-0000001"


def event(amz: Amz, order_id: str, **body) -> None:
    r = amz.admin("POST", f"/orders/{order_id}/events", json=body)
    assert r.status_code == 200, r.text


def test_each_order_change_is_published_valid_and_in_order(events):
    subscription_id = events.subscribe()
    amz = events.amz
    amz.load(make_order(ORDER, status="PENDING"))
    event(amz, ORDER, type="authorize_payment")
    event(amz, ORDER, type="request_cancellation", reason="BuyerCanceled")
    event(amz, ORDER, type="cancel", by="SELLER", reason="BuyerCanceled")
    shipped = "113-0000002-0000002"
    amz.load(make_order(shipped, status="UNSHIPPED", seed=2))
    event(amz, shipped, type="ship")
    messages = notifications(receive(events.sqs, events.url, 6))
    assert [change(m) for m in messages] == [
        (ORDER, "OrderStatusChange", "Pending"),
        (ORDER, "OrderStatusChange", "Unshipped"),
        (ORDER, "BuyerRequestedChange", "Unshipped"),
        (ORDER, "OrderStatusChange", "Canceled"),
        (shipped, "OrderStatusChange", "Unshipped"),
        (shipped, "OrderStatusChange", "Shipped"),
    ]
    first = messages[0]
    assert first["NotificationMetadata"]["SubscriptionId"] == subscription_id
    assert first["Payload"]["OrderChangeNotification"]["SellerId"] == amz.state.config.sellers[0].seller_id
    assert len({m["NotificationMetadata"]["NotificationId"] for m in messages}) == 6
    buyer = messages[2]["Payload"]["OrderChangeNotification"]
    assert buyer["OrderChangeTrigger"]["ChangeReason"] == "Buyer Requested Cancel"
    assert all(item["IsBuyerRequestedCancel"] for item in buyer["Summary"]["OrderItems"])
    ship = messages[5]["Payload"]["OrderChangeNotification"]["Summary"]
    assert ship["NumberOfItemsUnshipped"] == 0 and ship["NumberOfItemsShipped"] > 0
    # The change time is the order's lastUpdatedTime (to the second): what the consumer orders versions by.
    order = amz.get(f"/orders/2026-01-01/orders/{shipped}").json()["order"]
    trigger = messages[5]["Payload"]["OrderChangeNotification"]["OrderChangeTrigger"]["TimeOfOrderChange"]
    assert trigger[:19] == order["lastUpdatedTime"][:19]


def test_changes_that_keep_the_status_publish_nothing(events):
    """A refund or package data added later leave the status alone: Amazon sends no ORDER_CHANGE for them."""
    amz = events.amz
    amz.load(make_order(ORDER, status="UNSHIPPED"))
    events.subscribe()
    event(amz, ORDER, type="ship", packageData=False)
    event(amz, ORDER, type="package_data")
    event(amz, ORDER, type="refund")
    drain(amz.state)
    assert [change(m) for m in notifications(receive(events.sqs, events.url, 1))] == [
        (ORDER, "OrderStatusChange", "Shipped")
    ]


def test_no_subscription_no_message_and_other_sellers_orders_stay_out(events):
    amz = events.amz
    amz.load(make_order(ORDER, status="PENDING"))  # before the subscription
    events.subscribe()
    assert amz.admin("POST", "/sellers", json={"sellerId": "A2OTHER", "marketplaceIds": [US], "refreshToken": "rt2"})
    amz.load(make_order("113-0000009-0000009", status="PENDING"), seller_id="A2OTHER")
    drain(amz.state)
    assert receive(events.sqs, events.url, 0, timeout=0.5) == []
    event(amz, ORDER, type="authorize_payment")
    assert [change(m) for m in notifications(receive(events.sqs, events.url, 1))] == [
        (ORDER, "OrderStatusChange", "Unshipped")
    ]


def test_event_filter_order_change_types_and_marketplaces(events):
    events.subscribe(orderChangeTypes=["BuyerRequestedChange"], marketplaceIds=[US])
    amz = events.amz
    amz.load(make_order(ORDER, status="UNSHIPPED"))
    canadian = "702-0000003-0000003"
    amz.load(make_order(canadian, status="UNSHIPPED", marketplace=CA, seed=3))
    event(amz, ORDER, type="request_cancellation")
    event(amz, canadian, type="request_cancellation")
    event(amz, ORDER, type="cancel", by="SELLER", reason="BuyerCanceled")
    drain(amz.state)
    assert [change(m) for m in notifications(receive(events.sqs, events.url, 1))] == [
        (ORDER, "BuyerRequestedChange", "Unshipped")
    ]
    assert amz.state.stats["ORDER_CHANGE"]["filtered"] == 4  # two new orders, the CA request, the cancellation


def test_deleted_subscription_stops_delivery(events):
    subscription_id = events.subscribe()
    amz = events.amz
    path = f"/notifications/v1/subscriptions/ORDER_CHANGE/{subscription_id}"
    assert amz.call("DELETE", path, token=events.grantless).status_code == 200
    amz.load(make_order(ORDER, status="PENDING"))
    drain(amz.state)
    assert receive(events.sqs, events.url, 0, timeout=0.5) == []


def test_delivery_waits_the_configured_delay(sqs_endpoint):
    """Amazon delivers seconds after the change: notification_delay_seconds, divided by speed."""
    config = AmazonSandboxConfig(speed=2.0, sqs_endpoint_url=sqs_endpoint, notification_delay_seconds=3.0)
    with serve(config) as (base, app):
        amz = Amz(base, app)
        sqs = sqs_client(sqs_endpoint)
        url, arn = new_queue(sqs)
        destination = {"name": "q", "resourceSpecification": {"sqs": {"arn": arn}}}
        r = amz.post("/notifications/v1/destinations", token=grantless_token(amz), json=destination)
        subscription = {"payloadVersion": "1.0", "destinationId": r.json()["payload"]["destinationId"]}
        assert amz.post("/notifications/v1/subscriptions/ORDER_CHANGE", json=subscription).status_code == 200
        started = time.monotonic()
        amz.load(make_order(ORDER, status="PENDING"))
        assert not sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages")
        assert len(receive(sqs, url, 1, timeout=5)) == 1
        assert 1.4 <= time.monotonic() - started < 4


def _faults(amz: Amz, **faults) -> None:
    r = amz.admin("POST", "/notifications/faults", json=faults)
    assert r.status_code == 200, r.text


def test_fault_duplicate_delivers_the_same_notification_twice(events):
    events.subscribe()
    _faults(events.amz, duplicate_rate=1.0)
    events.amz.load(make_order(ORDER, status="PENDING"))
    first, second = notifications(receive(events.sqs, events.url, 2))
    assert first == second


def test_fault_out_of_order_lets_a_later_change_arrive_first(events):
    events.subscribe()
    amz = events.amz
    _faults(amz, out_of_order_rate=1.0, out_of_order_delay_seconds=100.0)  # 1 s at speed 100
    amz.load(make_order(ORDER, status="PENDING"))
    _faults(amz)
    event(amz, ORDER, type="authorize_payment")
    messages = notifications(receive(events.sqs, events.url, 2))
    assert [change(m)[2] for m in messages] == ["Unshipped", "Pending"]


def test_fault_malformed_sends_not_json_then_not_an_order_change(events):
    events.subscribe()
    amz = events.amz
    _faults(amz, malformed_rate=1.0)
    amz.load(make_order(ORDER, status="PENDING"))
    event(amz, ORDER, type="authorize_payment")
    not_json, wrong = receive(events.sqs, events.url, 2)
    with pytest.raises(ValueError):
        json.loads(not_json)
    with pytest.raises(jsonschema.ValidationError):
        order_change_validator().validate(json.loads(wrong))
    assert amz.state.stats["ORDER_CHANGE"]["malformed"] == 2


def test_fault_other_seller_adds_a_message_about_an_unknown_order(events):
    events.subscribe()
    amz = events.amz
    _faults(amz, other_seller_rate=1.0)
    amz.load(make_order(ORDER, status="PENDING"))
    messages = notifications(receive(events.sqs, events.url, 2))
    sellers = {m["Payload"]["OrderChangeNotification"]["SellerId"]: change(m)[0] for m in messages}
    assert sellers[amz.state.config.sellers[0].seller_id] == ORDER
    assert sellers[OTHER_SELLER_ID] not in amz.state.orders


def test_notification_faults_settings_are_checked(events):
    amz = events.amz
    assert amz.admin("POST", "/notifications/faults", json={"duplicate_rate": 2}).status_code == 400
    assert amz.admin("POST", "/notifications/faults", json={"bogus": 1}).status_code == 400
    _faults(amz, duplicate_rate=0.5, seed=3)
    assert amz.admin("GET", "/notifications/faults").json()["duplicate_rate"] == 0.5
