"""Finances API v0: financial events (ShipmentEventList, RefundEventList), by date range or order.

Amounts are JSON numbers (the model's ``BigDecimal``) written exactly from ``Decimal``;
refunds are negative as Amazon reports them.  The feed's ``MerchantAdjustmentItemID`` is
echoed as ``ShipmentItemAdjustmentList[].MerchantAdjustmentItemId`` (a sandbox-only extra
field: real Amazon does not return it; correlate by order, item and amounts there).
"""

from __future__ import annotations

import base64
import copy
import json
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request, Response

from sandboxes.amazon.marketplaces import region_of
from sandboxes.amazon.regions import request_region
from sandboxes.amazon.store import SandboxState
from sandboxes.amazon.util import dumps_with_decimal_numbers, invalid_input, iso, now, parse_iso

router = APIRouter()
MIN_AGE = 120


def refund_event(refund: dict[str, Any]) -> dict[str, Any]:
    lines = []
    for item in refund["items"]:
        line: dict[str, Any] = {
            "SellerSKU": item.get("sellerSku", ""),
            "OrderAdjustmentItemId": item["orderItemId"],
            "QuantityShipped": item.get("quantity", 1),
            "ItemChargeAdjustmentList": [
                {
                    "ChargeType": c["type"],
                    "ChargeAmount": {"CurrencyCode": refund["currency"], "CurrencyAmount": -Decimal(c["amount"])},
                }
                for c in item["components"]
            ],
        }
        if item.get("merchantAdjustmentItemId"):
            line["MerchantAdjustmentItemId"] = item["merchantAdjustmentItemId"]
        lines.append(line)
    return {
        "AmazonOrderId": refund["orderId"],
        "PostedDate": iso(refund["postedAt"]),
        "MarketplaceName": refund["marketplaceName"],
        "ShipmentItemAdjustmentList": lines,
    }


def shipment_event(entry: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(entry["event"])
    event["PostedDate"] = iso(entry["postedAt"])
    for line in event["ShipmentItemList"]:
        for charge in line.get("ItemChargeList", []):
            charge["ChargeAmount"]["CurrencyAmount"] = Decimal(charge["ChargeAmount"]["CurrencyAmount"])
        for promo in line.get("PromotionList", []):
            promo["PromotionAmount"]["CurrencyAmount"] = Decimal(promo["PromotionAmount"]["CurrencyAmount"])
    return event


def _events(state: SandboxState, request: Request, keep) -> list[tuple[float, str, str, dict[str, Any]]]:
    """The seller's events of orders in the region the request reached, that ``keep`` accepts, by time."""
    seller_id = request.scope["state"]["seller_id"]
    region = request_region(request)

    def mine(entry: dict[str, Any]) -> bool:
        return (
            entry["sellerId"] == seller_id
            and region_of(state.order_marketplace(entry["orderId"]) or "") == region
            and keep(entry)
        )

    out = []
    with state.lock:
        for i, entry in enumerate(state.shipment_events):
            if mine(entry):
                out.append((entry["postedAt"], f"S{i:08d}", "ShipmentEventList", shipment_event(entry)))
        for i, refund in enumerate(state.refunds):
            if mine(refund):
                out.append((refund["postedAt"], f"R{i:08d}", "RefundEventList", refund_event(refund)))
    out.sort(key=lambda e: (e[0], e[1]))
    return out


def _page(
    events: list[tuple[float, str, str, dict[str, Any]]], size: int, start: int, token_data: dict[str, Any]
) -> Response:
    page = events[start : start + size]
    financial: dict[str, list[dict[str, Any]]] = {"ShipmentEventList": [], "RefundEventList": []}
    for _, _, kind, event in page:
        financial[kind].append(event)
    payload: dict[str, Any] = {"FinancialEvents": financial}
    if start + size < len(events):
        token = {**token_data, "o": start + size}
        payload["NextToken"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
    return Response(dumps_with_decimal_numbers({"payload": payload}), media_type="application/json")


def _size(request: Request) -> int:
    raw = request.query_params.get("MaxResultsPerPage", "100")
    try:
        size = int(raw)
    except ValueError as exc:
        raise invalid_input("MaxResultsPerPage must be an integer between 1 and 100.") from exc
    if not 1 <= size <= 100:
        raise invalid_input("MaxResultsPerPage must be between 1 and 100.")
    return size


def _token(request: Request, expected: dict[str, Any]) -> int:
    raw = request.query_params.get("NextToken")
    if not raw:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(raw))
        offset = int(data["o"])
    except (ValueError, KeyError, TypeError) as exc:
        raise invalid_input("Invalid NextToken.") from exc
    if {k: v for k, v in data.items() if k != "o"} != expected:
        raise invalid_input("Invalid NextToken: use it with the same arguments as the call that produced it.")
    return offset


@router.get("/finances/v0/financialEvents")
def list_financial_events(request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    q = request.query_params
    t = now()
    size = _size(request)
    if q.get("NextToken"):
        try:
            probe = json.loads(base64.urlsafe_b64decode(q["NextToken"]))
            after, before = float(probe["a"]), float(probe["b"])
        except (ValueError, KeyError, TypeError) as exc:
            raise invalid_input("Invalid NextToken.") from exc
    else:
        if q.get("PostedBefore") and not q.get("PostedAfter"):
            raise invalid_input("PostedAfter is required when PostedBefore is provided.")
        before = parse_iso(q["PostedBefore"], "PostedBefore") if q.get("PostedBefore") else t - MIN_AGE
        after = parse_iso(q["PostedAfter"], "PostedAfter") if q.get("PostedAfter") else before - 180 * 86400
        if after > t - MIN_AGE:
            raise invalid_input("PostedAfter must be more than two minutes before the time of the request.")
        if before > t - MIN_AGE:
            raise invalid_input("PostedBefore must be more than two minutes before the time of the request.")
        if before <= after:
            raise invalid_input("PostedBefore must be later than PostedAfter.")
    token_data = {"a": after, "b": before}
    start = _token(request, token_data)
    if before - after > 180 * 86400:
        events = []
    else:
        events = _events(state, request, lambda e: after <= e["postedAt"] < before)
    return _page(events, size, start, token_data)


@router.get("/finances/v0/orders/{order_id}/financialEvents")
def list_financial_events_by_order(order_id: str, request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    size = _size(request)
    token_data = {"order": order_id}
    start = _token(request, token_data)
    events = _events(state, request, lambda e: e["orderId"] == order_id)
    return _page(events, size, start, token_data)
