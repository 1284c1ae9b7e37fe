"""Amazon's own example orders, read from the Orders API model as data.

Amazon publishes example responses in its models: the ``x-amzn-api-sandbox`` blocks (the requests and
responses its static sandbox answers) and Swagger ``examples``.  :func:`example_orders` collects every
``Order`` found in them, so a later model's new examples are picked up without code changes.  They are
loaded into the sandbox as they are (``POST /_sandbox/orders/examples``): Amazon's exact amounts, fields
and absences (an FBA order without ``packages``, an order without ``buyer``, a grand total with an
order-level delivery tip the items do not carry, and so on).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from sandboxes.swagger import load_model

ORDERS_MODEL = "sp-api/models/orders_2026-01-01.json"
EXAMPLE_KEYS = ("x-amzn-api-sandbox", "examples")


def _is_order(node: Any) -> bool:
    return (
        isinstance(node, dict)
        and isinstance(node.get("orderId"), str)
        and "orderItems" in node
        and "salesChannel" in node
    )


def _orders_in(node: Any) -> Iterator[dict[str, Any]]:
    if _is_order(node):
        yield node
        return
    if isinstance(node, dict):
        for value in node.values():
            yield from _orders_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _orders_in(value)


def _example_blocks(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in EXAMPLE_KEYS:
                yield value
            else:
                yield from _example_blocks(value)
    elif isinstance(node, list):
        for value in node:
            yield from _example_blocks(value)


def example_orders(model: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every example ``Order`` of the Orders API 2026-01-01 model (or of ``model``), deduplicated by
    ``orderId`` (first occurrence in the document wins), in document order; deep copies."""
    model = load_model(ORDERS_MODEL) if model is None else model
    seen: dict[str, dict[str, Any]] = {}
    for block in _example_blocks(model):
        for order in _orders_in(block):
            seen.setdefault(order["orderId"], copy.deepcopy(order))
    return list(seen.values())


def describe(order: dict[str, Any]) -> dict[str, Any]:
    """A short description of an example order (for tests and reports): marketplace, currency, status,
    fulfillment, programs, which sections are absent, and whether the items add up to the grand total."""
    proceeds = order.get("proceeds") or {}
    grand = proceeds.get("grandTotal") or {}
    item_totals = [i.get("proceeds", {}).get("proceedsTotal", {}).get("amount") for i in order["orderItems"]]
    items_sum = sum((Decimal(a) for a in item_totals if a is not None), Decimal("0"))
    fulfillment = order.get("fulfillment") or {}
    return {
        "orderId": order["orderId"],
        "marketplaceId": order["salesChannel"].get("marketplaceId"),
        "currency": grand.get("currencyCode"),
        "grandTotal": grand.get("amount"),
        "itemsTotal": str(items_sum),
        "itemsAddUp": grand.get("amount") is not None and Decimal(grand["amount"]) == items_sum,
        "fulfillmentStatus": fulfillment.get("fulfillmentStatus"),
        "fulfilledBy": fulfillment.get("fulfilledBy"),
        "programs": list(order.get("programs") or []),
        "absent": [k for k in ("buyer", "recipient", "packages", "proceeds", "tax", "payment") if k not in order],
    }
