"""Which of Amazon's charges a Commerce order carries, for refunds both ways. Pure rules: no I/O, no clock.

The import books two of Amazon's charges differently from Amazon (``order_programs.commerce_amounts``):

- **Paid gift wrap** is part of the Commerce order's shipping & handling (its tax part of the shipping tax). Amazon
  keeps it apart: the adjustment feed (``POST_PAYMENT_ADJUSTMENT_DATA``, ``ItemPriceAdjustments/Component/Type``)
  has ``GiftWrap`` and ``GiftWrapTax`` components beside ``Shipping`` and ``ShippingTax``, and Amazon refunds each
  component at most as far as that charge was made on the item. A credit memo's shipping is therefore sent as
  ``Shipping`` up to what is left of the items' shipping, and the rest as ``GiftWrap`` (its tax likewise as
  ``ShippingTax`` then ``GiftWrapTax``): :func:`split_shipping`.
- **Tax Amazon collects as marketplace facilitator** (item ``tax.taxCollections`` model MARKETPLACE_FACILITATOR)
  is left off the Commerce order under ``marketplace_facilitator_tax: exclude`` (:func:`tax_not_in_commerce`
  names those items). Both refund directions must account for it:

  * Amazon → Commerce: Amazon's refund gives the buyer that tax back (``Tax``, ``ShippingTax``, ``GiftWrapTax``
    of those items); Commerce never had it, so the mirrored credit memo leaves it out (:func:`commerce_lines`) and
    the excluded amounts are recorded for the three-way check.
  * Commerce → Amazon: a credit memo on such an order refunds no tax, yet the buyer paid it and Amazon, which
    collected it, refunds it only as far as the adjustment asks: the feed's components are the amounts given
    back, per charge (``Principal``, ``Tax``, ``Shipping``, ``ShippingTax``...), each capped by what was charged.
    An adjustment of the memo's amounts alone would refund the goods without their tax and leave Amazon's tax
    records (and the buyer) short. So the adjustment adds, per facilitator item, the tax Amazon collected on the
    refunded charges, in proportion to the part of each charge refunded (all that is left of it when the charge
    is refunded in full): :func:`facilitator_tax_refund`. The merchant's money does not move for it: Amazon
    withheld that tax from the seller's proceeds and takes it back from what it remits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from amazon_commerce_sync import order_programs, transform
from amazon_commerce_sync.settings import AccountSettings

ZERO = Decimal("0")
CENT = Decimal("0.01")
#: Each charge and the component of its tax, as the adjustment feed names them.
TAXED_CHARGES = (("Principal", "Tax"), ("Shipping", "ShippingTax"), ("GiftWrap", "GiftWrapTax"))
TAXES = tuple(tax for _charge, tax in TAXED_CHARGES)

Components = dict[str, Decimal]


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def tax_not_in_commerce(order_payload: Mapping[str, Any], account: AccountSettings) -> frozenset[str]:
    """The Amazon order item ids whose tax Amazon collected as marketplace facilitator and the Commerce order does
    not carry (the account's ``marketplace_facilitator_tax`` is ``exclude``; ``include``: none).

    :raises MalformedOrder: the staged order cannot be read.
    """
    if account.marketplace_facilitator_tax != "exclude":
        return frozenset()
    currency = transform.order_amounts(order_payload).currency
    return order_programs.read_programs(order_payload, currency).facilitator_items


def gift_wrap_by_item(order_payload: Mapping[str, Any]) -> dict[str, tuple[Decimal, Decimal]]:
    """Amazon order item id → (gift wrap charge, its tax), for items with a paid gift wrap (order currency)."""
    currency = transform.order_amounts(order_payload).currency
    gifts = order_programs.read_programs(order_payload, currency).gifts
    return {g.order_item_id: (g.wrap, g.wrap_tax) for g in gifts if g.wrap or g.wrap_tax}


def split_shipping(
    amount: Decimal, kinds: tuple[str, str], order: Sequence[str], capacity: Mapping[str, Components]
) -> list[tuple[str, Decimal]]:
    """A credit memo's shipping (or shipping tax) ``amount`` as ``(component, amount)`` parts: ``kinds[0]``
    (``Shipping``) up to what is left of it on the items (``capacity``: per item and component, in ``order``),
    the rest as ``kinds[1]`` (``GiftWrap``). The caller allocates each part to the items."""
    room = sum((max(capacity.get(code, {}).get(kinds[0], ZERO), ZERO) for code in order), ZERO)
    first = min(amount, room)
    parts = [(kinds[0], first)] if first > 0 else []
    if amount - first > 0:
        parts.append((kinds[1], amount - first))
    return parts


def facilitator_tax_refund(
    planned: Mapping[str, Components],
    *,
    paid: Mapping[str, Components],
    refunded: Mapping[str, Components],
    facilitator: Collection[str],
    memo_tax: Mapping[str, Decimal],
) -> dict[str, Components]:
    """The tax Amazon collected on the charges an adjustment refunds, per facilitator item (module docstring).

    ``planned``: the adjustment's components per Amazon item so far; ``paid`` / ``refunded``: per item and
    component, what the buyer paid and what is refunded or on its way; ``memo_tax``: the credit memo's own tax per
    item (an item whose memo line carries tax was imported with it: nothing is added). Per charge, the tax added is
    ``tax paid × part of the charge refunded`` to the cent, or all the tax left when the charge is refunded in full;
    never more than the tax left. Returns ``{item: {Tax|ShippingTax|GiftWrapTax: amount}}`` (positive amounts).
    """
    out: dict[str, Components] = {}
    for code, comps in planned.items():
        if code not in facilitator or memo_tax.get(code, ZERO) > 0:
            continue
        bought, done = paid.get(code, {}), refunded.get(code, {})
        for charge, tax in TAXED_CHARGES:
            now, charged, tax_paid = comps.get(charge, ZERO), bought.get(charge, ZERO), bought.get(tax, ZERO)
            tax_left = tax_paid - done.get(tax, ZERO) - comps.get(tax, ZERO)
            if now <= 0 or charged <= 0 or tax_left <= 0:
                continue
            whole = done.get(charge, ZERO) + now >= charged
            add = tax_left if whole else min(_cents(tax_paid * now / charged), tax_left)
            if add > 0:
                out.setdefault(code, {})[tax] = add
    return out


def commerce_lines(lines: Sequence[Any], facilitator: Collection[str]) -> tuple[list[Any], dict[str, Components]]:
    """An Amazon refund's lines (``refunds.RefundLine``) as Commerce can refund them: the tax components
    (``Tax``, ``ShippingTax``, ``GiftWrapTax``) of facilitator items taken out, lines left empty dropped.
    Returns ``(lines, excluded)``; ``excluded``: ``{item: {component: amount}}`` of what was taken out."""
    kept, excluded = [], {}
    for line in lines:
        if line.code not in facilitator:
            kept.append(line)
            continue
        taken = {k: v for k, v in line.charges.items() if k in TAXES and v}
        if taken:
            bucket = excluded.setdefault(line.code, {})
            for kind, value in taken.items():
                bucket[kind] = bucket.get(kind, ZERO) + value
        rest = {k: v for k, v in line.charges.items() if k not in taken}
        if any(rest.values()):
            kept.append(dataclasses.replace(line, charges=rest))
    return kept, excluded


def total(amounts: Mapping[str, Mapping[str, Any]] | None) -> Decimal:
    """Every amount of ``{item: {component: amount}}`` added up (amounts may be decimal strings)."""
    return sum((Decimal(str(v)) for comps in (amounts or {}).values() for v in comps.values()), ZERO)


def as_json(amounts: Mapping[str, Mapping[str, Decimal]]) -> dict[str, dict[str, str]]:
    """``{item: {component: amount}}`` with decimal strings, for the state store."""
    return {code: {k: str(v) for k, v in comps.items()} for code, comps in amounts.items()}


def excluded_detail(excluded: Mapping[str, Mapping[str, Decimal]]) -> dict[str, Any]:
    """What a refund event's record (and its audit entry) keeps of the tax :func:`commerce_lines` took out:
    ``{"excluded_tax": {item: {component: "decimal string"}}}``, or nothing."""
    return {"excluded_tax": as_json(excluded)} if excluded else {}


def excluded_note(detail: Mapping[str, Any] | None, currency: str | None) -> str:
    """The sentence a mirrored refund's order comment adds for the tax left out (from its recorded detail)."""
    excluded = total((detail or {}).get("excluded_tax"))
    if not excluded:
        return ""
    return (
        f" Tax of {excluded} {currency or ''} in it was collected by Amazon as marketplace facilitator and is not on"
        " this order (marketplace_facilitator_tax: exclude): it is not in the memo."
    )
