"""Admin API under ``/_sandbox`` (no auth): load and inspect orders, Amazon-side events,
feeds, confirmations, refunds, stats, faults, settings, reset; plus the document
upload/download URLs that stand in for Amazon's pre-signed S3 URLs."""

from __future__ import annotations

import random
from typing import Any

import jsonschema
from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse

from sandboxes.amazon import domain, feeds
from sandboxes.amazon import refunds as refund_rules
from sandboxes.amazon.config import Seller
from sandboxes.amazon.examples import describe, example_orders
from sandboxes.amazon.faults import FaultSettings
from sandboxes.amazon.generator import generate_orders
from sandboxes.amazon.marketplaces import MARKETPLACES
from sandboxes.amazon.shapes import Realism
from sandboxes.amazon.store import SandboxState
from sandboxes.amazon.util import SpApiError, invalid_input, iso, not_found, now, parse_iso
from sandboxes.swagger import validate

router = APIRouter(prefix="/_sandbox")


def _state(request: Request) -> SandboxState:
    return request.app.state.sandbox


def _seller(state: SandboxState, seller_id: str | None) -> str:
    seller_id = seller_id or state.config.sellers[0].seller_id
    if state.config.seller(seller_id) is None:
        raise invalid_input(f"Unknown sellerId {seller_id}.")
    return seller_id


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.post("/orders")
def load_orders(request: Request, body: dict[str, Any] = Body(...)) -> JSONResponse:
    state = _state(request)
    seller_id = _seller(state, body.get("sellerId"))
    orders = body.get("orders")
    if not isinstance(orders, list):
        raise invalid_input('Body must be {"orders": [Order, ...], "sellerId"?}.')
    for index, order in enumerate(orders):
        try:
            validate("sp-api/models/orders_2026-01-01.json", "Order", order)
        except jsonschema.ValidationError as exc:
            raise invalid_input(f"orders[{index}] is not a valid Order.", str(exc.message)) from exc
    with state.lock:
        for order in orders:
            state.put_order(seller_id, order)
        state.save()
    return JSONResponse({"loaded": len(orders), "orderIds": [o["orderId"] for o in orders]})


@router.post("/orders/examples")
def load_examples(request: Request, body: dict[str, Any] = Body(default={})) -> JSONResponse:
    """Load Amazon's example orders (``examples.example_orders``) as they are, for ``sellerId`` (default: the
    first seller).  The seller must sell in their marketplaces; ``"addMarketplaces": true`` adds the missing
    ones to the seller.  -> ``{"loaded", "orderIds", "examples": [examples.describe(order)]}``."""
    state = _state(request)
    seller_id = _seller(state, body.get("sellerId"))
    seller = state.config.seller(seller_id)
    orders = example_orders()
    missing = sorted({o["salesChannel"]["marketplaceId"] for o in orders} - set(seller.marketplace_ids))
    if missing and body.get("addMarketplaces") is not True:
        raise invalid_input(
            f"Seller {seller_id} does not sell in {missing}.",
            'Send "addMarketplaces": true, or set the seller up with POST /_sandbox/sellers.',
        )
    seller.marketplace_ids = [*seller.marketplace_ids, *missing]
    with state.lock:
        for order in orders:
            state.put_order(seller_id, order)
        state.save()
    return JSONResponse(
        {"loaded": len(orders), "orderIds": [o["orderId"] for o in orders], "examples": [describe(o) for o in orders]}
    )


