"""Magento's order state machine: the can* predicates and ``check_state`` (Order\\Handler\\State).

States: new, processing, complete, closed, canceled, holded (plus pending_payment and
payment_review, which this sandbox never enters by itself).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandboxes.commerce.wire import D

DEFAULT_STATUS = {
    "new": "pending",
    "pending_payment": "pending_payment",
    "processing": "processing",
    "complete": "complete",
    "closed": "closed",
    "canceled": "canceled",
    "holded": "holded",
    "payment_review": "payment_review",
}
EPSILON = Decimal("0.0001")
ZERO = Decimal("0")


def qty_to_invoice(item: dict[str, Any]) -> Decimal:
    return max(D(item.get("qty_ordered")) - D(item.get("qty_invoiced")) - D(item.get("qty_canceled")), ZERO)


def qty_to_ship(item: dict[str, Any]) -> Decimal:
    shipped_or_refunded = max(D(item.get("qty_shipped")), D(item.get("qty_refunded")))
    return max(D(item.get("qty_ordered")) - shipped_or_refunded - D(item.get("qty_canceled")), ZERO)


def qty_to_refund(item: dict[str, Any]) -> Decimal:
    return max(D(item.get("qty_invoiced")) - D(item.get("qty_refunded")), ZERO)


def qty_to_cancel(item: dict[str, Any]) -> Decimal:
    return max(min(qty_to_invoice(item), qty_to_ship(item)), ZERO)


def can_invoice(order: dict[str, Any]) -> bool:
    if order["state"] in ("canceled", "payment_review", "holded", "complete", "closed"):
        return False
    return any(qty_to_invoice(i) > 0 for i in order["items"])


def can_ship(order: dict[str, Any]) -> bool:
    if order["state"] in ("holded", "payment_review", "canceled") or order.get("is_virtual"):
        return False
    return any(qty_to_ship(i) > 0 for i in order["items"])


def can_creditmemo(order: dict[str, Any]) -> bool:
    if order["state"] in ("holded", "payment_review", "canceled", "closed"):
        return False
    remaining = D(order.get("total_paid")) - D(order.get("total_refunded"))
    # Magento: nothing left, or what is left is the adjustment fee kept by an earlier credit memo.
    return abs(remaining) >= EPSILON and abs(remaining - D(order.get("adjustment_negative"))) >= EPSILON


def can_cancel(order: dict[str, Any]) -> bool:
    if order["state"] in ("payment_review", "holded"):
        return False
    if all(qty_to_invoice(i) <= 0 for i in order["items"]):
        return False  # everything invoiced (or nothing left)
    return order["state"] not in ("canceled", "complete", "closed")


def can_hold(order: dict[str, Any]) -> bool:
    return order["state"] not in ("payment_review", "holded", "canceled", "complete", "closed")


def set_state(order: dict[str, Any], state: str, status: str | None = None) -> None:
    order["state"] = state
    order["status"] = status or DEFAULT_STATUS[state]


def check_state(order: dict[str, Any], in_process: bool = False) -> None:
    """Move the order after a document was registered, as Magento's State handler does."""
    state = order["state"]
    if state != "canceled" and state != "holded" and not can_invoice(order):
        if (
            state in ("processing", "complete")
            and not can_creditmemo(order)
            and not can_ship(order)
            and D(order.get("total_refunded")) > 0
        ):
            set_state(order, "closed")
        elif state in ("processing", "new") and not can_ship(order) and (in_process or state == "processing"):
            set_state(order, "complete")
    if order["state"] == "new" and in_process:
        set_state(order, "processing")
