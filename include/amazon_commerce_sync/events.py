"""Amazon ``ORDER_CHANGE`` notifications off SQS: the watcher's trigger and the reduction of each message.

``OrderChangeTrigger`` is the ``BaseEventTrigger`` of the ``AssetWatcher`` that schedules ``amazon_order_events``
(Airflow 3.3 accepts only a ``BaseEventTrigger`` there: ``airflow/sdk/definitions/asset/__init__.py``). Its
``run()`` runs the Amazon provider's ``SqsSensorTrigger`` (a ``BaseEventTrigger`` itself in 9.39.0: receive up to
``max_messages`` x ``num_batches``, delete what it received, one event, end) and reduces every message before
the event leaves the triggerer. It wraps the provider's trigger instead of subclassing it so that a DAG file
parses without loading the provider (boto3, requests): this module imports only the standard library and
``airflow.triggers.base``; the provider is imported in ``run()``, in the triggerer.

Why reduce: the event's payload becomes the asset event's ``extra`` (``models/trigger.py`` ``submit_event``:
``{"from_trigger": True, "payload": ...}``), stored in Airflow's metadata database and shown in the UI, and
ORDER_CHANGE carries ``DestinationPostalCode`` (buyer data). :func:`reduce_message` keeps ids, times and the
status only (:data:`KEPT`) and never raises: a body that is not JSON or not an ORDER_CHANGE 1.0 becomes
``{"messageId", "quarantine": reason}``. Fields follow ``reference/sp-api/schemas/OrderChangeNotification.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from amazon_commerce_sync.constants import SQS_CONN_ID

#: What a reduced message keeps (camelCase of the notification's own names); nothing else leaves the triggerer.
KEPT = (
    "messageId",
    "notificationId",
    "sellerId",
    "amazonOrderId",
    "orderChangeType",
    "changeTime",
    "marketplaceId",
    "orderStatus",
)
#: ``OrderChangeType`` values of the schema (``DeliveryTipChange`` is not subscribed but may be valid).
CHANGE_TYPES = ("OrderStatusChange", "BuyerRequestedChange", "DeliveryTipChange")
_ORDER_ID = re.compile(r"^\d{3}-\d{7}-\d{7}$")
_SELLER_ID = re.compile(r"^[A-Z0-9]{6,20}$")


def _time(value: Any) -> str:
    """An ISO 8601 time as the notification gives it (``2020-01-11T00:09:53.109Z``), checked; ValueError if not."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def reduce_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """One SQS message (``{"MessageId", "Body", ...}``, as ``receive_message`` answers) reduced to :data:`KEPT`.

    :returns: ``{"messageId", "notificationId", "sellerId", "amazonOrderId", "orderChangeType", "changeTime"
        (``OrderChangeTrigger.TimeOfOrderChange``), "marketplaceId", "orderStatus"}``, or ``{"messageId",
        "quarantine": reason}`` for a body that is not JSON, not an ORDER_CHANGE 1.0 or misses a field we need.
        Never raises; never holds buyer data.
    """
    message_id = str(message.get("MessageId") or message.get("messageId") or "?")[:64]
    try:
        body = json.loads(message.get("Body") or "")
    except (TypeError, ValueError):
        return {"messageId": message_id, "quarantine": "not JSON"}
    try:
        if not isinstance(body, dict) or body.get("NotificationType") != "ORDER_CHANGE":
            return {"messageId": message_id, "quarantine": "not an ORDER_CHANGE notification"}
        if body.get("PayloadVersion") != "1.0":
            return {"messageId": message_id, "quarantine": f"unsupported PayloadVersion {body.get('PayloadVersion')!r}"}
        change = body["Payload"]["OrderChangeNotification"]
        order_id, seller_id = change["AmazonOrderId"], change["SellerId"]
        if not (isinstance(order_id, str) and _ORDER_ID.match(order_id)):
            return {"messageId": message_id, "quarantine": "AmazonOrderId is not an Amazon order id"}
        if not (isinstance(seller_id, str) and _SELLER_ID.match(seller_id)):
            return {"messageId": message_id, "quarantine": "SellerId is not a seller id"}
        if change["OrderChangeType"] not in CHANGE_TYPES:
            return {"messageId": message_id, "quarantine": f"unknown OrderChangeType {change['OrderChangeType']!r}"}
        summary = change.get("Summary") or {}
        return {
            "messageId": message_id,
            "notificationId": str(body["NotificationMetadata"]["NotificationId"])[:64],
            "sellerId": seller_id,
            "amazonOrderId": order_id,
            "orderChangeType": change["OrderChangeType"],
            "changeTime": _time(change["OrderChangeTrigger"]["TimeOfOrderChange"]),
            "marketplaceId": str(summary.get("MarketplaceId") or ""),
            "orderStatus": str(summary.get("OrderStatus") or ""),
        }
    except (KeyError, TypeError, ValueError) as exc:
        return {"messageId": message_id, "quarantine": f"not a valid ORDER_CHANGE: {type(exc).__name__} {exc}"[:200]}


def reduce_batch(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`reduce_message` of each message of a batch."""
    return [reduce_message(m) for m in messages]