@router.post("/orders/generate")
def generate(request: Request, body: dict[str, Any] = Body(default={})) -> JSONResponse:
    state = _state(request)
    seller_id = _seller(state, body.get("sellerId"))
    count = body.get("count", 1)
    if not isinstance(count, int) or not 1 <= count <= 10000:
        raise invalid_input("count must be an integer between 1 and 10000.")
    kwargs: dict[str, Any] = {
        "marketplace_ids": body.get("marketplaceIds") or state.config.seller(seller_id).marketplace_ids
    }
    if body.get("status"):
        kwargs["status"] = body["status"]
    if body.get("fulfilledBy"):
        kwargs["fulfilled_by"] = body["fulfilledBy"]
    if body.get("createdTime"):
        kwargs["created_time"] = parse_iso(body["createdTime"], "createdTime")
    try:
        kwargs["realism"] = Realism.resolve(body.get("realism", "compat"))
    except (TypeError, ValueError) as exc:
        raise invalid_input(str(exc)) from exc
    with state.lock:
        seed = body.get("seed", state.config.seed * 1_000_003 + state.next_id())
        orders = [o for o in generate_orders(seed, count, now(), **kwargs) if o["orderId"] not in state.orders]
        for order in orders:
            state.put_order(seller_id, order)
        state.save()
    return JSONResponse({"generated": len(orders), "orderIds": [o["orderId"] for o in orders]})


@router.get("/orders")
def list_orders(request: Request, sellerId: str | None = None) -> JSONResponse:  # noqa: N803
    state = _state(request)
    with state.lock:
        orders = [r["order"] for r in state.orders.values() if sellerId in (None, r["sellerId"])]
        return JSONResponse({"orders": orders})


@router.get("/orders/{order_id}")
def get_order(order_id: str, request: Request) -> JSONResponse:
    state = _state(request)
    with state.lock:
        record = state.order_record(order_id)
        if record is None:
            raise not_found(f"Order {order_id} not found.")
        return JSONResponse({"sellerId": record["sellerId"], "order": record["order"]})


