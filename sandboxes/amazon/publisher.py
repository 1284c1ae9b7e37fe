"""ORDER_CHANGE notifications: what Amazon publishes to a subscribed SQS queue when an order changes.

For every order change the sandbox makes (``SandboxState.put_order`` / ``touch``: a new order, payment
authorised, cancellation, a buyer's cancellation request, a shipment), each ``ORDER_CHANGE`` subscription of the
order's seller gets a notification valid against ``sp-api/schemas/OrderChangeNotification.json``, delivered to its
destination's SQS queue ``notification_delay_seconds`` (divided by speed) after the change, with the standard AWS
SDK (boto3) at ``config.sqs_endpoint_url`` (moto locally; dummy credentials: the queue ARN's account id).

Amazon publishes ORDER_CHANGE for two change types the sandbox makes (Notifications API "Notification type
values"; the ORDER_CHANGE schema in reference/sp-api/schemas): ``OrderStatusChange`` (a new order, or its status
changes) and ``BuyerRequestedChange`` (a buyer asks to cancel). Changes that leave the status alone (a refund,
package data added to a shipment, a seller order id) publish nothing, as on Amazon: the reconciling
``searchOrders`` sweep catches them.
The subscription's ``eventFilter`` (``orderChangeTypes``, ``marketplaceIds``) is applied. Delivery faults come
from ``state.notification_faults`` (``faults.NotificationFaults``).
"""

from __future__ import annotations

import copy
import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sandboxes.amazon import domain
from sandboxes.amazon.store import SandboxState

log = logging.getLogger(__name__)

STATS = "ORDER_CHANGE"  # the stats entry (``/_sandbox/stats``) of notifications
OTHER_SELLER_ID = "A3OTHERSELLER9Z"  # a seller the application does not serve (other_seller fault)
STATUS = {  # Orders 2026-01-01 fulfillmentStatus -> ORDER_CHANGE Summary.OrderStatus
    "PENDING_AVAILABILITY": "PendingAvailability",
    "PENDING": "Pending",
    "UNSHIPPED": "Unshipped",
    "PARTIALLY_SHIPPED": "PartiallyShipped",
    "SHIPPED": "Shipped",
    "CANCELLED": "Canceled",
    "UNFULFILLABLE": "Unfulfillable",
}
PROGRAMS = {"PRIME": "Prime", "AMAZON_BUSINESS": "Business", "PREMIUM": "Premium"}
ATTEMPTS = 5  # SQS send attempts before a notification counts as undelivered


