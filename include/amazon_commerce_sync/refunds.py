"""Pure refund rules, both ways, tested without Airflow or HTTP.

Commerce → Amazon (``plan_adjustment``): the ``OrderAdjustment`` items of a Commerce credit memo for
the ``POST_PAYMENT_ADJUSTMENT_DATA`` feed. Per refunded item: Principal (row total net of discount),
Tax, Shipping and ShippingTax (the memo's shipping, attributed to the memo's items first, then to the
order's other items, within what Amazon can still refund of each item's shipping), Goodwill
(``adjustment_positive``); ``adjustment_negative`` is netted out of Principal. The components add up
to the memo's grand total to the cent, or ``RefundProblem`` says why not.

Amazon → Commerce: the lines of a Finances v0 refund event (``refund_lines``; ``ShipmentItemAdjustmentList``
with ``ItemChargeAdjustmentList``), its natural key (``event_key``), which lines are our own
adjustments coming back (``match_own``), and the offline credit memo that totals the refund exactly
(``plan_mirror``).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from amazon_commerce_sync import transform
from amazon_commerce_sync.feeds import AdjustedItem, adjustment_message
from amazon_commerce_sync.store import OutboxStatus

CENT = Decimal("0.01")
ZERO = Decimal("0")
EVENT = "refund_event"  # intent log kind: a Finances refund event handled (with its foreign lines)
# Our adjustments that count as refunded or on their way (rejected ones do not).
IN_FLIGHT = (OutboxStatus.PENDING, OutboxStatus.SUBMITTING, OutboxStatus.SUBMITTED, OutboxStatus.ACCEPTED)


class RefundProblem(ValueError):
    """A refund that cannot be sent or mirrored as it is; the message says why, for a person."""


Components = dict[str, Decimal]


# -- pure helpers -------------------------------------------------------------------------------
def dec(value: Any) -> Decimal:
    """An amount as an exact Decimal (empty: 0).

    :raises RefundProblem: not a number.
    """
    if value in (None, ""):
        return ZERO
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise RefundProblem(f"{value!r} is not an amount") from None


def cents(value: Decimal) -> Decimal:
    """Rounded to the cent, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def amazon_paid_by_item(order_payload: Mapping[str, Any]) -> dict[str, Components]:
    """What the buyer paid per Amazon order item, as adjustment components (from the staged order)."""
    amounts = transform.order_amounts(order_payload)
    return {
        item.order_item_id: {
            "Principal": item.row_total - item.discount,
            "Tax": item.tax,
            "Shipping": item.shipping - item.shipping_discount,
            "ShippingTax": item.shipping_tax,
            "Other": item.other,
        }
        for item in amounts.items
    }


def _add(target: Components, kind: str, amount: Decimal) -> None:
    target[kind] = target.get(kind, ZERO) + amount


def refunded_by_item(outbox_entries: Iterable[Mapping[str, Any]], writes: Iterable[Mapping[str, Any]]) -> dict:
    """Per Amazon item and component, what is refunded or on its way: our adjustments that are
    not rejected, and the Amazon-side refunds seen in Finances (mirrored or not)."""
    out: dict[str, Components] = collections.defaultdict(dict)
    for entry in outbox_entries:
        if entry["status"] not in IN_FLIGHT:
            continue
        for item in (entry.get("payload") or {}).get("items") or []:
            for kind, amount in item["components"].items():
                _add(out[item["code"]], kind, Decimal(amount))
    for write in writes:
        if write["kind"] != EVENT:
            continue
        for code, components in ((write.get("detail") or {}).get("foreign") or {}).items():
            for kind, amount in components.items():
                _add(out[code], kind, Decimal(amount))
    return out


def _allocate(
    planned: dict[str, Components], kind: str, amount: Decimal, order: Sequence[str], capacity: Mapping[str, Decimal]
) -> None:
    left = amount
    for code in order:
        if left <= 0:
            break
        room = capacity.get(code, ZERO) - planned.get(code, {}).get(kind, ZERO)
        take = min(left, room)
        if take > 0:
            _add(planned.setdefault(code, {}), kind, take)
            left -= take
    if left > 0:
        raise RefundProblem(
            f"{kind} refund of {amount} is more than is left to refund on Amazon as {kind} on this order's items"
        )


