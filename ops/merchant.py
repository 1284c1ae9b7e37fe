"""What happens outside the integration while it runs: a merchant's back office working in Commerce, and
Amazon-side events. Used by the distributed test and the soak to give the DAGs something to reconcile."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

CARRIERS = [("ups", "United Parcel Service"), ("fedex", "Federal Express"), ("usps", "United States Postal Service")]


def commerce_orders_by_amazon_id(cluster) -> dict[str, dict[str, Any]]:
    orders = cluster.commerce("GET", "/_sandbox/orders")["items"]
    return {o["ext_order_id"]: o for o in orders if o.get("ext_order_id")}


def remaining(order: dict[str, Any], done_field: str) -> list[dict[str, int]]:
    """``[{order_item_id, qty}]`` of the order's items not yet shipped / refunded (whole units)."""
    lines = []
    for item in order["items"]:
        qty = int(
            Decimal(str(item["qty_ordered"]))
            - Decimal(str(item.get(done_field) or 0))
            - Decimal(str(item.get("qty_canceled") or 0))
        )
        if qty > 0:
            lines.append({"order_item_id": int(item["item_id"]), "qty": qty})
    return lines


def ship_in_commerce(cluster, order: dict[str, Any], rng: random.Random) -> int | None:
    """The merchant ships everything left on a Commerce order, with a tracking number; the shipment id."""
    lines = remaining(order, "qty_shipped")
    if not lines or order["state"] not in ("processing", "new"):
        return None
    code, title = rng.choice(CARRIERS)
    body = {
        "items": lines,
        "tracks": [{"track_number": f"1Z{rng.randrange(10**12):012d}", "carrier_code": code, "title": title}],
    }
    return int(cluster.commerce_rest("POST", f"/V1/order/{int(order['entity_id'])}/ship", json=body))


def credit_memo_in_commerce(cluster, order: dict[str, Any]) -> int | None:
    """The merchant refunds every shipped, not yet refunded unit (offline credit memo); the memo id."""
    lines = [
        {
            "order_item_id": int(i["item_id"]),
            "qty": int(Decimal(str(i.get("qty_shipped") or 0)) - Decimal(str(i.get("qty_refunded") or 0))),
        }
        for i in order["items"]
    ]
    lines = [line for line in lines if line["qty"] > 0]
    if not lines:
        return None
    body = {"items": lines, "notify": False, "arguments": {"shipping_amount": 0}}
    return int(cluster.commerce_rest("POST", f"/V1/order/{int(order['entity_id'])}/refund", json=body))


def amazon_event(cluster, order_id: str, event: dict[str, Any], *, age: timedelta = timedelta(minutes=5)) -> None:
    """An Amazon-side event, dated ``age`` back so it is past Amazon's 2-minute rule (and Finances' delay)."""
    when = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    if event["type"] in ("ship", "refund"):
        event = {**event, "at": when}
    cluster.amazon("POST", f"/_sandbox/orders/{order_id}/events", json=event)
    order = cluster.amazon("GET", f"/_sandbox/orders/{order_id}")["order"]
    if order["lastUpdatedTime"] > when:
        order["lastUpdatedTime"] = when
        cluster.amazon("POST", "/_sandbox/orders", json={"orders": [order]})
