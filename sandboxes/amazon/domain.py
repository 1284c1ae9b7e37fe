"""Order state transitions shared by the API routes, feeds, admin events and live mode.

Every function validates everything first and only then changes the order, so a
rejected request leaves no trace.  Callers hold ``state.lock`` and call ``state.save()``.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sandboxes.amazon.marketplaces import MARKETPLACES
from sandboxes.amazon.store import SandboxState
from sandboxes.amazon.util import iso, money, now

PENDING_STATUSES = ("PENDING", "PENDING_AVAILABILITY")
SECTIONS = {  # includedData value -> Order/OrderItem keys it controls
    "BUYER": ("buyer",),
    "RECIPIENT": ("recipient",),
    "PROCEEDS": ("proceeds",),
    "EXPENSE": ("expense",),
    "PROMOTION": ("promotion",),
    "CANCELLATION": ("cancellation",),
    "FULFILLMENT": ("fulfillment",),
    "PACKAGES": ("packages",),
    "TAX": ("tax",),
    "PAYMENT": ("payment",),
    "FULFILLMENT_ORDERS": ("fulfillmentOrders",),
}
ORDER_LEVEL = {"buyer", "recipient", "proceeds", "packages", "payment", "tax", "fulfillment", "fulfillmentOrders"}
ITEM_LEVEL = {"proceeds", "expense", "promotion", "cancellation", "fulfillment", "tax"}


class RuleError(Exception):
    """A request that Amazon would reject; ``code`` is the feed ResultMessageCode."""

    def __init__(self, message: str, code: str = "18000", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


# ------------------------------------------------------------------ output
def render(order: dict[str, Any], included: set[str]) -> dict[str, Any]:
    """The order as the API returns it: only the requested sections; no PII while pending."""
    keep = {key for name in included for key in SECTIONS.get(name, ())}
    out = {k: copy.deepcopy(v) for k, v in order.items() if k not in ORDER_LEVEL or k in keep}
    status = order.get("fulfillment", {}).get("fulfillmentStatus")
    if status in PENDING_STATUSES:
        out.pop("buyer", None)
        out.pop("recipient", None)
    out["orderItems"] = [
        {k: v for k, v in item.items() if k not in ITEM_LEVEL or k in keep} for item in out["orderItems"]
    ]
    return out


# ------------------------------------------------------------------ helpers
def status_of(order: dict[str, Any]) -> str:
    return order["fulfillment"]["fulfillmentStatus"]


def find_item(order: dict[str, Any], item_id: str) -> dict[str, Any] | None:
    return next((i for i in order["orderItems"] if i["orderItemId"] == item_id), None)


def shipped_qty(item: dict[str, Any]) -> int:
    return int(item.get("fulfillment", {}).get("quantityFulfilled", 0))


def currency_of(order: dict[str, Any]) -> str:
    grand = order.get("proceeds", {}).get("grandTotal")
    if grand:
        return grand["currencyCode"]
    for item in order["orderItems"]:
        price = item.get("product", {}).get("price", {}).get("unitPrice")
        if price:
            return price["currencyCode"]
    entry = MARKETPLACES.get(order["salesChannel"].get("marketplaceId", ""))
    return entry.currency if entry else "USD"


def marketplace_name(order: dict[str, Any]) -> str:
    sales = order["salesChannel"]
    entry = MARKETPLACES.get(sales.get("marketplaceId", ""))
    return sales.get("marketplaceName") or (entry.name if entry else "Amazon")


def item_components(item: dict[str, Any]) -> dict[str, Decimal]:
    """What the buyer paid for an item, as Finances charge types (DISCOUNT is negative)."""
    parts: dict[str, Decimal] = defaultdict(Decimal)
    for b in item.get("proceeds", {}).get("breakdowns", []):
        amount = Decimal(b["subtotal"]["amount"])
        kind = b["type"]
        if kind == "ITEM":
            parts["Principal"] += amount
        elif kind == "SHIPPING":
            parts["Shipping"] += amount
        elif kind == "GIFT_WRAP":
            parts["GiftWrap"] += amount
        elif kind == "DISCOUNT":
            parts["Discount"] += amount
        elif kind == "TAX":
            details = b.get("detailedBreakdowns") or []
            if details:
                for d in details:
                    key = {"SHIPPING": "ShippingTax", "GIFT_WRAP": "GiftWrapTax"}.get(d.get("subtype"), "Tax")
                    parts[key] += Decimal(d["value"]["amount"])
            else:
                parts["Tax"] += amount
        else:
            parts["Other"] += amount
    return dict(parts)


def item_paid_total(item: dict[str, Any]) -> Decimal:
    return money(sum(item_components(item).values(), Decimal("0")))


def _recompute_status(order: dict[str, Any]) -> None:
    items = order["orderItems"]
    shipped = sum(shipped_qty(i) for i in items)
    ordered = sum(int(i["quantityOrdered"]) for i in items)
    if shipped == 0:
        new = "UNSHIPPED"
    elif shipped >= ordered:
        new = "SHIPPED"
    else:
        new = "PARTIALLY_SHIPPED"
    order["fulfillment"]["fulfillmentStatus"] = new


# ------------------------------------------------------------------ transitions
def ship(
    state: SandboxState,
    record: dict[str, Any],
    packages: list[dict[str, Any]],
    *,
    source: str,
    at: float | None = None,
    package_data: bool = True,
) -> None:
    """Ship items: add packages (``packageReferenceId, carrier, shippingService?, trackingNumber?, shipTime,
    items[{orderItemId, quantity}]``) to the order; validates all before applying any.

    ``package_data=False`` ships the items without adding ``packages``, as Amazon shows Amazon-fulfilled
    orders (the 2026-01-01 model: packages are "only available for merchant-fulfilled (FBM) orders") and
    orders the seller confirmed in Seller Central without package details."""
    order = record["order"]
    status = status_of(order)
    oid = order["orderId"]
    if status == "CANCELLED":
        raise RuleError(f"Order {oid} is cancelled and cannot be shipped.", "18028")
    if status in PENDING_STATUSES:
        raise RuleError(f"Order {oid} is {status}: it cannot be shipped before payment is authorised.", "18028")
    used = {p["packageReferenceId"] for p in order.get("packages", [])}
    wanted: dict[str, int] = defaultdict(int)
    for package in packages:
        ref = str(package["packageReferenceId"])
        if ref in used and package_data:
            raise RuleError(
                f"Package {ref} has already been confirmed for order {oid}: "
                "packageReferenceId must be unique per order.",
                "18033",
            )
        used.add(ref)
        if not package["items"]:
            raise RuleError("A package must contain at least one order item.", "18029")
        for entry in package["items"]:
            item = find_item(order, str(entry["orderItemId"]))
            if item is None:
                raise RuleError(f"Order item {entry['orderItemId']} is not part of order {oid}.", "18029")
            qty = entry["quantity"]
            if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
                raise RuleError(f"Quantity for order item {item['orderItemId']} must be a positive integer.", "18030")
            wanted[item["orderItemId"]] += qty
    for item_id, qty in wanted.items():
        item = find_item(order, item_id)
        left = int(item["quantityOrdered"]) - shipped_qty(item)
        if qty > left:
            raise RuleError(f"Quantity {qty} for order item {item_id} exceeds the unshipped quantity {left}.", "18030")
    previous = copy.deepcopy(order)
    t = now() if at is None else at
    for package in packages:
        if package_data:
            order.setdefault("packages", []).append(_package_entry(package, t))
        _add_shipment_event(state, record, package["items"], t)
    for item_id, qty in wanted.items():
        item = find_item(order, item_id)
        done = shipped_qty(item) + qty
        item.setdefault("fulfillment", {})
        item["fulfillment"]["quantityFulfilled"] = done
        item["fulfillment"]["quantityUnfulfilled"] = int(item["quantityOrdered"]) - done
    _recompute_status(order)
    state.touch(record, previous, t)


def add_package_data(state: SandboxState, record: dict[str, Any], packages: list[dict[str, Any]]) -> None:
    """Package details (``packageReferenceId, carrier, trackingNumber?, items``) arriving later for units already
    shipped without them (a Seller Central confirmation completed afterwards): ``packages`` gains them; nothing is
    shipped again, so quantities and status stay. Items beyond the units shipped without package data: 18030."""
    order = record["order"]
    unpackaged = {d["orderItemId"]: d["quantity"] for d in unpackaged_items(order)}
    used = {p["packageReferenceId"] for p in order.get("packages", [])}
    for package in packages:
        if str(package["packageReferenceId"]) in used:
            raise RuleError(f"Package {package['packageReferenceId']} already exists on {order['orderId']}.", "18033")
        used.add(str(package["packageReferenceId"]))
        for entry in package["items"]:
            left = unpackaged.get(str(entry["orderItemId"]), 0)
            if not isinstance(entry["quantity"], int) or not 0 < entry["quantity"] <= left:
                raise RuleError(
                    f"Quantity for order item {entry['orderItemId']} exceeds the {left} units shipped "
                    "without package data.",
                    "18030",
                )
            unpackaged[str(entry["orderItemId"])] = left - entry["quantity"]
    previous, t = copy.deepcopy(order), now()
    order.setdefault("packages", []).extend(_package_entry(package, t) for package in packages)
    state.touch(record, previous, t)


def _package_entry(package: dict[str, Any], t: float) -> dict[str, Any]:
    """An order's ``packages`` entry (Orders API 2026-01-01 ``Package``) for a shipped package."""
    entry = {
        "packageReferenceId": str(package["packageReferenceId"]),
        "createdTime": iso(t),
        "packageStatus": {"status": "SHIPPED"},
        "carrier": package.get("carrier") or "Other",
        "shipTime": package.get("shipTime") or iso(t),
        "packageItems": [{"orderItemId": str(i["orderItemId"]), "quantity": i["quantity"]} for i in package["items"]],
    }
    for name in ("shippingService", "trackingNumber"):
        if package.get(name):
            entry[name] = package[name]
    return entry


