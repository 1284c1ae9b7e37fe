"""Pure refund rules, both ways, tested without Airflow or HTTP.

Commerce → Amazon (``plan_adjustment``): the ``OrderAdjustment`` items of a Commerce credit memo for
the ``POST_PAYMENT_ADJUSTMENT_DATA`` feed. Per refunded item: Principal (row total net of discount),
Tax, Shipping and ShippingTax (the memo's shipping, attributed to the memo's items first, then to the
order's other items, within what Amazon can still refund of each item's shipping; beyond it GiftWrap and
GiftWrapTax: ``refund_charges``), Goodwill (``adjustment_positive``); ``adjustment_negative`` is netted out of
Principal. The components add up to the memo's grand total to the cent (plus the marketplace facilitator tax the
Commerce order does not carry, which Amazon refunds: ``refund_charges``), or ``RefundProblem`` says why not.

Amazon → Commerce: the lines of a Finances 2024-06-19 refund transaction (``refund_lines``: its ``items``,
each with a ``ProductContext`` naming the SKU and ``breakdowns`` of what the buyer got back), its natural key
(``transaction_key``: one key for the transaction whatever its ``transactionStatus``), which lines are our own
adjustments coming back (``match_own``), and the offline credit memo that totals the refund exactly
(``plan_mirror``).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from amazon_commerce_sync import refund_charges, transform
from amazon_commerce_sync.feeds import AdjustedItem
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
    wraps = refund_charges.gift_wrap_by_item(order_payload)  # Amazon's GiftWrap, GiftWrapTax: apart
    out = {}
    for item in amounts.items:
        wrap, wrap_tax = wraps.get(item.order_item_id, (ZERO, ZERO))
        out[item.order_item_id] = {
            "Principal": item.row_total - item.discount,
            "Tax": item.tax - wrap_tax,
            "Shipping": item.shipping - item.shipping_discount,
            "ShippingTax": item.shipping_tax,
            "GiftWrap": wrap,
            "GiftWrapTax": wrap_tax,
            "Other": item.other - wrap,
        }
    return out


def skus_of(order_payload: Mapping[str, Any]) -> dict[str, list[str]]:
    """Seller SKU → the staged order's Amazon order item ids, in the order's item order."""
    out: dict[str, list[str]] = collections.defaultdict(list)
    for item in transform.order_amounts(order_payload).items:
        out[item.seller_sku].append(item.order_item_id)
    return dict(out)


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
        hint = ""
        if kind in ("Shipping", "GiftWrap"):  # a memo's shipping beyond item shipping is sent as GiftWrap
            # Commerce's shipping & handling also carries charges Amazon has per order or as gift wrap, not as
            # item shipping (order_charges: a delivery tip; order_programs: gift wrap)
            hint = (
                " (Commerce's shipping & handling also holds any gift wrap or delivery tip; Amazon refunds only item"
                " shipping and paid gift wrap, never a delivery tip: lower the memo's shipping by"
                f" {left})"
            )
        raise RefundProblem(
            f"{kind} refund of {amount} is more than is left to refund on Amazon as {kind} on this order's items" + hint
        )


def plan_adjustment(
    memo: Mapping[str, Any],
    *,
    currency: str,
    item_codes: Mapping[int, str],
    paid: Mapping[str, Components],
    refunded: Mapping[str, Components],
    reason: str,
    facilitator: Collection[str] = (),
    collected: dict[str, Components] | None = None,
) -> list[AdjustedItem]:
    """The adjusted items of one credit memo; ``RefundProblem`` when it cannot be sent as it is.

    ``item_codes`` maps Commerce order item id → Amazon order item id; ``paid`` and
    ``refunded`` are per Amazon item and component. The memo's shipping is ``Shipping`` up to what is left of it,
    the rest ``GiftWrap`` (the Commerce order's shipping & handling includes a paid gift wrap; its tax likewise
    ``ShippingTax`` then ``GiftWrapTax``). ``facilitator``: Amazon items whose marketplace facilitator tax the
    Commerce order does not carry (``marketplace_facilitator_tax: exclude``): the memo refunds none of it, the
    adjustment adds it (``refund_charges.facilitator_tax_refund``: why), so its total is the memo's plus that tax;
    ``collected`` (when given) receives that tax per item and component.
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
    memo_tax = {code: comps.get("Tax", ZERO) for code, comps in planned.items()}
    order = list(planned) + sorted(code for code in paid if code not in planned)
    remaining = {c: {k: v - refunded.get(c, {}).get(k, ZERO) for k, v in paid[c].items()} for c in order}
    for c in facilitator:  # Commerce's shipping tax is none of theirs: the adjustment adds their own below
        remaining.get(c, {}).update(ShippingTax=ZERO, GiftWrapTax=ZERO)
    for kinds, amount in ((("Shipping", "GiftWrap"), shipping), (("ShippingTax", "GiftWrapTax"), shipping_tax)):
        if amount < 0:
            raise RefundProblem(f"credit memo {memo_id} has a negative {kinds[0]} amount {amount}")
        for kind, part in refund_charges.split_shipping(amount, kinds, order, remaining):
            _allocate(planned, kind, part, order, {c: remaining[c].get(kind, ZERO) for c in order})
    added = refund_charges.facilitator_tax_refund(
        planned, paid=paid, refunded=refunded, facilitator=facilitator, memo_tax=memo_tax
    )
    for code, taxes in added.items():
        for kind, amount in taxes.items():
            _add(planned[code], kind, amount)
    if collected is not None:
        collected.clear()
        collected.update(added)
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
    grand = dec(memo.get("grand_total")) + refund_charges.total(added)
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


