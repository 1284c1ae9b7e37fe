"""Amazon order feeds: building the XML, submitting outbox entries once, settling the processing report.

Cancellations (``POST_ORDER_ACKNOWLEDGEMENT_DATA``) and refunds
(``POST_PAYMENT_ADJUSTMENT_DATA``) are pushed to Amazon as feeds. Amazon allows
few feed submissions (createFeed: 0.0083 requests/s), so every pending outbox
entry of a kind goes into ONE feed per run, one ``<Message>`` per entry.

Exactly once: entries move ``pending → submitting`` (compare-and-set, with the
batch's document id recorded in the intent log) before ``createFeed``, and
``submitting → submitted`` with the feed id after it. If the answer to
``createFeed`` is lost, the next attempt first looks for a feed Amazon created
since the batch was recorded (getFeeds) and adopts it instead of submitting again.
A feed can be DONE with some messages failed: ``settle_feed`` reads the processing
report and marks each entry accepted or rejected with Amazon's message.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
import xml.etree.ElementTree as ET  # noqa: S405 - only used to BUILD documents
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import defusedxml.ElementTree as SafeET

from amazon_commerce_sync import constants
from amazon_commerce_sync.errors import FatalError, RetriableError
from amazon_commerce_sync.store import OutboxStatus

log = logging.getLogger(__name__)

ORDER_ACKNOWLEDGEMENT = "POST_ORDER_ACKNOWLEDGEMENT_DATA"
PAYMENT_ADJUSTMENT = "POST_PAYMENT_ADJUSTMENT_DATA"
SUBMITTING = "submitting"
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


def submit_outbox(
    store,
    amazon,
    *,
    account_id: str,
    kind: str,
    feed_type: str,
    message_type: str,
    merchant_id: str,
    marketplace_ids: Sequence[str],
    build_message: BuildMessage,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> str | None:
    """Put every pending entry of ``kind`` into one feed; returns its feed id (None when nothing to send)."""
    adopted = _recover_submitting(store, amazon, account_id=account_id, kind=kind, feed_type=feed_type)
    if adopted:
        return adopted
    pending = store.outbox_entries(kind=kind, statuses=[OutboxStatus.PENDING], account_id=account_id)
    if not pending:
        return None
    batch = f"batch:{uuid.uuid4().hex}"
    message_ids = {entry["id"]: number for number, entry in enumerate(pending, start=1)}
    claimed = store.update_outbox(
        message_ids, SUBMITTING, feed_id=batch, message_ids=message_ids, expect_status=[OutboxStatus.PENDING],
        count_attempt=True,
    )  # fmt: skip
    entries = store.outbox_entries(kind=kind, feed_id=batch)
    if claimed != len(pending):
        log.info("%s: %d of %d entries were claimed by another run", kind, len(pending) - claimed, len(pending))
    if not entries:
        return None
    messages = [build_message(entry["message_id"], entry["payload"]) for entry in entries]
    content = envelope(message_type, merchant_id, messages)
    started = now()
    store.record_intent(batch, "feed", None, {"feed_type": feed_type, "started": started.isoformat()})
    document_id, url = amazon.create_feed_document("text/xml; charset=UTF-8")
    amazon.upload_feed_document(url, content, "text/xml; charset=UTF-8")
    try:
        feed_id = amazon.create_feed(feed_type, marketplace_ids, document_id)
    except FatalError:
        store.update_outbox([e["id"] for e in entries], OutboxStatus.PENDING, feed_id="")
        store.forget_write(batch)
        raise
    except RetriableError:
        # The answer may be lost after Amazon accepted the feed: the next attempt looks first.
        log.warning("%s: createFeed outcome unknown for %d messages; the next run checks getFeeds", kind, len(entries))
        raise
    _mark_submitted(store, account_id, feed_type, batch, feed_id, document_id, entries)
    log.info("%s: submitted feed %s with %d messages", kind, feed_id, len(entries))
    return feed_id


def _mark_submitted(store, account_id, feed_type, batch, feed_id, document_id, entries) -> None:
    store.record_feed(feed_id, account_id, feed_type, document_id)
    store.update_outbox([e["id"] for e in entries], OutboxStatus.SUBMITTED, feed_id=feed_id)
    store.complete_write(batch, feed_id)


def _recover_submitting(store, amazon, *, account_id: str, kind: str, feed_type: str) -> str | None:
    """Entries left 'submitting' by a run that died around createFeed: adopt the feed or release them."""
    stuck = store.outbox_entries(kind=kind, statuses=[SUBMITTING], account_id=account_id)
    if not stuck:
        return None
    batches = sorted({e["feed_id"] for e in stuck})
    known = {f["feed_id"] for f in store.open_feeds(feed_type)}
    for batch in batches:
        entries = [e for e in stuck if e["feed_id"] == batch]
        intent = store.get_write(batch) or {}
        started = (intent.get("detail") or {}).get("started")
        since = datetime.fromisoformat(started) - timedelta(seconds=5) if started else None
        candidates = [
            f for f in amazon.list_feeds([feed_type])
            if f.get("feedId") not in known and store.get_feed(f.get("feedId")) is None
            and (since is None or datetime.fromisoformat(f["createdTime"].replace("Z", "+00:00")) >= since)
        ]  # fmt: skip
        if candidates:
            feed = sorted(candidates, key=lambda f: f["createdTime"])[0]
            _mark_submitted(store, account_id, feed_type, batch, feed["feedId"], None, entries)
            log.info("%s: adopted feed %s created by an interrupted run", kind, feed["feedId"])
            return feed["feedId"]
        store.update_outbox([e["id"] for e in entries], OutboxStatus.PENDING, feed_id="")
        store.forget_write(batch)
    return None


def settle_feed(store, amazon, feed_id: str) -> dict[str, Any]:
    """If the feed is finished, read its report and mark each entry; returns ``{status, accepted, rejected}``."""
    feed = amazon.get_feed(feed_id)
    status = feed.get("processingStatus", "UNKNOWN")
    if status not in FINAL_STATUSES:
        return {"feed_id": feed_id, "status": status}
    entries = store.outbox_entries(feed_id=feed_id)
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
                store.set_outbox_result(entry["id"], OutboxStatus.REJECTED, text[:2000])
                rejected += 1
            else:
                store.set_outbox_result(entry["id"], OutboxStatus.ACCEPTED, None)
                accepted += 1
        summary = {"processed": report.processed, "successful": report.successful, "errors": report.with_error}
    else:
        # CANCELLED / FATAL: nothing was applied; the entries go back to be sent again.
        for entry in entries:
            if entry["status"] == OutboxStatus.SUBMITTED:
                store.set_outbox_result(entry["id"], OutboxStatus.PENDING, f"feed {feed_id} ended {status}")
        store.update_outbox([e["id"] for e in entries if e["status"] == OutboxStatus.SUBMITTED],
                            OutboxStatus.PENDING, feed_id="")  # fmt: skip
        summary = {"processed": 0}
    store.finish_feed(feed_id, status, summary)
    return {"feed_id": feed_id, "status": status, "accepted": accepted, "rejected": rejected}
