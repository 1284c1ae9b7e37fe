"""Amazon order feeds: building the XML, submitting outbox entries once, settling the processing report.

Cancellations (``POST_ORDER_ACKNOWLEDGEMENT_DATA``) and refunds
(``POST_PAYMENT_ADJUSTMENT_DATA``) are pushed to Amazon as feeds. Amazon allows
few feed submissions (createFeed: 0.0083 requests/s), so every pending outbox
entry of a kind goes into ONE feed per run, one ``<Message>`` per entry.

Exactly once: entries move ``pending → submitting`` (compare-and-set, into a batch
``batch:<uuid>``) before ``createFeed``, and ``submitting → submitted`` with the feed
id after it. The batch is sent with ``commerce_writes.write_once``: if the answer to
``createFeed`` is lost, Amazon is asked for a feed it created since the batch was
recorded (getFeeds), now or by the next run, and that feed is adopted instead of
submitting again. A feed can be DONE with some messages failed: ``conclude_feed``
reads the processing report and marks each entry accepted or rejected with Amazon's
message.
"""

from __future__ import annotations

import dataclasses
import logging
import xml.etree.ElementTree as ET  # noqa: S405 - only used to BUILD documents
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import defusedxml.ElementTree as SafeET

from amazon_commerce_sync import constants
from amazon_commerce_sync.commerce_writes import keys
from amazon_commerce_sync.commerce_writes.protocol import Done, write_once
from amazon_commerce_sync.errors import FatalError, RetriableError
from amazon_commerce_sync.store import OutboxStatus, StateStore, WriteRow, WriteStatus
from amazon_commerce_sync.times import parse_time, utcnow

log = logging.getLogger(__name__)

ORDER_ACKNOWLEDGEMENT = "POST_ORDER_ACKNOWLEDGEMENT_DATA"
PAYMENT_ADJUSTMENT = "POST_PAYMENT_ADJUSTMENT_DATA"
SUBMITTING = OutboxStatus.SUBMITTING
FINAL_STATUSES = ("DONE", "CANCELLED", "FATAL")

CANCEL_REASONS = constants.CANCEL_REASONS


