"""Refunds on the Amazon sandbox: adjustment feeds and Amazon-side refund events record them here.

Amazon refunds an item at most what its buyer paid, and each charge component (Principal, Tax, Shipping,
ShippingTax, GiftWrap, GiftWrapTax) at most what is left of that charge. Callers hold ``state.lock``.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from typing import Any

from sandboxes.amazon.domain import (
    RuleError,
    currency_of,
    find_item,
    item_components,
    item_paid_total,
    marketplace_name,
    status_of,
)
from sandboxes.amazon.store import SandboxState
from sandboxes.amazon.util import iso, money, now

REFUND_COMPONENTS = (
    "Principal",
    "Shipping",
    "Tax",
    "ShippingTax",
    "RestockingFee",
    "RestockingFeeTax",
    "GiftWrap",
    "GiftWrapTax",
    "Surcharge",
    "ReturnShipping",
    "Goodwill",
    "ExportCharge",
    "COD",
    "CODTax",
    "Other",
    "FreeReplacementReturnShipping",
)
# Components that refund a charge of the item (``item_components``): each is capped by what was charged.
CAPPED_COMPONENTS = ("Principal", "Tax", "Shipping", "ShippingTax", "GiftWrap", "GiftWrapTax")


def refunded_total(state: SandboxState, order_id: str, item_id: str) -> Decimal:
    total = Decimal("0")
    for refund in state.refunds:
        if refund["orderId"] != order_id:
            continue
        for item in refund["items"]:
            if item["orderItemId"] == item_id:
                total += sum((Decimal(c["amount"]) for c in item["components"]), Decimal("0"))
    return money(total)


def refunded_components(state: SandboxState, order_id: str, item_id: str) -> dict[str, Decimal]:
    """Per adjustment component, what the item's refunds so far gave back."""
    out: dict[str, Decimal] = defaultdict(Decimal)
    for refund in state.refunds:
        if refund["orderId"] != order_id:
            continue
        for item in refund["items"]:
            if item["orderItemId"] == item_id:
                for c in item["components"]:
                    out[c["type"]] += Decimal(c["amount"])
    return dict(out)


