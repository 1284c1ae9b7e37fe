"""Pure rules of the three-way refund check: the same refund seen three ways, compared to the cent.

For a credit memo sent to Amazon: the memo's amounts (``memo_amounts``, read from the Commerce memo itself),
the adjustment Amazon accepted (the feed's ``OrderAdjustment`` items its processing report accepted) and the
refund transaction Amazon posts (Finances 2024-06-19 ``listTransactions``). For a refund Amazon made on its
side: the transaction and the offline credit memo that mirrors it (``mirror_memo_amounts``).

Amounts are compared per Amazon order item and component (``Principal``, ``Tax``: the memo names them per
item) and, for what the integration spreads over items itself (``Shipping``, ``ShippingTax``, ``Goodwill``,
or anything else; gift wrap counts as shipping), per order under the item ``"*"`` (``comparable``).
``differences`` lists every (item, component) on which the amounts disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

ZERO = Decimal("0")
CENT = Decimal("0.01")
PER_ITEM = ("Principal", "Tax")  # the components a Commerce credit memo states per item
ORDER = "*"  # the pseudo item of order-level components
AS_SHIPPING = {"GiftWrap": "Shipping", "GiftWrapTax": "ShippingTax"}  # compared as Commerce books them
Amounts = dict[str, dict[str, Decimal]]


def _dec(value: Any) -> Decimal:
    return ZERO if value in (None, "") else Decimal(str(value))


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def comparable(per_item: Mapping[str, Mapping[str, Any]]) -> Amounts:
    """``{item code: {component: amount}}`` → the comparable form: ``PER_ITEM`` components stay on their item,
    every other component is summed under ``"*"``, ``GiftWrap``/``GiftWrapTax`` with ``Shipping``/``ShippingTax``
    (``AS_SHIPPING``: a Commerce order books a paid gift wrap as shipping & handling, so its memo cannot tell them
    apart); amounts rounded to the cent, zeros left out."""
    out: Amounts = {}
    for code, components in per_item.items():
        for kind, value in components.items():
            kind = AS_SHIPPING.get(kind, kind)
            target = code if kind in PER_ITEM and code != ORDER else ORDER
            bucket = out.setdefault(target, {})
            bucket[kind] = bucket.get(kind, ZERO) + _dec(value)
    return {c: {k: _cents(v) for k, v in comps.items() if v} for c, comps in out.items() if any(comps.values())}


def memo_amounts(
    memo: Mapping[str, Any], item_codes: Mapping[int, str], collected: Mapping[str, Mapping[str, Any]] | None = None
) -> Amounts:
    """A Commerce credit memo's own amounts (``GET /V1/creditmemos``), comparable with an adjustment.

    Per item: Principal = ``row_total`` − ``discount_amount`` and Tax = ``tax_amount`` (``item_codes``: Commerce
    order item id → Amazon order item id; an unknown item keeps its Commerce id); per order: Shipping
    (``shipping_amount``), ShippingTax (``shipping_tax_amount``, else the memo's tax less its items'), Goodwill
    (``adjustment_positive``). ``adjustment_negative`` (a fee kept back) is taken off the items' Principal in
    the memo's item order, as Amazon takes only positive amounts (``refunds.plan_adjustment``). ``collected``:
    the marketplace facilitator tax the adjustment adds, per item and component (the Commerce order does not carry
    it: ``refund_charges``), counted with the memo's so that the check compares like with like.
    """
    per_item: dict[str, dict[str, Decimal]] = {}
    item_tax = ZERO
    for line in memo.get("items") or []:
        row, tax, disc = (_dec(line.get(k)) for k in ("row_total", "tax_amount", "discount_amount"))
        if not _dec(line.get("qty")) and not row and not tax:
            continue
        commerce_id = int(line.get("order_item_id") or 0)
        code = item_codes.get(commerce_id, f"commerce:{commerce_id}")
        bucket = per_item.setdefault(code, {})
        bucket["Principal"] = bucket.get("Principal", ZERO) + row - disc
        bucket["Tax"] = bucket.get("Tax", ZERO) + tax
        item_tax += tax
    fee = _dec(memo.get("adjustment_negative"))
    for bucket in per_item.values():
        take = min(fee, bucket.get("Principal", ZERO))
        if take > 0:
            bucket["Principal"] -= take
            fee -= take
    shipping_tax = memo.get("shipping_tax_amount")
    order_level = {
        "Shipping": _dec(memo.get("shipping_amount")),
        "ShippingTax": _dec(shipping_tax) if shipping_tax is not None else _dec(memo.get("tax_amount")) - item_tax,
        "Goodwill": _dec(memo.get("adjustment_positive")),
    }
    if fee > 0:
        order_level["Principal"] = -fee
    for code, taxes in (collected or {}).items():
        for kind, value in taxes.items():
            bucket = per_item.setdefault(code, {}) if kind in PER_ITEM else order_level
            bucket[kind] = bucket.get(kind, ZERO) + _dec(value)
    return comparable({**per_item, ORDER: order_level})


def adjustment_amounts(items: Sequence[Mapping[str, Any]]) -> Amounts:
    """The adjusted items of an outbox payload (``refunds.adjustment_payload``), comparable."""
    per_item: dict[str, dict[str, Decimal]] = {}
    for item in items:
        bucket = per_item.setdefault(item["code"], {})
        for kind, value in item["components"].items():
            bucket[kind] = bucket.get(kind, ZERO) + _dec(value)
    return comparable(per_item)


def mirror_memo_amounts(memo: Mapping[str, Any]) -> Amounts:
    """An offline credit memo that mirrors an Amazon refund, comparable with the transaction at order level:
    its grand total (``Total``) and ``Shipping`` (the mirror refunds whole units and puts the rest in
    adjustments, so only these two are the transaction's to the cent)."""
    return comparable({ORDER: {"Total": _dec(memo.get("grand_total")), "Shipping": _dec(memo.get("shipping_amount"))}})


def transaction_totals(
    per_item: Mapping[str, Mapping[str, Any]], excluded: Mapping[str, Mapping[str, Any]] | None = None
) -> Amounts:
    """A mirrored refund transaction's lines (``{item: {component: amount}}``) as ``mirror_memo_amounts`` has
    them: the total and Shipping, per order. ``excluded``: what the mirror left out because the Commerce order
    never carried it (marketplace facilitator tax under ``marketplace_facilitator_tax: exclude``), not counted."""
    total = sum((_dec(v) for comps in per_item.values() for v in comps.values()), ZERO)
    total -= sum((_dec(v) for comps in (excluded or {}).values() for v in comps.values()), ZERO)
    shipping = sum((_dec(comps.get("Shipping")) for comps in per_item.values()), ZERO)
    return comparable({ORDER: {"Total": total, "Shipping": shipping}})


def differences(**sources: Mapping[str, Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Every (item, component) on which the given amounts disagree (a source given as None is not compared):
    ``[{"item", "component", <source name>: "decimal string"...}]``, sorted."""
    given = {name: amounts for name, amounts in sources.items() if amounts is not None}
    keys = sorted({(code, kind) for amounts in given.values() for code, comps in amounts.items() for kind in comps})
    out = []
    for code, kind in keys:
        values = {name: _dec((amounts.get(code) or {}).get(kind)) for name, amounts in given.items()}
        if len(set(values.values())) > 1:
            out.append({"item": code, "component": kind, **{n: str(v) for n, v in values.items()}})
    return out


def as_json(amounts: Amounts) -> dict[str, dict[str, str]]:
    """Amounts with decimal strings, for the state store."""
    return {code: {k: str(v) for k, v in comps.items()} for code, comps in amounts.items()}


def describe(amazon_order_id: str, creditmemo_id: int, currency: str, diffs: Sequence[Mapping[str, Any]]) -> str:
    """A mismatch for a person: the order, the memo, and per component the amounts each side has."""
    parts = []
    for d in diffs:
        where = "order" if d["item"] == ORDER else f"item {d['item']}"
        amounts = ", ".join(f"{name} {d[name]}" for name in d if name not in ("item", "component"))
        parts.append(f"{d['component']} ({where}): {amounts}")
    return f"order {amazon_order_id}, credit memo {creditmemo_id}, {currency}: " + "; ".join(parts)


def near_own(
    lines: Sequence[Any], entries: Sequence[Sequence[Mapping[str, Any]]]
) -> tuple[list[tuple[Any, str]], list]:
    """Refund lines that are one of our accepted adjustments posted with other amounts.

    ``lines``: the transaction's lines no adjustment matched exactly (``refunds.RefundLine``); ``entries``: per
    accepted adjustment of the order, its items not yet seen in a transaction (``code``, ``madj``). When the lines
    are exactly one adjustment's items (the same Amazon order items, one line each), they are that adjustment as
    Amazon posted it: returned as ``(line, madj)`` pairs for the three-way check to compare, never mirrored back
    into Commerce as a second refund. Otherwise nothing is matched.
    """
    codes = sorted(line.code for line in lines)
    for items in entries:
        if codes and sorted(i["code"] for i in items) == codes and len(set(codes)) == len(codes):
            by_code = {i["code"]: i["madj"] for i in items}
            return [(line, by_code[line.code]) for line in lines], []
    return [], list(lines)