# -- building ----------------------------------------------------------------------------------
def envelope(message_type: str, merchant_id: str, messages: Sequence[ET.Element]) -> bytes:
    root = ET.Element("AmazonEnvelope")
    root.set("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
    root.set("xsi:noNamespaceSchemaLocation", "amzn-envelope.xsd")
    header = ET.SubElement(root, "Header")
    ET.SubElement(header, "DocumentVersion").text = "1.01"
    ET.SubElement(header, "MerchantIdentifier").text = merchant_id
    ET.SubElement(root, "MessageType").text = message_type
    root.extend(messages)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _message(message_id: int) -> ET.Element:
    message = ET.Element("Message")
    ET.SubElement(message, "MessageID").text = str(message_id)
    return message


def cancellation_message(
    message_id: int, amazon_order_id: str, item_codes: Sequence[str], reason: str, merchant_order_id: str | None = None
) -> ET.Element:
    """An OrderAcknowledgement with StatusCode Failure: cancels the (unshipped) order."""
    if reason not in CANCEL_REASONS:
        raise ValueError(f"unknown CancelReason {reason!r}")
    message = _message(message_id)
    ack = ET.SubElement(message, "OrderAcknowledgement")
    ET.SubElement(ack, "AmazonOrderID").text = amazon_order_id
    if merchant_order_id:
        ET.SubElement(ack, "MerchantOrderID").text = merchant_order_id
    ET.SubElement(ack, "StatusCode").text = "Failure"
    for code in item_codes:
        item = ET.SubElement(ack, "Item")
        ET.SubElement(item, "AmazonOrderItemCode").text = code
        ET.SubElement(item, "CancelReason").text = reason
    return message


@dataclasses.dataclass(frozen=True)
class AdjustedItem:
    amazon_order_item_code: str
    merchant_adjustment_item_id: str
    reason: str
    components: Mapping[str, Decimal]  # Principal, Shipping, Tax, ShippingTax, ...
    currency: str
    quantity: int | None = None


def adjustment_message(message_id: int, amazon_order_id: str, items: Sequence[AdjustedItem]) -> ET.Element:
    """An OrderAdjustment (ActionType Refund) with each item's components."""
    message = _message(message_id)
    adjustment = ET.SubElement(message, "OrderAdjustment")
    ET.SubElement(adjustment, "AmazonOrderID").text = amazon_order_id
    ET.SubElement(adjustment, "ActionType").text = "Refund"
    for entry in items:
        item = ET.SubElement(adjustment, "AdjustedItem")
        ET.SubElement(item, "AmazonOrderItemCode").text = entry.amazon_order_item_code
        ET.SubElement(item, "MerchantAdjustmentItemID").text = entry.merchant_adjustment_item_id
        ET.SubElement(item, "AdjustmentReason").text = entry.reason
        prices = ET.SubElement(item, "ItemPriceAdjustments")
        for kind, amount in entry.components.items():
            component = ET.SubElement(prices, "Component")
            ET.SubElement(component, "Type").text = kind
            value = ET.SubElement(component, "Amount", currency=entry.currency)
            value.text = f"{Decimal(amount):.2f}"
        if entry.quantity:
            ET.SubElement(item, "Quantity").text = str(entry.quantity)
    return message


# -- reading the processing report ------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ReportResult:
    message_id: int
    result_code: str  # Error | Warning
    message_code: str
    description: str
    amazon_order_id: str | None


@dataclasses.dataclass(frozen=True)
class ProcessingReport:
    status_code: str
    processed: int
    successful: int
    with_error: int
    results: tuple[ReportResult, ...]

    def errors_by_message(self) -> dict[int, list[ReportResult]]:
        out: dict[int, list[ReportResult]] = {}
        for result in self.results:
            if result.result_code == "Error":
                out.setdefault(result.message_id, []).append(result)
        return out


def _text(node, path: str, default: str = "") -> str:
    found = node.find(path)
    return (found.text or "").strip() if found is not None and found.text else default


def parse_processing_report(content: bytes) -> ProcessingReport:
    """Parse Amazon's processing report (defusedxml: the document comes from outside)."""
    root = SafeET.fromstring(content)
    report = root if root.tag == "ProcessingReport" else root.find(".//ProcessingReport")
    if report is None:
        raise ValueError("the document is not a ProcessingReport")
    summary = report.find("ProcessingSummary")

    def count(name: str) -> int:
        return int(_text(summary, name, "0") or 0) if summary is not None else 0

    results = []
    for node in report.findall("Result"):
        message_id = _text(node, "MessageID", "0")
        results.append(
            ReportResult(
                message_id=int(message_id) if message_id.isdigit() else 0,
                result_code=_text(node, "ResultCode"),
                message_code=_text(node, "ResultMessageCode"),
                description=_text(node, "ResultDescription"),
                amazon_order_id=_text(node, "AdditionalInfo/AmazonOrderID") or None,
            )
        )
    return ProcessingReport(
        status_code=_text(report, "StatusCode"),
        processed=count("MessagesProcessed"),
        successful=count("MessagesSuccessful"),
        with_error=count("MessagesWithError"),
        results=tuple(results),
    )


# -- submitting outbox entries once -----------------------------------------------------------
BuildMessage = Callable[[int, dict[str, Any]], ET.Element]
CONTENT_TYPE = "text/xml; charset=UTF-8"
CLOCK_SLACK = timedelta(seconds=5)


def submit_outbox(
    store: StateStore,
    amazon,
    *,
    account_id: str,
    kind: str,
    feed_type: str,
    message_type: str,
    merchant_id: str,
    marketplace_ids: Sequence[str],
    build_message: BuildMessage,
    now: Callable[[], datetime] = utcnow,
) -> str | None:
    """Put every pending entry of ``kind`` into one feed; returns its feed id (None when nothing to send).

    The entries are claimed (``pending → submitting``, compare-and-set) into a batch, and the batch is
    sent with ``write_once``: a lost ``createFeed`` answer is resolved by looking for the feed (getFeeds).
    Entries a run left ``submitting`` are resolved first (``_recover_submitting``).

    :raises FatalError: Amazon refused the feed (its entries are pending again).
    :raises RetriableError: the outcome is unknown (its entries stay ``submitting`` for the next run).
    """
    adopted = _recover_submitting(store, amazon, account_id=account_id, kind=kind, feed_type=feed_type)
    if adopted:
        return adopted
    pending = store.outbox.entries(kind=kind, statuses=[OutboxStatus.PENDING], account_id=account_id)
    if not pending:
        return None
    batch = keys.feed_batch()
    claimed = sum(
        store.outbox.transition(
            entry["id"],
            SUBMITTING,
            expect=OutboxStatus.PENDING,
            feed_id=batch.natural_key,
            message_id=number,
            count_attempt=True,
        )
        for number, entry in enumerate(pending, start=1)
    )
    entries = store.outbox.entries(kind=kind, feed_id=batch.natural_key)
    if claimed != len(pending):
        log.info("%s: %d of %d entries were claimed by another run", kind, len(pending) - claimed, len(pending))
    if not entries:
        return None
    content = envelope(message_type, merchant_id, [build_message(e["message_id"], e["payload"]) for e in entries])

    def send() -> Done:
        document_id, url = amazon.create_feed_document(CONTENT_TYPE)
        amazon.upload_feed_document(url, content, CONTENT_TYPE)
        return Done(amazon.create_feed(feed_type, marketplace_ids, document_id), value=document_id)

    try:
        result = write_once(
            store.writes,
            batch,
            send=send,
            look=lambda earlier: _feed_of(store, amazon, feed_type, earlier),
            detail={"feed_type": feed_type, "started": now().isoformat()},
        )
    except FatalError:
        _move(store, entries, OutboxStatus.PENDING, expect=SUBMITTING, feed_id="")
        raise
    except RetriableError:
        log.warning("%s: createFeed outcome unknown for %d messages; the next run checks getFeeds", kind, len(entries))
        raise
    feed_id = str(result.done.entity_id)
    _mark_submitted(store, account_id, feed_type, feed_id, result.value, entries)
    log.info("%s: submitted feed %s with %d messages", kind, feed_id, len(entries))
    return feed_id


def _feed_of(store: StateStore, amazon, feed_type: str, intent: WriteRow | None) -> Done | None:
    """The feed a batch's ``createFeed`` made, when its answer was lost: the oldest feed of the type that
    Amazon created since the batch's intent (any, without one) and that no batch has claimed (getFeeds)."""
    started = ((intent or {}).get("detail") or {}).get("started")
    since = parse_time(started) - CLOCK_SLACK if started else None
    known = {f["feed_id"] for f in store.outbox.open_feeds(feed_type)}
    candidates = [
        f
        for f in amazon.list_feeds([feed_type])
        if f.get("feedId") not in known
        and store.outbox.get_feed(f.get("feedId")) is None
        and (since is None or parse_time(f["createdTime"]) >= since)
    ]
    if not candidates:
        return None
    return Done(sorted(candidates, key=lambda f: f["createdTime"])[0]["feedId"])


def _mark_submitted(store: StateStore, account_id, feed_type, feed_id, document_id, entries) -> None:
    store.outbox.record_feed(feed_id, account_id, feed_type, document_id)
    _move(store, entries, OutboxStatus.SUBMITTED, expect=SUBMITTING, feed_id=feed_id)


def _recover_submitting(store: StateStore, amazon, *, account_id: str, kind: str, feed_type: str) -> str | None:
    """Entries left 'submitting' by a run that died around createFeed: finish their batch if its feed exists
    (recorded, or found by ``_feed_of``), else put them back to pending (they go into the next feed)."""
    stuck = store.outbox.entries(kind=kind, statuses=[SUBMITTING], account_id=account_id)
    for batch in sorted({e["feed_id"] for e in stuck}):
        entries = [e for e in stuck if e["feed_id"] == batch]
        intent = store.writes.get(batch)
        if intent is not None and intent["status"] == WriteStatus.DONE:
            feed = Done(intent["commerce_entity_id"])
        else:
            feed = _feed_of(store, amazon, feed_type, intent)
            if feed is not None:
                store.writes.record(batch, "feed", None, feed.entity_id)
        if feed is not None:
            _mark_submitted(store, account_id, feed_type, str(feed.entity_id), None, entries)
            log.info("%s: adopted feed %s created by an interrupted run", kind, feed.entity_id)
            return str(feed.entity_id)
        _move(store, entries, OutboxStatus.PENDING, expect=SUBMITTING, feed_id="")
        store.writes.forget(batch)
    return None


def _move(store: StateStore, entries, to: OutboxStatus, *, expect: OutboxStatus, **fields) -> int:
    """Move each entry still in ``expect`` to ``to``; returns how many moved."""
    return sum(store.outbox.transition(e["id"], to, expect=expect, **fields) for e in entries)


def conclude_feed(store: StateStore, amazon, feed_id: str) -> dict[str, Any]:
    """If Amazon finished the feed, read its processing report and mark each entry accepted or rejected.

    Returns ``{feed_id, status}`` while Amazon is still processing, then ``{feed_id, status, accepted,
    rejected}``. A feed that ended CANCELLED or FATAL applied nothing: its entries are pending again.
    """
    feed = amazon.get_feed(feed_id)
    status = feed.get("processingStatus", "UNKNOWN")
    if status not in FINAL_STATUSES:
        return {"feed_id": feed_id, "status": status}
    entries = store.outbox.entries(feed_id=feed_id)
    accepted = rejected = 0
    if status == "DONE" and feed.get("resultFeedDocumentId"):
        report = parse_processing_report(amazon.download_feed_document(feed["resultFeedDocumentId"]))
        errors = report.errors_by_message()
        for entry in entries:
            if entry["status"] != OutboxStatus.SUBMITTED:
                continue
            problems = errors.get(entry["message_id"])
            if problems:
                text = "; ".join(f"{p.message_code}: {p.description}" for p in problems)
                store.outbox.transition(
                    entry["id"], OutboxStatus.REJECTED, expect=OutboxStatus.SUBMITTED, amazon_message=text[:2000]
                )
                rejected += 1
            else:
                store.outbox.transition(
                    entry["id"], OutboxStatus.ACCEPTED, expect=OutboxStatus.SUBMITTED, amazon_message=None
                )
                accepted += 1
        summary = {"processed": report.processed, "successful": report.successful, "errors": report.with_error}
    else:
        # CANCELLED / FATAL: nothing was applied; the entries go back to be sent again.
        _move(
            store,
            entries,
            OutboxStatus.PENDING,
            expect=OutboxStatus.SUBMITTED,
            amazon_message=f"feed {feed_id} ended {status}",
            feed_id="",
        )
        summary = {"processed": 0}
    store.outbox.finish_feed(feed_id, status, summary)
    return {"feed_id": feed_id, "status": status, "accepted": accepted, "rejected": rejected}


def build_adjustment_message(message_id: int, payload: Mapping[str, Any]):
    """The feed's ``OrderAdjustment`` message for an outbox payload (``adjustment_payload``)."""
    items = [
        AdjustedItem(
            amazon_order_item_code=i["code"],
            merchant_adjustment_item_id=i["madj"],
            reason=i["reason"],
            components={k: Decimal(v) for k, v in i["components"].items()},
            currency=i["currency"],
            quantity=i.get("quantity"),
        )
        for i in payload["items"]
    ]
    return adjustment_message(message_id, payload["amazon_order_id"], items)