def adjustment_payload(
    amazon_order_id: str,
    memo: Mapping[str, Any],
    items: Sequence[AdjustedItem],
    collected: Mapping[str, Components] | None = None,
) -> dict:
    """The outbox payload of a credit memo's adjustment: ids, total and items, amounts as decimal strings; with
    ``facilitator_tax`` the marketplace facilitator tax it adds to the memo's amounts (``plan_adjustment``)."""
    extra = {"facilitator_tax": refund_charges.as_json(collected)} if collected else {}
    return {
        **extra,
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


@dataclasses.dataclass(frozen=True)
class RefundLine:
    """One item of a Finances refund transaction (``code``: the Amazon order item id), amounts positive."""

    code: str
    charges: Components
    currency: str
    merchant_adjustment_item_id: str | None = None

    @property
    def total(self) -> Decimal:
        """Every charge of the line added up."""
        return sum(self.charges.values(), ZERO)


#: Finances 2024-06-19 breakdown leaves (``ProductCharges``, ``Shipping``, ``GiftWrap``) → adjustment components
#: (the feed's names); a leaf under ``OtherCharges`` keeps its own name (``Goodwill`` ...).
CHARGE_LEAVES = {
    "Principal": "Principal",
    "Tax": "Tax",
    "ShippingCharge": "Shipping",
    "ShippingTax": "ShippingTax",
    "GiftWrapCharge": "GiftWrap",
    "GiftWrapTax": "GiftWrapTax",
}
CHARGE_GROUPS = ("ProductCharges", "Shipping", "GiftWrap", "OtherCharges")
REFUND_TYPES = ("refund",)  # ``transactionType`` of a refund to the buyer (Amazon: "Refund", "Refund Order")


def is_refund(transaction: Mapping[str, Any]) -> bool:
    """A refund to the buyer (``transactionType`` ``Refund``); shipments, fees, transfers... are not."""
    return str(transaction.get("transactionType") or "").strip().lower() in REFUND_TYPES


def related(transaction: Mapping[str, Any], name: str) -> str | None:
    """The value of the transaction's related identifier ``name`` (``ORDER_ID``, ``REFUND_ID``...), if any."""
    for ident in transaction.get("relatedIdentifiers") or []:
        if ident.get("relatedIdentifierName") == name and ident.get("relatedIdentifierValue"):
            return str(ident["relatedIdentifierValue"])
    return None


def _charges(breakdowns: Iterable[Mapping[str, Any]], currencies: set, group: str | None = None) -> Components:
    out: Components = {}
    for b in breakdowns or []:
        kind = str(b.get("breakdownType") or "")
        children = b.get("breakdowns") or []
        if group is None:
            if kind in CHARGE_GROUPS:
                for k, v in _charges(children, currencies, kind).items():
                    _add(out, k, v)
            continue  # fees (AmazonFees, Expenses), promotions: not what the buyer got back
        if children:
            for k, v in _charges(children, currencies, group).items():
                _add(out, k, v)
            continue
        amount = b.get("breakdownAmount") or {}
        value = -dec(amount.get("currencyAmount"))  # a refund's charges are negative
        if value:
            currencies.add(amount.get("currencyCode"))
            _add(out, CHARGE_LEAVES.get(kind, kind) if group != "OtherCharges" else kind, value)
    return out


def refund_lines(transaction: Mapping[str, Any], items_by_sku: Mapping[str, Sequence[str]]) -> list[RefundLine]:
    """The lines of a Finances 2024-06-19 refund transaction, per Amazon order item, amounts positive.

    Each ``items[]`` entry names its SKU in a ``ProductContext`` (the transaction carries no order item id);
    ``items_by_sku`` maps seller SKU → the order's Amazon order item ids (from the staged order). Where one
    SKU has several order items, the first not yet refunded by an earlier line of this transaction is taken.

    :raises RefundProblem: an item names no SKU of the order, mixes currencies or an amount is not a number.
    """
    lines: list[RefundLine] = []
    for item in transaction.get("items") or []:
        contexts = [c for c in item.get("contexts") or [] if c.get("contextType") == "ProductContext"]
        sku = str((contexts[0] if contexts else {}).get("sku") or "")
        codes = list(items_by_sku.get(sku) or [])
        if not codes:
            raise RefundProblem(f"refund item SKU {sku or '(none)'} is not an item of the Amazon order")
        used = {line.code for line in lines}
        code = next((c for c in codes if c not in used), codes[0])
        currencies: set = set()
        charges = _charges(item.get("breakdowns") or [], currencies)
        if len(currencies) > 1:
            raise RefundProblem(f"refund line of SKU {sku} mixes {sorted(map(str, currencies))}")
        currency = next(iter(currencies), None) or (transaction.get("totalAmount") or {}).get("currencyCode") or ""
        lines.append(RefundLine(code=code, charges=charges, currency=str(currency)))
    return lines


def transaction_key(transaction: Mapping[str, Any]) -> str:
    """A refund transaction's natural key: ``amzrefund:<order id>:<transaction id>``.

    Amazon updates a deferred transaction's ``transactionStatus`` (DEFERRED → DEFERRED_RELEASED) in place, so
    its ``transactionId`` stays; a transaction that names a ``DEFERRED_TRANSACTION_ID`` (the model's "transaction
    ID for the related deferred transaction") is the release of that one and gets its key.
    """
    identity = related(transaction, "DEFERRED_TRANSACTION_ID") or transaction.get("transactionId")
    if not identity:
        raise RefundProblem("refund transaction without a transactionId")
    return f"amzrefund:{related(transaction, 'ORDER_ID')}:{identity}"


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
    """Arguments of ``refund_order`` so that the Commerce credit memo totals Amazon's refund exactly, or, where
    Commerce never collected part of it (``total_paid``), what Commerce can still refund (``uncollected``: the rest).

    Whole units are refunded where an item's Principal is a whole number of units; shipping
    goes to ``shipping_amount`` (within what Commerce can still refund); any remainder is an
    adjustment (positive or negative), so the memo's grand total is the refund's. Amounts are in the order
    currency; ``OfflineRefund.for_order`` converts the arguments to the base currency Magento reads them in.
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
    # Magento refunds at most what was paid (CreditmemoService::validateForRefund: "The most money available to
    # refund is %1"): charges the order carries but its invoices never collected (gift wrap, other charges booked
    # as the order's adjustment) cannot be given back in Commerce. The rest of Amazon's refund is ``uncollected``.
    target = total
    if order.get("total_paid") is not None:
        target = max(min(total, dec(order.get("total_paid")) - dec(order.get("total_refunded"))), ZERO)
    residual = target - predicted
    if not items and by_id:
        # An empty item list means "refund everything" to Magento: name one item with quantity 0.
        items = [{"order_item_id": min(by_id), "qty": 0}]
    return {
        "items": items,
        "shipping_amount": shipping,
        "adjustment_positive": residual if residual > 0 else ZERO,
        "adjustment_negative": -residual if residual < 0 else ZERO,
        "total": target,
        "uncollected": total - target,
    }