def event_time(t: float) -> str:
    """Epoch seconds -> ISO 8601 with milliseconds, as in Amazon's notifications (``2020-01-11T00:09:53.109Z``)."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(t * 1000) % 1000:03d}Z"


def changes(previous: dict[str, Any] | None, order: dict[str, Any]) -> list[tuple[str, str]]:
    """The (OrderChangeType, ChangeReason) pairs Amazon notifies for ``previous`` -> ``order``."""
    status = STATUS[domain.status_of(order)]
    found: list[tuple[str, str]] = []
    if previous is None:
        found.append(("OrderStatusChange", f"New order ({status})"))
    elif domain.status_of(previous) != domain.status_of(order):
        found.append(("OrderStatusChange", f"Order status changed to {status}"))
    asked_before = previous is not None and _buyer_requested_cancel(previous)
    if _buyer_requested_cancel(order) and not asked_before:
        found.append(("BuyerRequestedChange", "Buyer Requested Cancel"))
    return found


def _buyer_requested_cancel(order: dict[str, Any]) -> bool:
    return any(item.get("cancellation", {}).get("cancellationRequest") for item in order["orderItems"])


def order_change(
    seller_id: str, order: dict[str, Any], change: tuple[str, str], t: float, application_id: str, subscription_id: str
) -> dict[str, Any]:
    """An ORDER_CHANGE notification (NotificationVersion 1.0, PayloadVersion 1.0, OrderLevel) for ``order``."""
    fulfillment = order.get("fulfillment", {})
    status = STATUS[fulfillment["fulfillmentStatus"]]
    merchant = fulfillment.get("fulfilledBy") != "AMAZON"
    items = []
    for item in order["orderItems"]:
        shipped = domain.shipped_qty(item)
        entry: dict[str, Any] = {
            "OrderItemId": item["orderItemId"],
            "SellerSKU": item.get("product", {}).get("sellerSku", ""),
            "SupplySourceId": None,
            "OrderItemStatus": "Shipped" if shipped >= int(item["quantityOrdered"]) else "Unshipped",
            "Quantity": int(item["quantityOrdered"]),
            "QuantityShipped": shipped,
            "IsBuyerRequestedCancel": bool(item.get("cancellation", {}).get("cancellationRequest")),
        }
        items.append(entry)
    summary: dict[str, Any] = {
        "MarketplaceId": order["salesChannel"].get("marketplaceId", ""),
        "OrderStatus": status,
        "PurchaseDate": order.get("createdTime"),
        "DestinationPostalCode": order.get("recipient", {}).get("deliveryAddress", {}).get("postalCode"),
        "FulfillmentType": "MFN" if merchant else "AFN",
        "OrderType": "Preorder" if "PREORDER" in order.get("programs", []) else "StandardOrder",
        "NumberOfItemsShipped": sum(i["QuantityShipped"] for i in items),
        "NumberOfItemsUnshipped": sum(max(0, i["Quantity"] - i["QuantityShipped"]) for i in items),
        "OrderPrograms": [PROGRAMS[p] for p in order.get("programs", []) if p in PROGRAMS],
        "OrderItems": items,
    }
    ship_by, deliver_by = fulfillment.get("shipByWindow") or {}, fulfillment.get("deliverByWindow") or {}
    for key, window, bound in (
        ("EarliestShipDate", ship_by, "earliestDateTime"),
        ("LatestShipDate", ship_by, "latestDateTime"),
        ("EarliestDeliveryDate", deliver_by, "earliestDateTime"),
        ("LatestDeliveryDate", deliver_by, "latestDateTime"),
    ):
        # Delivery dates: seller-fulfilled orders only; the latest one not while Pending or Canceled (schema).
        if "Delivery" in key and (not merchant or key == "LatestDeliveryDate" and status in ("Pending", "Canceled")):
            continue
        if window.get(bound):
            summary[key] = window[bound]
    published = event_time(time.time())
    return {
        "NotificationVersion": "1.0",
        "NotificationType": "ORDER_CHANGE",
        "PayloadVersion": "1.0",
        "EventTime": published,
        "Payload": {
            "OrderChangeNotification": {
                "NotificationLevel": "OrderLevel",
                "SellerId": seller_id,
                "AmazonOrderId": order["orderId"],
                "OrderChangeType": change[0],
                "OrderChangeTrigger": {"TimeOfOrderChange": event_time(t), "ChangeReason": change[1]},
                "Summary": summary,
            }
        },
        "NotificationMetadata": {
            "ApplicationId": application_id,
            "SubscriptionId": subscription_id,
            "PublishTime": published,
            "NotificationId": str(uuid.uuid4()),
        },
    }


def _passes(event_filter: dict[str, Any], order: dict[str, Any], change_type: str) -> bool:
    types = event_filter.get("orderChangeTypes")
    marketplaces = event_filter.get("marketplaceIds")
    if types and change_type not in types:
        return False
    return not marketplaces or order["salesChannel"].get("marketplaceId") in marketplaces


def on_order_change(state: SandboxState, record: dict[str, Any], previous: dict[str, Any] | None, t: float) -> None:
    """The order listener: publish what Amazon would for this change (caller holds ``state.lock``)."""
    subscriptions = [
        s
        for s in state.subscriptions.values()
        if s["sellerId"] == record["sellerId"] and s["notificationType"] == "ORDER_CHANGE"
    ]
    if not subscriptions:
        return
    order = record["order"]
    found = changes(previous, order)
    for entry in subscriptions:
        subscription = entry["subscription"]
        destination = state.destinations.get(subscription["destinationId"])
        if destination is None:
            continue
        event_filter = (subscription.get("processingDirective") or {}).get("eventFilter") or {}
        for change in found:
            if not _passes(event_filter, order, change[0]):
                state.count(STATS, "filtered")
                continue
            message = order_change(
                record["sellerId"], order, change, t, state.config.application_id, subscription["subscriptionId"]
            )
            _schedule(state, destination["resource"]["sqs"]["arn"], message)


def _schedule(state: SandboxState, arn: str, message: dict[str, Any]) -> None:
    """Queue ``message`` for delivery, applying the notification faults."""
    config, faults = state.config, state.notification_faults
    deliveries: Deliveries = state.deliveries  # type: ignore[attr-defined]
    due = time.time() + config.notification_delay_seconds / config.speed
    body = json.dumps(message)
    state.count(STATS, "published")
    if faults.roll("malformed_rate"):
        body = faults.malformed(body)
        state.count(STATS, "malformed")
    if faults.roll("out_of_order_rate"):
        due += faults.out_of_order_delay_seconds / config.speed
        state.count(STATS, "heldBack")
    deliveries.schedule(due, arn, body)
    if faults.roll("duplicate_rate"):
        deliveries.schedule(due, arn, body)
        state.count(STATS, "duplicated")
    if faults.roll("other_seller_rate"):
        other = copy.deepcopy(message)
        notification = other["Payload"]["OrderChangeNotification"]
        notification["SellerId"] = OTHER_SELLER_ID
        notification["AmazonOrderId"] = f"999-{uuid.uuid4().int % 10**7:07d}-{uuid.uuid4().int % 10**7:07d}"
        other["NotificationMetadata"]["NotificationId"] = str(uuid.uuid4())
        deliveries.schedule(due, arn, json.dumps(other))
        state.count(STATS, "otherSeller")


def _arn_parts(arn: str) -> tuple[str, str, str]:
    """``arn:aws:sqs:REGION:ACCOUNT:NAME`` -> (region, account, name)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[:3] != ["arn", "aws", "sqs"]:
        raise ValueError(f"not an SQS queue ARN: {arn}")
    return parts[3], parts[4], parts[5]