def refund(
    state: SandboxState,
    record: dict[str, Any],
    items: list[dict[str, Any]],
    *,
    source: str,
    currency: str | None = None,
    extra: dict[str, Any] | None = None,
    at: float | None = None,
) -> dict[str, Any]:
    """Record a refund. ``items``: ``[{orderItemId, components: [{type, amount}], merchantAdjustmentItemId?,
    adjustmentReason?}]`` with positive amounts.  Validates against what is still refundable."""
    order = record["order"]
    oid = order["orderId"]
    order_currency = currency_of(order)
    if currency and currency != order_currency:
        raise RuleError(f"Currency {currency} does not match the order currency {order_currency}.", "18140")
    if status_of(order) not in ("SHIPPED", "PARTIALLY_SHIPPED"):
        raise RuleError(
            f"Order {oid} is {status_of(order)}: only shipped orders can be refunded "
            "(cancel unshipped orders instead).",
            "18145",
        )
    if not items:
        raise RuleError("A refund needs at least one adjusted item.", "18029")
    clean = []
    for entry in items:
        item = find_item(order, str(entry["orderItemId"]))
        if item is None:
            raise RuleError(f"Order item {entry['orderItemId']} is not part of order {oid}.", "18029")
        components = []
        for c in entry["components"]:
            if c["type"] not in REFUND_COMPONENTS:
                raise RuleError(f"Unknown adjustment component type {c['type']!r}.", "18146")
            try:
                amount = money(c["amount"], order_currency)
                exact = amount == Decimal(str(c["amount"]))
            except (InvalidOperation, ValueError, TypeError) as exc:
                raise RuleError(f"Invalid amount {c['amount']!r}.", "18146") from exc
            if not exact:
                raise RuleError(f"Amount {c['amount']} has more decimals than {order_currency} allows.", "18146")
            if amount <= 0:
                raise RuleError(f"Refund amounts must be positive (got {amount} for {c['type']}).", "18146")
            components.append({"type": c["type"], "amount": str(amount)})
        asked = money(sum((Decimal(c["amount"]) for c in components), Decimal("0")), order_currency)
        left = item_paid_total(item) - refunded_total(state, oid, item["orderItemId"])
        left -= sum(
            (
                Decimal(c["amount"])
                for prior in clean
                if prior["orderItemId"] == item["orderItemId"]
                for c in prior["components"]
            ),
            Decimal("0"),
        )
        if asked > left:
            raise RuleError(
                f"Refund of {asked} {order_currency} for order item {item['orderItemId']} exceeds the "
                f"refundable amount {money(left, order_currency)} {order_currency}.",
                "18147",
            )
        # Amazon refunds each charge at most as far as it was charged: a Shipping component larger than the
        # item's shipping is refused even when the item's total would cover it (gift wrap is GiftWrap, not
        # Shipping; the tax on each charge is that charge's *Tax component).
        paid, done = item_components(item), refunded_components(state, oid, item["orderItemId"])
        for prior in clean:
            if prior["orderItemId"] == item["orderItemId"]:
                for c in prior["components"]:
                    done[c["type"]] = done.get(c["type"], Decimal("0")) + Decimal(c["amount"])
        for c in components:
            if c["type"] not in CAPPED_COMPONENTS:
                continue
            room = paid.get(c["type"], Decimal("0")) - done.get(c["type"], Decimal("0"))
            if Decimal(c["amount"]) > room:
                raise RuleError(
                    f"{c['type']} refund of {c['amount']} {order_currency} for order item {item['orderItemId']} "
                    f"exceeds the {c['type']} charged that is left to refund ({money(room, order_currency)}).",
                    "18147",
                )
        out = {
            "orderItemId": item["orderItemId"],
            "sellerSku": item["product"].get("sellerSku", ""),
            "quantity": int(item["quantityOrdered"]),
            "components": components,
        }
        for key in ("merchantAdjustmentItemId", "adjustmentReason"):
            if entry.get(key):
                out[key] = entry[key]
        clean.append(out)
    t = now() if at is None else at
    record_ = {
        "refundId": f"RF-{state.next_id():08d}",
        "sellerId": record["sellerId"],
        "orderId": oid,
        "marketplaceId": order["salesChannel"].get("marketplaceId"),
        "marketplaceName": marketplace_name(order),
        "currency": order_currency,
        "postedAt": t,
        "postedDate": iso(t),
        "source": source,
        "items": clean,
        **(extra or {}),
    }
    state.refunds.append(record_)
    state.touch(record, copy.deepcopy(order), t)
    return record_


def full_refund_items(state: SandboxState, order: dict[str, Any]) -> list[dict[str, Any]]:
    """Everything still refundable, per item, as Principal/Shipping/Tax/... components: per charge what is left of
    it (Amazon caps each component by its charge), within what is left of the item's total."""
    items = []
    currency = currency_of(order)
    for item in order["orderItems"]:
        left = item_paid_total(item) - refunded_total(state, order["orderId"], item["orderItemId"])
        if left <= 0:
            continue
        paid = item_components(item)
        parts = {k: v for k, v in paid.items() if v > 0}
        if "Discount" in paid and "Principal" in parts:
            parts["Principal"] += paid["Discount"]
        done = refunded_components(state, order["orderId"], item["orderItemId"])
        rest = {k: money(v - done.get(k, Decimal("0")), currency) for k, v in parts.items()}
        rest = {k: v for k, v in rest.items() if v > 0}
        over = sum(rest.values(), Decimal("0")) - left  # refunds of other components (Goodwill...) took some
        for k in list(rest):
            if over <= 0:
                break
            take = min(over, rest[k])
            rest[k] -= take
            over -= take
        comps = [{"type": k, "amount": str(v)} for k, v in rest.items() if v > 0]
        if comps:
            items.append({"orderItemId": item["orderItemId"], "components": comps})
    return items