def plan_adjustment(
    memo: Mapping[str, Any],
    *,
    currency: str,
    item_codes: Mapping[int, str],
    paid: Mapping[str, Components],
    refunded: Mapping[str, Components],
    reason: str,
) -> list[AdjustedItem]:
    """The adjusted items of one credit memo; ``RefundProblem`` when it cannot be sent as it is.

    ``item_codes`` maps Commerce order item id → Amazon order item id; ``paid`` and
    ``refunded`` are per Amazon item and component.
    """
    memo_id = memo.get("entity_id")
    memo_currency = memo.get("order_currency_code")
    if memo_currency and memo_currency != currency:
        raise RefundProblem(f"credit memo {memo_id} is in {memo_currency} but the Amazon order is in {currency}")
    planned: dict[str, Components] = {}
    quantities: dict[str, Decimal] = collections.defaultdict(Decimal)
    item_tax = ZERO
    for line in memo.get("items") or []:
        qty, row, tax, disc = (dec(line.get(k)) for k in ("qty", "row_total", "tax_amount", "discount_amount"))
        if not qty and not row and not tax:
            continue  # Magento lists every order item, refunded or not
        commerce_item = int(line.get("order_item_id") or 0)
        code = item_codes.get(commerce_item)
        if code is None or code not in paid:
            raise RefundProblem(
                f"credit memo {memo_id} refunds Commerce order item {commerce_item} (SKU {line.get('sku')}), "
                "which is not an item of the Amazon order"
            )
        components = planned.setdefault(code, {})
        _add(components, "Principal", row - disc)
        _add(components, "Tax", tax)
        item_tax += tax
        quantities[code] += qty
    shipping = dec(memo.get("shipping_amount"))
    if memo.get("shipping_tax_amount") is not None:
        shipping_tax = dec(memo.get("shipping_tax_amount"))
    else:
        shipping_tax = dec(memo.get("tax_amount")) - item_tax
    order = list(planned) + sorted(code for code in paid if code not in planned)
    for kind, amount in (("Shipping", shipping), ("ShippingTax", shipping_tax)):
        if amount < 0:
            raise RefundProblem(f"credit memo {memo_id} has a negative {kind} amount {amount}")
        if amount > 0:
            capacity = {c: paid[c].get(kind, ZERO) - refunded.get(c, {}).get(kind, ZERO) for c in order}
            _allocate(planned, kind, amount, order, capacity)
    positive, negative = dec(memo.get("adjustment_positive")), dec(memo.get("adjustment_negative"))
    if positive > 0:
        # An extra amount refunded (adjustment refund): Goodwill, on the memo's items first, within what is left.
        left_total = {
            c: sum(paid[c].values(), ZERO)
            - sum(refunded.get(c, {}).values(), ZERO)
            - sum(planned.get(c, {}).values(), ZERO)
            for c in order
        }
        _allocate(planned, "Goodwill", positive, order, left_total)
    if negative > 0:
        # A fee kept back from the refund: Amazon takes only positive amounts, so it is netted out of Principal.
        left = negative
        for code in order:
            principal = planned.get(code, {}).get("Principal", ZERO)
            take = min(left, principal)
            if take > 0:
                planned[code]["Principal"] = principal - take
                left -= take
        if left > 0:
            raise RefundProblem(f"credit memo {memo_id}: adjustment fee {negative} is larger than the refunded items")
    planned = {c: {k: cents(v) for k, v in comps.items() if v != 0} for c, comps in planned.items()}
    planned = {c: comps for c, comps in planned.items() if comps}
    if not planned:
        raise RefundProblem(f"credit memo {memo_id} refunds nothing that Amazon can refund")
    for code, comps in planned.items():
        if any(v < 0 for v in comps.values()):
            raise RefundProblem(f"credit memo {memo_id}: negative amounts for Amazon item {code}: {comps}")
    total = sum((v for comps in planned.values() for v in comps.values()), ZERO)
    grand = dec(memo.get("grand_total"))
    if total != grand:
        raise RefundProblem(f"credit memo {memo_id}: components add up to {total}, not the memo's total {grand}")
    for code, comps in planned.items():
        asked = sum(comps.values(), ZERO)
        left = sum(paid[code].values(), ZERO) - sum(refunded.get(code, {}).values(), ZERO)
        if asked > left:
            raise RefundProblem(
                f"credit memo {memo_id} refunds {asked} {currency} for Amazon order item {code}, "
                f"but only {left} {currency} is left to refund on Amazon"
            )
    return [
        AdjustedItem(
            amazon_order_item_code=code,
            merchant_adjustment_item_id=f"cm{memo_id}-{index}",
            reason=reason,
            components=comps,
            currency=currency,
            quantity=int(quantities[code]) if quantities.get(code) and quantities[code] % 1 == 0 else None,
        )
        for index, (code, comps) in enumerate(planned.items(), start=1)
    ]


