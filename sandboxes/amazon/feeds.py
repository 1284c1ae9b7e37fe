"""Feeds API 2021-06-30: documents (upload/download URLs on this server), feeds and their
time-driven processing (IN_QUEUE -> IN_PROGRESS -> DONE/FATAL), applied exactly once."""

from __future__ import annotations

import base64
import gzip
import logging
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandboxes.amazon import domain, refunds
from sandboxes.amazon.carriers import carrier_problem, shown_carrier
from sandboxes.amazon.feedxml import MESSAGE_TYPES, FeedFatal, as_list, parse_feed, processing_report, text_of
from sandboxes.amazon.regions import check_marketplaces, order_in_region, request_region
from sandboxes.amazon.store import SandboxState
from sandboxes.amazon.util import SpApiError, invalid_input, iso, model_body, not_found, now, parse_iso

log = logging.getLogger(__name__)
router = APIRouter()
MODEL = "sp-api/models/feeds_2021-06-30.json"
CANCEL_REASONS = {
    "NoInventory",
    "ShippingAddressUndeliverable",
    "CustomerExchange",
    "BuyerCanceled",
    "GeneralAdjustment",
    "CarrierCreditDecision",
    "RiskAssessmentInformationNotValid",
    "CarrierCoverageFailure",
    "CustomerReturn",
    "MerchandiseNotReceived",
}
ADJUSTMENT_REASONS = {
    "NoInventory",
    "CustomerReturn",
    "GeneralAdjustment",
    "CouldNotShip",
    "DifferentItem",
    "Abandoned",
    "CustomerCancel",
    "PriceError",
    "ProductOutofStock",
    "CustomerAddressIncorrect",
    "Exchange",
    "Other",
    "CarrierCreditDecision",
    "RiskAssessmentInformationNotValid",
    "CarrierCoverageFailure",
    "TransactionRecord",
    "Undeliverable",
    "RefusedDelivery",
}


def _body(raw: bytes, definition: str) -> dict[str, Any]:
    return model_body(raw, MODEL, definition)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


# ------------------------------------------------------------------ documents
@router.post("/feeds/2021-06-30/documents", status_code=201)
async def create_feed_document(request: Request) -> JSONResponse:
    state: SandboxState = request.app.state.sandbox
    body = _body(await request.body(), "CreateFeedDocumentSpecification")
    doc_id = f"amzn1.tortuga.4.na.{uuid.uuid4()}"
    t = now()
    with state.lock:
        state.documents[doc_id] = {
            "sellerId": request.scope["state"]["seller_id"],
            "kind": "input",
            "contentType": body["contentType"],
            "createdAt": t,
            "uploadExpiresAt": t + state.config.upload_url_ttl_seconds,
            "content": None,
            "compressed": False,
        }
        state.save()
    return JSONResponse(
        {"feedDocumentId": doc_id, "url": f"{_base(request)}/_sandbox/uploads/{doc_id}"}, status_code=201
    )


@router.get("/feeds/2021-06-30/documents/{doc_id}")
def get_feed_document(doc_id: str, request: Request) -> JSONResponse:
    state: SandboxState = request.app.state.sandbox
    with state.lock:
        doc = state.documents.get(doc_id)
        if doc is None or doc["sellerId"] != request.scope["state"]["seller_id"]:
            raise not_found(f"Feed document {doc_id} not found.")
        body = {"feedDocumentId": doc_id, "url": f"{_base(request)}/_sandbox/downloads/{doc_id}"}
        if doc.get("compressed"):
            body["compressionAlgorithm"] = "GZIP"
    return JSONResponse(body)


def put_upload(state: SandboxState, doc_id: str, content: bytes, content_type: str | None) -> Response:
    """The pre-signed upload URL (``PUT``), as S3 would answer it."""
    with state.lock:
        doc = state.documents.get(doc_id)
        if doc is None or doc["kind"] != "input":
            return Response(
                _s3_error("NoSuchKey", "The specified key does not exist."), 404, media_type="application/xml"
            )
        if now() > doc["uploadExpiresAt"]:
            return Response(_s3_error("AccessDenied", "Request has expired"), 403, media_type="application/xml")
        if (
            content_type
            and content_type.split(";")[0].strip().lower() != doc["contentType"].split(";")[0].strip().lower()
        ):
            return Response(
                _s3_error(
                    "SignatureDoesNotMatch", "The Content-Type does not match the one given to createFeedDocument."
                ),
                403,
                media_type="application/xml",
            )
        doc["content"] = base64.b64encode(content).decode()
        doc["uploadedAt"] = now()
        state.save()
    return Response(status_code=200)