def unshipped_items(order: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{orderItemId, quantity}]`` of everything not yet shipped."""
    return [
        {"orderItemId": i["orderItemId"], "quantity": int(i["quantityOrdered"]) - domain.shipped_qty(i)}
        for i in order["orderItems"]
        if int(i["quantityOrdered"]) > domain.shipped_qty(i)
    ]


def default_packages(order: dict[str, Any], rng: random.Random | None = None) -> list[dict[str, Any]]:
    """One package with everything not yet shipped."""
    rng = rng or random.Random(order["orderId"])
    carrier = "AMZN_US" if order["fulfillment"].get("fulfilledBy") == "AMAZON" else "UPS"
    return [
        {
            "packageReferenceId": str(len(order.get("packages", [])) + 1),
            "carrier": carrier,
            "trackingNumber": f"TBA{rng.randrange(10**12):012d}",
            "items": unshipped_items(order),
        }
    ]


def apply_event(state: SandboxState, record: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """Apply one Amazon-side event (admin API and live mode); caller holds the lock."""
    kind = event.get("type")
    order = record["order"]
    result: dict[str, Any] = {"type": kind}
    # ``at`` (ISO 8601) dates a ship or refund event in the past, e.g. beyond Finances' 2-minute delay.
    at = parse_iso(event["at"], "at") if event.get("at") else None
    if at is not None and at > now() + 1:
        raise invalid_input("at must not be in the future.")
    if kind == "authorize_payment":
        domain.authorize_payment(state, record)
    elif kind == "request_cancellation":
        domain.request_cancellation(state, record, event.get("reason") or "BuyerCanceled")
    elif kind == "cancel":
        changed = domain.cancel(
            state, record, by=event.get("by") or "AMAZON", reason=event.get("reason") or "GeneralAdjustment"
        )
        result["changed"] = changed
    elif kind == "ship":
        # Shipped by Amazon (FBA) or by the seller in Seller Central; "packageData": false ships without
        # package details, as Amazon shows FBA orders and Seller Central confirmations without them.
        packages = event.get("packages")
        package_data = event.get("packageData", True)
        if not isinstance(package_data, bool):
            raise invalid_input("packageData must be true or false.")
        if packages:
            for n, p in enumerate(packages, start=len(order.get("packages", [])) + 1):
                p.setdefault("packageReferenceId", str(n))
                if not p.get("items"):
                    p["items"] = unshipped_items(order)
        else:
            packages = default_packages(order)
            if not packages[0]["items"]:
                raise domain.RuleError(f"Order {order['orderId']} has nothing left to ship.")
        domain.ship(state, record, packages, source="amazon", at=at, package_data=package_data)
    elif kind == "package_data":
        # Package details for units already shipped without them (shipped in Seller Central, completed later).
        packages = event.get("packages") or [{"carrier": "UPS", "trackingNumber": None}]
        for n, p in enumerate(packages, start=len(order.get("packages", [])) + 1):
            p.setdefault("packageReferenceId", str(n))
            p["items"] = p.get("items") or domain.unpackaged_items(order)
            if not p["items"]:
                raise domain.RuleError(f"Order {order['orderId']} has no unit shipped without package data.")
            p["trackingNumber"] = (
                p.get("trackingNumber") or f"1Z{random.Random(order['orderId']).randrange(10**12):012d}"
            )
        domain.add_package_data(state, record, packages)
    elif kind == "refund":
        items = event.get("items") or refund_rules.full_refund_items(state, order)
        if not items:
            raise domain.RuleError(f"Order {order['orderId']} has nothing left to refund.")
        result["refund"] = refund_rules.refund(state, record, items, source="amazon", at=at)
    else:
        raise invalid_input(
            "type must be one of authorize_payment, request_cancellation, cancel, ship, package_data, refund."
        )
    return result


@router.post("/orders/{order_id}/events")
def order_event(order_id: str, request: Request, body: dict[str, Any] = Body(...)) -> JSONResponse:
    state = _state(request)
    with state.lock:
        record = state.order_record(order_id)
        if record is None:
            raise not_found(f"Order {order_id} not found.")
        try:
            result = apply_event(state, record, body)
        except domain.RuleError as exc:
            raise SpApiError(400, "InvalidInput", exc.message) from exc
        state.save()
        return JSONResponse({**result, "order": record["order"]})


@router.get("/feeds")
def list_feeds(request: Request) -> JSONResponse:
    state = _state(request)
    t = now()
    with state.lock:
        out = []
        for feed in state.feeds.values():
            out.append(
                {
                    **feeds.feed_view(feed, t),
                    "sellerId": feed["sellerId"],
                    "status": feeds.feed_status(feed, t),
                    "messages": feed.get("messages", []),
                    "results": feed.get("results", []),
                    "report": feed.get("report"),
                }
            )
        return JSONResponse({"feeds": out})


@router.post("/feeds/{feed_id}/complete")
def complete_feed(feed_id: str, request: Request) -> JSONResponse:
    state = _state(request)
    feed = feeds.complete_now(state, feed_id)
    if feed is None:
        raise not_found(f"Feed {feed_id} not found.")
    return JSONResponse(
        {**feeds.feed_view(feed, now()), "results": feed.get("results", []), "report": feed.get("report")}
    )


@router.get("/shipment-confirmations")
def confirmations(request: Request) -> JSONResponse:
    state = _state(request)
    with state.lock:
        return JSONResponse({"confirmations": list(state.confirmations)})


@router.get("/refunds")
def refunds(request: Request) -> JSONResponse:
    state = _state(request)
    with state.lock:
        return JSONResponse({"refunds": [{**r, "postedAt": iso(r["postedAt"])} for r in state.refunds]})


@router.get("/stats")
def stats(request: Request) -> JSONResponse:
    state = _state(request)
    with state.lock:
        return JSONResponse({"operations": {k: dict(v) for k, v in state.stats.items()}})


@router.get("/faults")
def get_faults(request: Request) -> JSONResponse:
    return JSONResponse(_state(request).faults.as_json())


@router.post("/faults")
def set_faults(request: Request, body: dict[str, Any] = Body(default={})) -> JSONResponse:
    state = _state(request)
    try:
        state.faults = FaultSettings.from_json(body or {})
    except (TypeError, ValueError) as exc:
        raise invalid_input(str(exc)) from exc
    return JSONResponse(state.faults.as_json())


@router.post("/sellers")
def upsert_seller(request: Request, body: dict[str, Any] = Body(...)) -> JSONResponse:
    """Add a seller, or change an existing seller's marketplaces (any of Amazon's, any region):
    ``{"sellerId", "marketplaceIds": [...], "refreshToken"?}`` (a new seller needs a refresh token)."""
    config = _state(request).config
    seller_id, marketplace_ids = body.get("sellerId"), body.get("marketplaceIds")
    if not isinstance(seller_id, str) or not seller_id or not isinstance(marketplace_ids, list) or not marketplace_ids:
        raise invalid_input('Body must be {"sellerId", "marketplaceIds": [...], "refreshToken"?}.')
    unknown = [m for m in marketplace_ids if m not in MARKETPLACES]
    if unknown:
        raise invalid_input(f"Unknown marketplace ids {unknown}.")
    seller = config.seller(seller_id)
    if seller is None:
        if not isinstance(body.get("refreshToken"), str) or not body["refreshToken"]:
            raise invalid_input("A new seller needs a refreshToken.")
        seller = Seller(seller_id, body["refreshToken"], [])
        config.sellers.append(seller)
    elif body.get("refreshToken"):
        seller.refresh_token = body["refreshToken"]
    seller.marketplace_ids = list(marketplace_ids)
    return JSONResponse({"sellerId": seller_id, "marketplaceIds": seller.marketplace_ids})


@router.post("/reset")
def reset(request: Request) -> JSONResponse:
    _state(request).reset()
    return JSONResponse({"reset": True})


SETTINGS = {
    "speed": float,
    "rate_limits_enabled": bool,
    "visibility_delay_seconds": float,
    "feed_stage_seconds": float,
    "token_ttl_seconds": int,
    "compress_reports": bool,
    "live_interval_seconds": float,
    "finances_v0_removed": bool,
    "deferral_rate": float,
    "deferral_seconds": float,
    "finances_page_size": int,
    "notification_delay_seconds": float,
}


@router.get("/settings")
def get_settings(request: Request) -> JSONResponse:
    return JSONResponse(_state(request).config.as_dict())


@router.post("/settings")
def set_settings(request: Request, body: dict[str, Any] = Body(...)) -> JSONResponse:
    config = _state(request).config
    unknown = set(body) - set(SETTINGS)
    if unknown:
        raise invalid_input(f"Unknown settings {sorted(unknown)}; allowed: {sorted(SETTINGS)}.")
    for key, kind in SETTINGS.items():
        if key in body:
            value = body[key]
            if (
                kind is bool
                and not isinstance(value, bool)
                or kind is not bool
                and (isinstance(value, bool) or not isinstance(value, int | float))
            ):
                raise invalid_input(f"{key} must be a {kind.__name__}.")
            if key == "speed" and value <= 0:
                raise invalid_input("speed must be > 0.")
            if key == "deferral_rate" and not 0 <= value <= 1:
                raise invalid_input("deferral_rate must be between 0 and 1.")
            if key == "notification_delay_seconds" and value < 0:
                raise invalid_input("notification_delay_seconds must be >= 0.")
            if key == "finances_page_size" and not 1 <= value <= 500:
                raise invalid_input("finances_page_size must be between 1 and 500.")
            setattr(config, key, kind(value))
    return JSONResponse(config.as_dict())


@router.put("/uploads/{doc_id}")
async def upload(doc_id: str, request: Request) -> Response:
    return feeds.put_upload(_state(request), doc_id, await request.body(), request.headers.get("content-type"))


@router.get("/downloads/{doc_id}")
def download(doc_id: str, request: Request) -> Response:
    return feeds.get_download(_state(request), doc_id)