def adjustment_payload(amazon_order_id: str, memo: Mapping[str, Any], items: Sequence[AdjustedItem]) -> dict:
    """The outbox payload of a credit memo's adjustment: ids, total and items, amounts as decimal strings."""
    return {
        "amazon_order_id": amazon_order_id,
        "creditmemo_id": int(memo["entity_id"]),
        "commerce_order_id": int(memo["order_id"]),
        "total": str(sum((v for i in items for v in i.components.values()), ZERO)),
        "items": [
            {
                "code": i.amazon_order_item_code,
                "madj": i.merchant_adjustment_item_id,
                "reason": i.reason,
                "currency": i.currency,
                "quantity": i.quantity,
                "components": {k: str(v) for k, v in i.components.items()},
            }
            for i in items
        ],
    }


def build_adjustment_message(message_id: int, payload: Mapping[str, Any]):
    """The feed's ``OrderAdjustment`` message for an outbox payload (``adjustment_payload``)."""
    items = [
        AdjustedItem(
            amazon_order_item_code=i["code"],
            merchant_adjustment_item_id=i["madj"],
            reason=i["reason"],
            components={k: Decimal(v) for k, v in i["components"].items()},
            currency=i["currency"],
            quantity=i.get("quantity"),
        )
        for i in payload["items"]
    ]
    return adjustment_message(message_id, payload["amazon_order_id"], items)


@dataclasses.dataclass(frozen=True)
class RefundLine:
    """One ``ShipmentItemAdjustmentList`` entry of a Finances refund event, amounts positive."""

    code: str
    charges: Components
    currency: str
    merchant_adjustment_item_id: str | None = None

    @property
    def total(self) -> Decimal:
        """Every charge of the line added up."""
        return sum(self.charges.values(), ZERO)


def refund_lines(event: Mapping[str, Any]) -> list[RefundLine]:
    """The lines of a Finances refund event, amounts positive.

    :raises RefundProblem: a line mixes currencies or an amount is not a number.
    """
    lines = []
    for entry in event.get("ShipmentItemAdjustmentList") or []:
        charges: Components = {}
        currencies = set()
        for charge in entry.get("ItemChargeAdjustmentList") or []:
            amount = charge.get("ChargeAmount") or {}
            currencies.add(amount.get("CurrencyCode"))
            value = -dec(amount.get("CurrencyAmount"))
            if value:
                _add(charges, str(charge.get("ChargeType") or "Other"), value)
        if len(currencies) > 1:
            raise RefundProblem(f"refund line of item {entry.get('OrderAdjustmentItemId')} mixes {currencies}")
        lines.append(
            RefundLine(
                code=str(entry.get("OrderAdjustmentItemId") or ""),
                charges=charges,
                currency=next(iter(currencies), None) or "",
                merchant_adjustment_item_id=entry.get("MerchantAdjustmentItemId"),
            )
        )
    return lines


def event_key(event: Mapping[str, Any]) -> str:
    """A refund event's natural key: order id + posted date + a digest of its items and amounts."""
    body = sorted(
        (
            str(e.get("OrderAdjustmentItemId")),
            sorted(
                (str(c.get("ChargeType")), str(dec((c.get("ChargeAmount") or {}).get("CurrencyAmount"))))
                for c in e.get("ItemChargeAdjustmentList") or []
            ),
        )
        for e in event.get("ShipmentItemAdjustmentList") or []
    )
    digest = hashlib.sha256(json.dumps(body).encode()).hexdigest()[:16]
    return f"amzrefund:{event.get('AmazonOrderId')}:{event.get('PostedDate')}:{digest}"