def get_download(state: SandboxState, doc_id: str) -> Response:
    with state.lock:
        doc = state.documents.get(doc_id)
        if doc is None or doc.get("content") is None:
            return Response(
                _s3_error("NoSuchKey", "The specified key does not exist."), 404, media_type="application/xml"
            )
        return Response(base64.b64decode(doc["content"]), media_type=doc["contentType"])


def _s3_error(code: str, message: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'


# ------------------------------------------------------------------ feeds
@router.post("/feeds/2021-06-30/feeds", status_code=202)
async def create_feed(request: Request) -> JSONResponse:
    state: SandboxState = request.app.state.sandbox
    seller_id = request.scope["state"]["seller_id"]
    body = _body(await request.body(), "CreateFeedSpecification")
    if body["feedType"] not in MESSAGE_TYPES:
        raise invalid_input(
            f"Unsupported feedType {body['feedType']}.", f"This sandbox processes {', '.join(MESSAGE_TYPES)}."
        )
    seller = state.config.seller(seller_id)
    region = request_region(request)
    check_marketplaces(region, seller.marketplace_ids if seller else [], body["marketplaceIds"])
    t = now()
    stage = state.config.feed_stage_seconds / state.config.speed
    with state.lock:
        doc = state.documents.get(body["inputFeedDocumentId"])
        if doc is None or doc["sellerId"] != seller_id or doc["kind"] != "input":
            raise invalid_input(f"inputFeedDocumentId {body['inputFeedDocumentId']} does not exist.")
        if doc.get("content") is None:
            raise invalid_input(
                f"inputFeedDocumentId {body['inputFeedDocumentId']} has no content: upload the "
                "document to its url before creating the feed."
            )
        feed_id = str(50000000000 + state.next_id())
        state.feeds[feed_id] = {
            "feedId": feed_id,
            "sellerId": seller_id,
            "region": region,
            "feedType": body["feedType"],
            "marketplaceIds": body["marketplaceIds"],
            "inputFeedDocumentId": body["inputFeedDocumentId"],
            "createdAt": t,
            "inProgressAt": t + stage,
            "doneAt": t + 2 * stage,
            "finalStatus": None,
            "messages": [],
            "results": [],
            "resultFeedDocumentId": None,
        }
        state.save()
    log.info("feed %s (%s) created", feed_id, body["feedType"])
    return JSONResponse({"feedId": feed_id}, status_code=202)


def feed_status(feed: dict[str, Any], t: float) -> str:
    if feed.get("finalStatus"):
        return feed["finalStatus"]
    return "IN_QUEUE" if t < feed["inProgressAt"] else "IN_PROGRESS"


def feed_view(feed: dict[str, Any], t: float) -> dict[str, Any]:
    status = feed_status(feed, t)
    out = {
        "feedId": feed["feedId"],
        "feedType": feed["feedType"],
        "marketplaceIds": feed["marketplaceIds"],
        "createdTime": iso(feed["createdAt"]),
        "processingStatus": status,
    }
    if status in ("IN_PROGRESS", "DONE", "FATAL"):
        out["processingStartTime"] = iso(min(feed["inProgressAt"], feed.get("processedAt", t)))
    if status in ("DONE", "FATAL", "CANCELLED") and feed.get("processedAt"):
        out["processingEndTime"] = iso(feed["processedAt"])
    if feed.get("resultFeedDocumentId"):
        out["resultFeedDocumentId"] = feed["resultFeedDocumentId"]
    return out


def _feed_region(feed: dict[str, Any]) -> str:
    return feed.get("region") or "NA"  # feeds persisted before regions existed were NA feeds


def _owned_feed(state: SandboxState, feed_id: str, request: Request) -> dict[str, Any]:
    feed = state.feeds.get(feed_id)
    if (
        feed is None
        or feed["sellerId"] != request.scope["state"]["seller_id"]
        or _feed_region(feed) != request_region(request)
    ):
        raise not_found(f"Feed {feed_id} not found.")
    return feed


@router.get("/feeds/2021-06-30/feeds/{feed_id}")
def get_feed(feed_id: str, request: Request) -> JSONResponse:
    state: SandboxState = request.app.state.sandbox
    with state.lock:
        return JSONResponse(feed_view(_owned_feed(state, feed_id, request), now()))


@router.delete("/feeds/2021-06-30/feeds/{feed_id}")
def cancel_feed(feed_id: str, request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    with state.lock:
        feed = _owned_feed(state, feed_id, request)
        if feed_status(feed, now()) != "IN_QUEUE":
            raise invalid_input(f"Feed {feed_id} cannot be cancelled: only IN_QUEUE feeds can be cancelled.")
        feed["finalStatus"] = "CANCELLED"
        feed["processedAt"] = now()
        state.save()
    return Response(status_code=200)


@router.get("/feeds/2021-06-30/feeds")
def get_feeds(request: Request) -> JSONResponse:
    state: SandboxState = request.app.state.sandbox
    q = request.query_params
    types = {v for raw in q.getlist("feedTypes") for v in raw.split(",") if v}
    statuses = {v for raw in q.getlist("processingStatuses") for v in raw.split(",") if v}
    try:
        page_size = int(q.get("pageSize", "10"))
    except ValueError as exc:
        raise invalid_input("pageSize must be an integer between 1 and 100.") from exc
    if not 1 <= page_size <= 100:
        raise invalid_input("pageSize must be between 1 and 100.")
    if not types and not q.get("nextToken"):
        raise invalid_input("feedTypes is required when nextToken is not provided.")
    t = now()
    with state.lock:
        region = request_region(request)
        feeds = [
            feed_view(f, t)
            for f in state.feeds.values()
            if f["sellerId"] == request.scope["state"]["seller_id"] and _feed_region(f) == region
        ]
    feeds = [
        f
        for f in feeds
        if (not types or f["feedType"] in types) and (not statuses or f["processingStatus"] in statuses)
    ]
    feeds.sort(key=lambda f: f["createdTime"], reverse=True)
    return JSONResponse({"feeds": feeds[:page_size]})


# ------------------------------------------------------------------ processing
def process_due_feeds(state: SandboxState, t: float | None = None) -> int:
    """Finish every feed whose time has come; returns how many were finished."""
    t = now() if t is None else t
    with state.lock:
        due = sorted(
            (f for f in state.feeds.values() if not f.get("finalStatus") and f["doneAt"] <= t),
            key=lambda f: (f["doneAt"], f["feedId"]),
        )
        for feed in due:
            _process(state, feed, t)
        if due:
            state.save()
    return len(due)


def complete_now(state: SandboxState, feed_id: str) -> dict[str, Any] | None:
    with state.lock:
        feed = state.feeds.get(feed_id)
        if feed is None:
            return None
        if not feed.get("finalStatus"):
            t = now()
            feed["inProgressAt"] = min(feed["inProgressAt"], t)
            feed["doneAt"] = t
            _process(state, feed, t)
            state.save()
        return feed


def _process(state: SandboxState, feed: dict[str, Any], t: float) -> None:
    doc = state.documents[feed["inputFeedDocumentId"]]
    content = base64.b64decode(doc["content"])
    merchant = feed["sellerId"]
    results: list[dict[str, Any]] = []
    try:
        declared, messages = parse_feed(content, feed["feedType"])
    except FeedFatal as exc:
        feed["finalStatus"] = "FATAL"
        results = [{"messageId": "0", "resultCode": "Error", "resultMessageCode": "5001", "description": str(exc)}]
        messages, processed = [], 0
        log.info("feed %s is FATAL: %s", feed["feedId"], exc)
    else:
        if declared and declared != merchant:
            results.append(
                {
                    "messageId": "0",
                    "resultCode": "Warning",
                    "resultMessageCode": "5002",
                    "description": f"MerchantIdentifier {declared} is not the submitting seller.",
                }
            )
        for message in messages:
            outcome = _apply_message(state, feed, message, t)
            message["result"] = outcome or {"resultCode": "Success"}
            if outcome:
                results.append({"messageId": message["messageId"], **outcome})
        feed["finalStatus"] = "DONE"
        processed = len(messages)
    feed["messages"] = messages
    feed["results"] = results
    feed["processedAt"] = t
    report = processing_report(feed["feedId"], merchant, results, processed)
    report_id = f"amzn1.tortuga.4.na.{uuid.uuid4()}"
    compressed = state.config.compress_reports
    state.documents[report_id] = {
        "sellerId": feed["sellerId"],
        "kind": "result",
        "contentType": "text/xml; charset=UTF-8",
        "createdAt": t,
        "uploadExpiresAt": t,
        "compressed": compressed,
        "content": base64.b64encode(gzip.compress(report) if compressed else report).decode(),
    }
    feed["resultFeedDocumentId"] = report_id
    feed["report"] = report.decode("utf-8")


def _error(description: str, code: str = "18000", order_id: str | None = None, kind: str = "Error") -> dict[str, Any]:
    out = {"resultCode": kind, "resultMessageCode": code, "description": description}
    if order_id:
        out["amazonOrderId"] = order_id
    return out


def _apply_message(
    state: SandboxState, feed: dict[str, Any], message: dict[str, Any], t: float
) -> dict[str, Any] | None:
    body = message["body"]
    if not isinstance(body, dict):
        return _error(f"Message {message['messageId']} has no {message['type']} element.", "5000")
    order_id = text_of(body.get("AmazonOrderID"))
    if not order_id:
        return _error("AmazonOrderID is required.", "5000")
    record = state.order_record(order_id, feed["sellerId"])
    if record is None or not order_in_region(record["order"], _feed_region(feed)):
        return _error(f"The order id {order_id} was not found for this seller.", "18028", order_id)
    handler = {"OrderAcknowledgement": _acknowledge, "OrderAdjustment": _adjust, "OrderFulfillment": _fulfil}[
        message["type"]
    ]
    try:
        return handler(state, feed, message, record, body, t)
    except domain.RuleError as exc:
        return _error(exc.message, exc.code, order_id)


def _acknowledge(
    state: SandboxState,
    feed: dict[str, Any],
    message: dict[str, Any],
    record: dict[str, Any],
    body: dict[str, Any],
    t: float,
) -> dict[str, Any] | None:
    order = record["order"]
    oid = order["orderId"]
    status_code = text_of(body.get("StatusCode"))
    if status_code not in ("Success", "Failure"):
        return _error(f"StatusCode must be Success or Failure, not {status_code!r}.", "5000", oid)
    items = as_list(body.get("Item"))
    reasons = []
    for item in items:
        code = text_of(item.get("AmazonOrderItemCode")) if isinstance(item, dict) else None
        if not code or domain.find_item(order, code) is None:
            return _error(f"Order item {code} is not part of order {oid}.", "18029", oid)
        reason = text_of(item.get("CancelReason"))
        if reason and reason not in CANCEL_REASONS:
            return _error(f"Invalid CancelReason {reason!r}.", "5000", oid)
        if reason:
            reasons.append(reason)
    merchant_order_id = text_of(body.get("MerchantOrderID"))
    if status_code == "Success":
        if merchant_order_id:
            domain.set_seller_order_id(state, record, merchant_order_id)
        return None
    if not domain.cancel(state, record, by="MERCHANT", reason=reasons[0] if reasons else "GeneralAdjustment", at=t):
        return _error(f"Order {oid} is already cancelled.", "18032", oid, kind="Warning")
    return None


def _adjust(
    state: SandboxState,
    feed: dict[str, Any],
    message: dict[str, Any],
    record: dict[str, Any],
    body: dict[str, Any],
    t: float,
) -> dict[str, Any] | None:
    oid = record["order"]["orderId"]
    action = text_of(body.get("ActionType"))
    if action != "Refund":
        return _error(
            f"ActionType {action!r} is not supported: use Refund (cancel orders with an OrderAcknowledgement).",
            "5000",
            oid,
        )
    items, currencies = [], set()
    for adjusted in as_list(body.get("AdjustedItem")):
        if not isinstance(adjusted, dict):
            return _error("AdjustedItem is malformed.", "5000", oid)
        reason = text_of(adjusted.get("AdjustmentReason"))
        if reason not in ADJUSTMENT_REASONS:
            return _error(f"Invalid AdjustmentReason {reason!r}.", "5000", oid)
        components = []
        prices = adjusted.get("ItemPriceAdjustments")
        for comp in as_list(prices.get("Component") if isinstance(prices, dict) else None):
            amount_el = comp.get("Amount") if isinstance(comp, dict) else None
            amount = text_of(amount_el)
            try:
                Decimal(amount or "")
            except InvalidOperation:
                return _error(f"Invalid Amount {amount!r}.", "5000", oid)
            if isinstance(amount_el, dict) and amount_el.get("@currency"):
                currencies.add(amount_el["@currency"])
            else:
                return _error("Amount requires a currency attribute.", "5000", oid)
            components.append({"type": text_of(comp.get("Type")), "amount": amount})
        if not components:
            return _error("AdjustedItem needs ItemPriceAdjustments with at least one Component.", "5000", oid)
        items.append(
            {
                "orderItemId": text_of(adjusted.get("AmazonOrderItemCode")) or "",
                "components": components,
                "merchantAdjustmentItemId": text_of(adjusted.get("MerchantAdjustmentItemID")),
                "adjustmentReason": reason,
            }
        )
    if len(currencies) > 1:
        return _error(f"Mixed currencies in one adjustment: {sorted(currencies)}.", "18140", oid)
    refunds.refund(
        state,
        record,
        items,
        source="feed",
        currency=next(iter(currencies), None),
        at=t,
        extra={
            "feedId": feed["feedId"],
            "messageId": message["messageId"],
            "merchantOrderId": text_of(body.get("MerchantOrderID")),
        },
    )
    return None


def _fulfil(
    state: SandboxState,
    feed: dict[str, Any],
    message: dict[str, Any],
    record: dict[str, Any],
    body: dict[str, Any],
    t: float,
) -> dict[str, Any] | None:
    order = record["order"]
    oid = order["orderId"]
    data = body.get("FulfillmentData") if isinstance(body.get("FulfillmentData"), dict) else {}
    carrier_code, carrier_name = text_of(data.get("CarrierCode")), text_of(data.get("CarrierName"))
    problem = carrier_problem(carrier_code, carrier_name, code_field="CarrierCode", name_field="CarrierName")
    if problem:
        return _error(problem, "5000", oid)
    carrier = shown_carrier(carrier_code, carrier_name)
    date = text_of(body.get("FulfillmentDate"))
    if not date:
        return _error("FulfillmentDate is required.", "5000", oid)
    try:
        ship_time = iso(parse_iso(date))
    except SpApiError:
        return _error(f"Invalid FulfillmentDate {date!r}.", "5000", oid)
    wanted = []
    for item in as_list(body.get("Item")):
        code = text_of(item.get("AmazonOrderItemCode")) if isinstance(item, dict) else None
        found = domain.find_item(order, code or "")
        if found is None:
            return _error(f"Order item {code} is not part of order {oid}.", "18029", oid)
        qty_text = text_of(item.get("Quantity"))
        left = int(found["quantityOrdered"]) - domain.shipped_qty(found)
        try:
            qty = int(qty_text) if qty_text else left
        except ValueError:
            return _error(f"Invalid Quantity {qty_text!r}.", "5000", oid)
        wanted.append({"orderItemId": code, "quantity": qty})
    if not wanted:
        wanted = [
            {"orderItemId": i["orderItemId"], "quantity": int(i["quantityOrdered"]) - domain.shipped_qty(i)}
            for i in order["orderItems"]
            if int(i["quantityOrdered"]) > domain.shipped_qty(i)
        ]
        if not wanted:
            raise domain.RuleError(f"Order {oid} has nothing left to ship.", "18030")
    reference = text_of(body.get("MerchantFulfillmentID")) or f"{feed['feedId']}-{message['messageId']}"
    domain.ship(
        state,
        record,
        [
            {
                "packageReferenceId": reference,
                "carrier": carrier,
                "shippingService": text_of(data.get("ShippingMethod")),
                "trackingNumber": text_of(data.get("ShipperTrackingNumber")),
                "shipTime": ship_time,
                "items": wanted,
            }
        ],
        source="feed",
        at=t,
    )
    return None