def reduce_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload of ``SqsSensorTrigger``'s event (``{"status", "message_batch": [...]}``) with its batch reduced.

    A batch already reduced (items without ``Body``) is kept as it is, so reducing twice changes nothing.
    """
    batch = payload.get("message_batch") or []
    reduced = [dict(m) if "Body" not in m and "messageId" in m else reduce_message(m) for m in batch]
    return {"status": payload.get("status"), "message_batch": reduced}


def newer_events(inlet_events: Any, asset: Any, run_type: str | None, run_after: Any) -> Callable[[], list[Any]] | None:
    """A reader of the asset events of ``asset`` recorded after an asset-triggered run's ``run_after``: each call
    gives those it has not given before (Task SDK ``inlet_events[asset].after``, ``asset`` an inlet of the task;
    ``after`` is inclusive in Airflow 3.3, ``timestamp >= after``, so events are told apart by their ``id``).
    With ``max_active_runs=1`` they wait for the whole run (``order_events.later_events`` says why); the run's
    fetch stages them instead, and the later run stages them again as duplicates. None for other runs."""
    if inlet_events is None or run_type != "asset_triggered" or run_after is None:
        return None
    since = run_after.isoformat()
    given: set[Any] = set()

    def read() -> list[Any]:
        nonlocal since
        found = [e for e in inlet_events[asset].after(since) if e.id not in given]
        given.update(e.id for e in found)
        if found:
            since = max(e.timestamp for e in found).isoformat()
        return found

    return read


class OrderChangeTrigger(BaseEventTrigger):
    """Waits for ORDER_CHANGE messages on an SQS queue; fires one event per received batch, reduced.

    :param sqs_queue: the queue's URL.
    :param aws_conn_id: the Airflow ``aws`` connection (``extra.endpoint_url`` for a local SQS).
    :param max_messages: messages per ``ReceiveMessage`` (SQS: at most 10).
    :param num_batches: ``ReceiveMessage`` calls per event. 1: every further call long-polls its full
        ``wait_time_seconds`` when the first emptied the queue, delaying the event (5 x 10 s added up to 40 s).
    :param wait_time_seconds: long-poll seconds of each call (SQS: at most 20; it answers as soon as a message
        arrives).
    :param waiter_delay: seconds between pokes when the queue was empty.
    :param region_name: overrides the connection's region.
    """

    def __init__(
        self,
        sqs_queue: str,
        aws_conn_id: str = SQS_CONN_ID,
        max_messages: int = 10,
        num_batches: int = 1,
        wait_time_seconds: int = 20,
        waiter_delay: int = 1,
        region_name: str | None = None,
    ) -> None:
        super().__init__()
        self.sqs_queue = sqs_queue
        self.aws_conn_id = aws_conn_id
        self.max_messages = max_messages
        self.num_batches = num_batches
        self.wait_time_seconds = wait_time_seconds
        self.waiter_delay = waiter_delay
        self.region_name = region_name

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "sqs_queue": self.sqs_queue,
                "aws_conn_id": self.aws_conn_id,
                "max_messages": self.max_messages,
                "num_batches": self.num_batches,
                "wait_time_seconds": self.wait_time_seconds,
                "waiter_delay": self.waiter_delay,
                "region_name": self.region_name,
            },
        )

    def sqs_trigger(self):
        """The Amazon provider's ``SqsSensorTrigger`` doing the receiving (deletes on reception)."""
        from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger

        return SqsSensorTrigger(
            sqs_queue=self.sqs_queue,
            aws_conn_id=self.aws_conn_id,
            max_messages=self.max_messages,
            num_batches=self.num_batches,
            wait_time_seconds=self.wait_time_seconds,
            waiter_delay=self.waiter_delay,
            region_name=self.region_name,
            delete_message_on_reception=True,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Fire one event per received batch, for as long as the triggerer runs it (a watcher may fire many).

        The provider's trigger ends after each event; this loop starts it again. A failure (queue unavailable,
        credentials refused, a failed ``DeleteMessageBatch``) is logged by its kind only and retried after
        :data:`RETRY_DELAYS` (1 s growing to 5 minutes): never raised, because the provider's delete error
        carries the raw messages (``DestinationPostalCode``) in its text and a failed watcher would stop the event
        path until the triggerer restarts; the polling sweep carries the load meanwhile.
        """
        import asyncio

        failures = 0
        while True:
            try:
                async for event in self.sqs_trigger().run():
                    failures = 0
                    yield TriggerEvent(reduce_payload(event.payload))
            except Exception as exc:  # noqa: BLE001 - any failure of the queue is retried, never raised
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                failures += 1
                self.log.warning(
                    "ORDER_CHANGE queue failed (%s, %d in a row); receiving again in %d s", _kind(exc), failures, delay
                )
                await asyncio.sleep(delay)


#: Seconds before receiving again after the 1st, 2nd, ... consecutive failure of the queue.
RETRY_DELAYS = (1, 2, 5, 10, 30, 60, 120, 300)


def _kind(exc: BaseException) -> str:
    """What failed, without the exception's text (which may quote message bodies): the exception's class and,
    for an AWS error (botocore ``ClientError``), its error code."""
    code = getattr(exc, "response", None)
    code = code.get("Error", {}).get("Code") if isinstance(code, Mapping) else None
    return f"{type(exc).__name__}: {code}" if code else type(exc).__name__
