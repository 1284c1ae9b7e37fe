"""Order-level proceeds of an Amazon order: charges no item carries (a delivery tip). Pure rules: no I/O.

The Orders API 2026-01-01 model (``orders_2026-01-01.json``, ``OrderProceedsBreakdown``) lists the order-level
``proceeds.breakdowns`` types ``ITEM``, ``SHIPPING``, ``GIFT_WRAP``, ``COD_FEE``, ``TAX``, ``DISCOUNT``,
``DELIVERY_TIP`` and ``OTHER``: "``DELIVERY_TIP`` is charged separately and not attributed to a specific item. The
remaining categories are aggregated across all order items." So:

- the aggregated types repeat what the items' own ``proceeds.breakdowns`` carry (the items are read, these are
  not added again);
- ``DELIVERY_TIP`` is a charge of the order alone: Amazon's grand total is the items' proceeds plus it (Amazon's
  US example 123-4567890-1234567: 149.97 + 0.02 tax + 5.00 tip = 154.99). Its ``status`` (``PENDING``,
  ``FINALIZED``) says whether Amazon has finished processing it after checkout; a pending tip Amazon's grand total
  does not count yet is noted, not charged;
- any other type is not in the model: the order is quarantined naming it, never silently dropped.

On the Commerce order a delivery tip is part of the shipping & handling charge (Magento has no tip amount, as it
has no gift wrap amount in Open Source: ``order_programs``), untaxed, with a comment naming it, so the invoice
takes it and the invoiced total equals Amazon's grand total.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

# transform imports this module: its names are read when called, never at import time
from amazon_commerce_sync import transform

ZERO = Decimal("0")
#: Order-level types that sum up the items' breakdowns of the same type (the model's "aggregated" categories).
AGGREGATED = ("ITEM", "SHIPPING", "GIFT_WRAP", "COD_FEE", "TAX", "DISCOUNT", "OTHER")
#: Order-level charges no item carries, with the words the order comment uses for them.
ORDER_ONLY = {"DELIVERY_TIP": "Delivery tip"}
PENDING = "PENDING"


@dataclasses.dataclass(frozen=True)
class OrderCharge:
    """One order-level charge (``type`` one of ``ORDER_ONLY``), amount in order currency, Amazon's ``status``.

    ``charged`` is False for a pending charge Amazon's grand total does not count yet (noted, not on the order).
    """

    type: str
    amount: Decimal
    status: str | None
    charged: bool = True

    @property
    def label(self) -> str:
        return ORDER_ONLY[self.type]


def read_charges(order: Mapping[str, Any], currency: str) -> tuple[OrderCharge, ...]:
    """The order-level charges of ``proceeds.breakdowns`` (all counted as charged; see :func:`settle`).

    :raises transform.MalformedOrder: a type the model does not list (named in the reason), a negative or
        unreadable charge.
    """
    charges = []
    for index, breakdown in enumerate((order.get("proceeds") or {}).get("breakdowns") or []):
        where = f"proceeds.breakdowns[{index}]"
        kind = (breakdown or {}).get("type")
        if kind in AGGREGATED:
            continue
        if kind not in ORDER_ONLY:
            raise transform.MalformedOrder(
                f"order-level proceeds type {kind!r} ({where}) is not one Amazon's Orders API 2026-01-01 lists "
                f"({', '.join(AGGREGATED + tuple(ORDER_ONLY))}): a person must decide where its amount goes"
            )
        amount = transform.money(breakdown.get("subtotal"), where, currency)
        if amount < 0:
            raise transform.MalformedOrder(f"{where}: negative {kind} {amount} {currency}")
        if amount:
            status = breakdown.get("status")
            charges.append(OrderCharge(kind, amount, str(status) if status else None))
    return tuple(charges)


def settle(charges: tuple[OrderCharge, ...], items_total: Decimal, grand_total: Decimal) -> tuple[OrderCharge, ...]:
    """The charges with ``charged`` set: all of them when the items' total plus them is Amazon's grand total;
    the pending ones left out when only that adds up (Amazon has not counted them yet). Otherwise unchanged: the
    caller reports that the amounts do not add up."""
    if items_total + sum((c.amount for c in charges), ZERO) == grand_total:
        return charges
    pending = [c for c in charges if (c.status or "").upper() == PENDING]
    if pending and items_total + sum((c.amount for c in charges if c not in pending), ZERO) == grand_total:
        return tuple(dataclasses.replace(c, charged=c not in pending) for c in charges)
    return charges


def charged(charges: tuple[OrderCharge, ...]) -> Decimal:
    """What the charges add to the order total (order currency)."""
    return sum((c.amount for c in charges if c.charged), ZERO)


def comments(charges: tuple[OrderCharge, ...], currency: str) -> list[str]:
    """One comment per charge: ``Delivery tip 5.00 USD (Amazon status FINALIZED), paid by the buyer ...``."""
    out = []
    for charge in charges:
        text = f"{charge.label} {charge.amount:.2f} {currency}"
        state = f" (Amazon status {charge.status})" if charge.status else ""
        if charge.charged:
            out.append(
                f"{text}{state}, paid by the buyer for the delivery and charged by Amazon separately from the "
                "items: included in shipping & handling."
            )
        else:
            out.append(f"{text}{state}: not yet in Amazon's order total, so not on this order.")
    return out