def _client(endpoint_url: str, region: str, account: str) -> Any:
    import boto3  # the sandbox runs without boto3 as long as no SQS endpoint is configured

    key = account if account.isdigit() and len(account) == 12 else "sandbox"
    return boto3.client(
        "sqs", endpoint_url=endpoint_url, region_name=region, aws_access_key_id=key, aws_secret_access_key="sandbox"
    )


def queue_problem(state: SandboxState, arn: str) -> str | None:
    """Why ``createDestination`` must refuse ``arn`` (no such queue), or None. Without an SQS endpoint every ARN
    is accepted; an unreachable endpoint is not the caller's fault and is accepted too (delivery retries)."""
    endpoint = state.config.sqs_endpoint_url
    if not endpoint:
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        region, account, name = _arn_parts(arn)
        _client(endpoint, region, account).get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
    except ValueError as exc:
        return str(exc)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if "NonExistentQueue" in code or "QueueDoesNotExist" in code:
            return f"The SQS queue {arn} does not exist or Amazon cannot send messages to it."
        raise
    except BotoCoreError as exc:  # endpoint unreachable: not the caller's fault
        log.warning("SQS endpoint not reachable while checking %s: %s", arn, exc)
    return None


class Deliveries:
    """A delivery thread: sends queued bodies to SQS when due; retries a failed send (1 s apart,
    ``ATTEMPTS`` times) and counts it ``undelivered`` after that. Started on first use; ``close()`` stops it."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._heap: list[tuple[float, int, str, str, int]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._inflight = 0
        self._urls: dict[str, tuple[Any, str]] = {}

    def schedule(self, due: float, arn: str, body: str, attempt: int = 1) -> None:
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._seq), arn, body, attempt))
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="amazon-sandbox-sqs", daemon=True)
                self._thread.start()
            self._cond.notify()

    def pending(self) -> int:
        """Notifications not yet sent (queued or being sent)."""
        with self._cond:
            return len(self._heap) + self._inflight

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0][0] > time.time()):
                    self._cond.wait(timeout=max(0.0, self._heap[0][0] - time.time()) if self._heap else None)
                if self._closed:
                    return
                _, _, arn, body, attempt = heapq.heappop(self._heap)
                self._inflight += 1
            try:
                self._send(arn, body, attempt)
            finally:
                with self._cond:
                    self._inflight -= 1

    def _send(self, arn: str, body: str, attempt: int) -> None:
        endpoint = self.state.config.sqs_endpoint_url
        if not endpoint:
            self.state.count(STATS, "undelivered")
            return
        try:
            client, url = self._urls.get(arn) or self._resolve(endpoint, arn)
            client.send_message(QueueUrl=url, MessageBody=body)
        except Exception as exc:  # noqa: BLE001 - a failed send is retried, never raised into the sandbox
            self._urls.pop(arn, None)
            if attempt < ATTEMPTS:
                self.schedule(time.time() + 1.0, arn, body, attempt + 1)
            else:
                log.warning("ORDER_CHANGE to %s undelivered after %s attempts: %s", arn, attempt, exc)
                self.state.count(STATS, "undelivered")
            return
        self.state.count(STATS, "delivered")

    def _resolve(self, endpoint: str, arn: str) -> tuple[Any, str]:
        region, account, name = _arn_parts(arn)
        client = _client(endpoint, region, account)
        url = client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        self._urls[arn] = (client, url)
        return client, url


def attach(state: SandboxState) -> Deliveries:
    """Register the ORDER_CHANGE publisher on ``state``; returns its delivery thread (``state.deliveries``)."""
    deliveries = Deliveries(state)
    state.deliveries = deliveries  # type: ignore[attr-defined]
    state.order_listeners.append(lambda record, previous, t: on_order_change(state, record, previous, t))
    return deliveries