def unpackaged_items(order: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{orderItemId, quantity}]`` of the units shipped that no package carries."""
    left = {i["orderItemId"]: shipped_qty(i) for i in order["orderItems"]}
    for package in order.get("packages", []):
        for entry in package.get("packageItems", []):
            left[entry["orderItemId"]] = left.get(entry["orderItemId"], 0) - int(entry["quantity"])
    return [{"orderItemId": k, "quantity": v} for k, v in left.items() if v > 0]


def _add_shipment_event(state: SandboxState, record: dict[str, Any], items: list[dict[str, Any]], t: float) -> None:
    order = record["order"]
    currency = currency_of(order)
    lines = []
    for entry in items:
        item = find_item(order, str(entry["orderItemId"]))
        ratio = Decimal(entry["quantity"]) / Decimal(int(item["quantityOrdered"]))
        charges = [
            {
                "ChargeType": k,
                "ChargeAmount": {"CurrencyCode": currency, "CurrencyAmount": str(money(v * ratio, currency))},
            }
            for k, v in item_components(item).items()
            if k != "Discount" and v
        ]
        line: dict[str, Any] = {
            "SellerSKU": item["product"].get("sellerSku", ""),
            "OrderItemId": item["orderItemId"],
            "QuantityShipped": entry["quantity"],
            "ItemChargeList": charges,
        }
        discount = item_components(item).get("Discount")
        if discount:
            promo = (item.get("promotion", {}).get("breakdowns") or [{}])[0].get("promotionId", "")
            line["PromotionList"] = [
                {
                    "PromotionType": "PromotionMetaDataDefinitionValue",
                    "PromotionId": promo,
                    "PromotionAmount": {
                        "CurrencyCode": currency,
                        "CurrencyAmount": str(money(discount * ratio, currency)),
                    },
                }
            ]
        lines.append(line)
    state.shipment_events.append(
        {
            "sellerId": record["sellerId"],
            "orderId": order["orderId"],
            "postedAt": t,
            "event": {
                "AmazonOrderId": order["orderId"],
                "MarketplaceName": marketplace_name(order),
                "ShipmentItemList": lines,
            },
        }
    )


def cancel(state: SandboxState, record: dict[str, Any], *, by: str, reason: str, at: float | None = None) -> bool:
    """Cancel an unshipped order. Returns False when it was already cancelled."""
    order = record["order"]
    status = status_of(order)
    if status == "CANCELLED":
        return False
    if status not in ("UNSHIPPED", *PENDING_STATUSES) or any(shipped_qty(i) for i in order["orderItems"]):
        raise RuleError(
            f"Order {order['orderId']} is {status}: an order with shipped items cannot be cancelled.", "18099"
        )
    previous = copy.deepcopy(order)
    for item in order["orderItems"]:
        cancellation = item.setdefault("cancellation", {})
        cancellation["cancellationExecution"] = {"cancelledBy": by, "cancelReason": reason}
        item.setdefault("fulfillment", {})["quantityUnfulfilled"] = 0
        item["fulfillment"].setdefault("quantityFulfilled", 0)
    order["fulfillment"]["fulfillmentStatus"] = "CANCELLED"
    state.touch(record, previous, at)
    return True


def request_cancellation(state: SandboxState, record: dict[str, Any], reason: str) -> None:
    order = record["order"]
    if status_of(order) not in ("UNSHIPPED", *PENDING_STATUSES):
        raise RuleError(
            f"Order {order['orderId']} is {status_of(order)}: buyers can only ask to cancel unshipped orders."
        )
    previous = copy.deepcopy(order)
    for item in order["orderItems"]:
        item.setdefault("cancellation", {})["cancellationRequest"] = {"requester": "BUYER", "cancelReason": reason}
    state.touch(record, previous)


def authorize_payment(state: SandboxState, record: dict[str, Any]) -> None:
    order = record["order"]
    if status_of(order) not in PENDING_STATUSES:
        raise RuleError(f"Order {order['orderId']} is {status_of(order)}, not PENDING.")
    previous = copy.deepcopy(order)
    order["fulfillment"]["fulfillmentStatus"] = "UNSHIPPED"
    state.touch(record, previous)


def set_seller_order_id(state: SandboxState, record: dict[str, Any], merchant_order_id: str) -> None:
    order = record["order"]
    aliases = [a for a in order.get("orderAliases", []) if a.get("aliasType") != "SELLER_ORDER_ID"]
    aliases.append({"aliasId": merchant_order_id, "aliasType": "SELLER_ORDER_ID"})
    if aliases != order.get("orderAliases"):
        previous = copy.deepcopy(order)
        order["orderAliases"] = aliases
        state.touch(record, previous)