def same_charges(a: Mapping[str, Any], b: Mapping[str, Decimal]) -> bool:
    """The same non-zero charges (``a``'s amounts may be decimal strings, as stored)."""
    left = {k: Decimal(v) for k, v in a.items() if Decimal(v) != 0}
    right = {k: v for k, v in b.items() if v != 0}
    return left == right


def match_own(
    lines: Sequence[RefundLine], candidates: Sequence[Mapping[str, Any]]
) -> tuple[list[tuple[RefundLine, str]], list[RefundLine]]:
    """Split an event's lines into ours (with the matched MerchantAdjustmentItemID) and foreign ones.

    ``candidates``: our adjusted items not yet matched to another event (``code``, ``madj``,
    ``components``). A line is ours when order item and amounts are equal; the sandbox's echo of
    MerchantAdjustmentItemId only chooses among equal candidates (real Amazon has no such field).
    """
    free = list(candidates)
    own, foreign = [], []
    for line in lines:
        matches = [c for c in free if c["code"] == line.code and same_charges(c["components"], line.charges)]
        if not matches:
            foreign.append(line)
            continue
        chosen = next((c for c in matches if c["madj"] == line.merchant_adjustment_item_id), matches[0])
        free.remove(chosen)
        own.append((line, chosen["madj"]))
    return own, foreign


def _portion(total: Decimal, done: Decimal, qty: Decimal, qty_total: Decimal, qty_done: Decimal) -> Decimal:
    # Magento's share of an item amount for ``qty`` units; the document that completes it takes the rest.
    if qty_total <= 0:
        return ZERO
    if qty_done + qty >= qty_total:
        return total - done
    return cents(total * qty / qty_total)


def plan_mirror(order: Mapping[str, Any], lines: Sequence[RefundLine], item_ids: Mapping[str, int]) -> dict[str, Any]:
    """Arguments of ``refund_order`` so that the Commerce credit memo totals Amazon's refund exactly.

    Whole units are refunded where an item's Principal is a whole number of units; shipping
    goes to ``shipping_amount`` (within what Commerce can still refund); any remainder is an
    adjustment (positive or negative), so the memo's grand total is the refund's.
    """
    by_id = {int(i["item_id"]): i for i in order.get("items") or []}
    total = sum((line.total for line in lines), ZERO)
    items: list[dict[str, Any]] = []
    predicted = ZERO
    shipping = ZERO
    for line in lines:
        shipping += line.charges.get("Shipping", ZERO)
        commerce_id = item_ids.get(line.code)
        item = by_id.get(commerce_id) if commerce_id is not None else None
        principal = line.charges.get("Principal", ZERO)
        if item is None or principal <= 0:
            continue
        ordered = dec(item.get("qty_ordered"))
        invoiced, done = dec(item.get("qty_invoiced")), dec(item.get("qty_refunded"))
        unit = (dec(item.get("row_total")) - dec(item.get("discount_amount"))) / ordered if ordered else ZERO
        if unit <= 0:
            continue
        units = (principal / unit).to_integral_value(rounding=ROUND_HALF_UP)
        if not (1 <= units <= invoiced - done) or abs(units * unit - principal) > CENT * units:
            continue
        row = _portion(dec(item.get("row_invoiced")), dec(item.get("amount_refunded")), units, invoiced, done)
        tax = _portion(dec(item.get("tax_invoiced")), dec(item.get("tax_refunded")), units, invoiced, done)
        disc = _portion(dec(item.get("discount_invoiced")), dec(item.get("discount_refunded")), units, invoiced, done)
        predicted += row + tax - disc
        items.append({"order_item_id": int(commerce_id), "qty": int(units)})
    shipping_left = dec(order.get("shipping_invoiced")) - dec(order.get("shipping_refunded"))
    shipping = max(min(shipping, shipping_left), ZERO)
    full_shipping = dec(order.get("shipping_amount"))
    shipping_tax = cents(dec(order.get("shipping_tax_amount")) * shipping / full_shipping) if full_shipping else ZERO
    predicted += shipping + shipping_tax
    residual = total - predicted
    if not items and by_id:
        # An empty item list means "refund everything" to Magento: name one item with quantity 0.
        items = [{"order_item_id": min(by_id), "qty": 0}]
    return {
        "items": items,
        "shipping_amount": shipping,
        "adjustment_positive": residual if residual > 0 else ZERO,
        "adjustment_negative": -residual if residual < 0 else ZERO,
        "total": total,
    }
