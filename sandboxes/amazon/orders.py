"""Orders API 2026-01-01 (searchOrders, getOrder) and Orders v0 confirmShipment."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import Any

import jsonschema
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandboxes.amazon import domain
from sandboxes.amazon.carriers import carrier_problem, shown_carrier
from sandboxes.amazon.regions import check_marketplaces, order_in_region, request_region, seller_marketplaces_in
from sandboxes.amazon.store import SandboxState
from sandboxes.amazon.util import SpApiError, invalid_input, iso, not_found, now, parse_iso
from sandboxes.swagger import validate

log = logging.getLogger(__name__)
router = APIRouter()

MODEL = "sp-api/models/orders_2026-01-01.json"
STATUSES = (
    "PENDING_AVAILABILITY",
    "PENDING",
    "UNSHIPPED",
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "CANCELLED",
    "UNFULFILLABLE",
)
FULFILLED_BY = ("MERCHANT", "AMAZON")
TOKEN_TTL = 24 * 3600
MIN_AGE = 120  # *Before must be at least two minutes before the request


def multi(request: Request, name: str) -> list[str] | None:
    """An array query parameter, comma separated (Swagger csv) and/or repeated."""
    values = request.query_params.getlist(name)
    if not values:
        return None
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _enum_list(request: Request, name: str, allowed: tuple[str, ...] | list[str]) -> list[str] | None:
    values = multi(request, name)
    if values is None:
        return None
    bad = [v for v in values if v not in allowed]
    if bad:
        raise invalid_input(f"Invalid {name} value(s): {', '.join(bad)}. Allowed: {', '.join(allowed)}.")
    return values


def included_data(request: Request) -> set[str]:
    return set(_enum_list(request, "includedData", list(domain.SECTIONS)) or [])


def seller_of(request: Request) -> str:
    return request.scope["state"]["seller_id"]


def _sign(state: SandboxState, payload: bytes) -> str:
    key = f"amazon-sandbox-{state.config.seed}".encode()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()[:32]


def _encode_token(state: SandboxState, data: dict[str, Any]) -> str:
    payload = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _sign(state, payload)


def _decode_token(state: SandboxState, token: str) -> dict[str, Any]:
    try:
        encoded, signature = token.rsplit(".", 1)
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        if not hmac.compare_digest(signature, _sign(state, payload)):
            raise ValueError("bad signature")
        return json.loads(payload)
    except (ValueError, TypeError) as exc:
        raise invalid_input(
            "Invalid paginationToken.", "The pagination token is malformed or was not issued by this service."
        ) from exc


def _search_query(request: Request, region: str, seller_marketplaces: list[str]) -> dict[str, Any]:
    q = request.query_params
    query: dict[str, Any] = {
        k: q.get(k) for k in ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore") if q.get(k)
    }
    if ("createdAfter" in query) == ("lastUpdatedAfter" in query):
        raise invalid_input("Exactly one of createdAfter and lastUpdatedAfter must be provided.")
    if "createdBefore" in query and "createdAfter" not in query:
        raise invalid_input("createdBefore can only be used together with createdAfter.")
    if "lastUpdatedBefore" in query and "lastUpdatedAfter" not in query:
        raise invalid_input("lastUpdatedBefore can only be used together with lastUpdatedAfter.")
    statuses = _enum_list(request, "fulfillmentStatuses", STATUSES)
    fulfilled_by = _enum_list(request, "fulfilledBy", FULFILLED_BY)
    marketplaces = multi(request, "marketplaceIds")
    if marketplaces is not None:
        if len(marketplaces) > 50:
            raise invalid_input("marketplaceIds accepts at most 50 values.")
        check_marketplaces(region, seller_marketplaces, marketplaces)
    query.update(
        {
            "fulfillmentStatuses": sorted(statuses) if statuses else None,
            "fulfilledBy": sorted(fulfilled_by) if fulfilled_by else None,
            "marketplaceIds": sorted(marketplaces) if marketplaces else None,
        }
    )
    return {k: v for k, v in query.items() if v is not None}


def _check_times(query: dict[str, Any], t: float) -> tuple[str, float, float, bool]:
    """-> (time field, after, bound, bound_given)."""
    prefix = "created" if "createdAfter" in query else "lastUpdated"
    after = parse_iso(query[f"{prefix}After"], f"{prefix}After")
    if after > t:
        raise invalid_input(f"{prefix}After must not be in the future.")
    before_raw = query.get(f"{prefix}Before")
    if before_raw is None:
        return prefix, after, t, False
    before = parse_iso(before_raw, f"{prefix}Before")
    if before < after:
        raise invalid_input(f"{prefix}Before must be equal to or after {prefix}After.")
    if before > t - MIN_AGE:
        raise invalid_input(f"{prefix}Before must be at least two minutes before the time of the request.")
    return prefix, after, before, True


def _max_results(request: Request) -> int:
    raw = request.query_params.get("maxResultsPerPage")
    if raw is None:
        return 100
    try:
        value = int(raw)
    except ValueError as exc:
        raise invalid_input("maxResultsPerPage must be an integer between 1 and 100.") from exc
    if not 1 <= value <= 100:
        raise invalid_input("maxResultsPerPage must be between 1 and 100.")
    return value


@router.get("/orders/2026-01-01/orders")
def search_orders(request: Request) -> JSONResponse:
    state: SandboxState = request.app.state.sandbox
    seller_id = seller_of(request)
    seller = state.config.seller(seller_id)
    region = request_region(request)
    served = seller_marketplaces_in(region, seller.marketplace_ids if seller else [])
    t = now()
    query = _search_query(request, region, served)
    included = included_data(request)
    page_size = _max_results(request)
    token = request.query_params.get("paginationToken")
    cursor: list[Any] | None = None
    if token:
        data = _decode_token(state, token)
        if data.get("q") != query or data.get("s") != seller_id:
            raise invalid_input(
                "Invalid paginationToken: it must be used with the same query parameters "
                "as the request that returned it."
            )
        if t - data["iat"] > TOKEN_TTL:
            raise invalid_input("Invalid paginationToken: the token has expired.")
        prefix = "created" if "createdAfter" in query else "lastUpdated"
        after = parse_iso(query[f"{prefix}After"])
        bound, cursor = data["b"], data["c"]
    else:
        prefix, after, bound, _ = _check_times(query, t)
    key_field = "createdTime" if prefix == "created" else "lastUpdatedTime"
    statuses = set(query.get("fulfillmentStatuses") or [])
    fulfilled_by = set(query.get("fulfilledBy") or [])
    marketplaces = set(query.get("marketplaceIds") or served)
    matches: list[tuple[float, str, dict[str, Any]]] = []
    with state.lock:
        for record in state.orders.values():
            if record["sellerId"] != seller_id:
                continue
            order = state.visible_order(record, t)
            if order is None:
                continue
            key = parse_iso(order[key_field])
            if key < after or key > bound:
                continue
            if order["salesChannel"].get("marketplaceId") not in marketplaces:
                continue
            fulfillment = order.get("fulfillment", {})
            if statuses and fulfillment.get("fulfillmentStatus") not in statuses:
                continue
            if fulfilled_by and fulfillment.get("fulfilledBy") not in fulfilled_by:
                continue
            if cursor is not None and (key, order["orderId"]) <= (cursor[0], cursor[1]):
                continue
            matches.append((key, order["orderId"], order))
        matches.sort(key=lambda m: (m[0], m[1]))
        page = matches[:page_size]
        rendered = [domain.render(m[2], included) for m in page]  # only the page: cheap at 50,000 orders
    body: dict[str, Any] = {"orders": rendered}
    if len(matches) > page_size:
        last = page[-1]
        body["pagination"] = {
            "nextToken": _encode_token(
                state, {"q": query, "s": seller_id, "b": bound, "c": [last[0], last[1]], "iat": t}
            )
        }
    body[f"{prefix}Before"] = iso(bound)
    return JSONResponse(body)


def _owned_record(state: SandboxState, order_id: str, request: Request) -> dict[str, Any]:
    """The seller's order if this region's endpoint serves its marketplace; 404 otherwise."""
    record = state.order_record(order_id, seller_of(request))
    if record is None or not order_in_region(record["order"], request_region(request)):
        raise not_found(f"Order {order_id} not found.")
    return record


@router.get("/orders/2026-01-01/orders/{order_id}")
def get_order(order_id: str, request: Request) -> JSONResponse:
    state: SandboxState = request.app.state.sandbox
    included = included_data(request)
    with state.lock:
        record = _owned_record(state, order_id, request)
        return JSONResponse({"order": domain.render(record["order"], included)})


@router.post("/orders/v0/orders/{order_id}/shipmentConfirmation", status_code=204)
async def confirm_shipment(order_id: str, request: Request) -> Response:
    state: SandboxState = request.app.state.sandbox
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise invalid_input("The request body is not valid JSON.") from exc
    try:
        validate("sp-api/models/ordersV0.json", "ConfirmShipmentRequest", body)
    except jsonschema.ValidationError as exc:
        raise invalid_input("Invalid confirmShipment request.", str(exc.message)) from exc
    detail = body["packageDetail"]
    ship_time = iso(parse_iso(detail["shipDate"], "shipDate"))
    problem = carrier_problem(detail["carrierCode"], detail.get("carrierName"))
    if problem:
        raise invalid_input("Invalid carrierCode.", problem)
    seller = state.config.seller(seller_of(request))
    check_marketplaces(request_region(request), seller.marketplace_ids if seller else [], [body["marketplaceId"]])
    with state.lock:
        record = _owned_record(state, order_id, request)
        order = record["order"]
        if body["marketplaceId"] != order["salesChannel"].get("marketplaceId"):
            raise invalid_input(f"marketplaceId {body['marketplaceId']} does not match the order's marketplace.")
        package = {
            "packageReferenceId": detail["packageReferenceId"],
            "carrier": shown_carrier(detail["carrierCode"], detail.get("carrierName")),
            "shippingService": detail.get("shippingMethod"),
            "trackingNumber": detail["trackingNumber"],
            "shipTime": ship_time,
            "items": detail["orderItems"],
        }
        try:
            domain.ship(state, record, [package], source="confirmShipment")
        except domain.RuleError as exc:
            raise SpApiError(400, "InvalidInput", exc.message) from exc
        state.confirmations.append(
            {"orderId": order_id, "sellerId": record["sellerId"], "receivedAt": iso(now()), "body": body}
        )
        state.save()
    log.info("confirmShipment accepted for order %s package %s", order_id, detail["packageReferenceId"])
    return Response(status_code=204)
