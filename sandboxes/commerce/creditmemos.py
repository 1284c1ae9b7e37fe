"""Credit memos: ``POST /V1/order/{id}/refund`` (``Magento\\Sales\\Model\\RefundOrder``).

Item amounts as the other documents (``documents._line_amounts``). The ``shipping_amount``,
``adjustment_positive`` and ``adjustment_negative`` arguments are in the store's BASE currency, as Magento reads
them (``CreditmemoFactory::initData``: ``setBaseShippingAmount``; ``Creditmemo::setAdjustmentPositive/Negative``:
base = the amount, order currency = ``round(amount x base_to_order_rate)``); the shipping total follows
``Creditmemo\\Total\\Shipping::collect`` and the refundable total ``Creditmemo\\Validation\\TotalsValidator``
(base currency only).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from sandboxes.commerce import catalog, machine
from sandboxes.commerce.context import Ctx, body_object, rest_context
from sandboxes.commerce.documents import (
    CREDITMEMO_AMOUNTS,
    CREDITMEMO_ERR,
    PREFIXES,
    _coerce_items,
    _comment,
    _doc_common,
    _doc_line,
    _line_amounts,
    _money_doc_fields,
)
from sandboxes.commerce.errors import MagentoError
from sandboxes.commerce.orders import get_order, touch
from sandboxes.commerce.schema_input import coerce
from sandboxes.commerce.state import SandboxState
from sandboxes.commerce.wire import D, format_decimal, money, ok

router = APIRouter()
ZERO = Decimal("0")


def _creditmemo_shipping(state: SandboxState, order: dict[str, Any], requested: Any) -> dict[str, Decimal]:
    """{"": shipping, "base_": base shipping} of a new credit memo, as ``Creditmemo\\Total\\Shipping::collect``.

    The ``shipping_amount`` argument is in the BASE currency (``CreditmemoFactory::initData`` calls
    ``setBaseShippingAmount``). Without it, what is left of the order's shipping is refunded. With it, it is
    rounded to the cent; more than the base shipping left is refused ("Maximum shipping amount allowed to refund
    is: %1", the base amount formatted in the base currency); all of it takes exactly what is left in both
    currencies; less takes its share of the order's shipping, each currency rounded (``round(amount x ratio)``).
    Shipping is taken excluding tax (``tax/sales_display/shipping`` at its default, excluding tax).
    """
    shipping, base_shipping = D(order.get("shipping_amount")), D(order.get("base_shipping_amount"))
    allowed = shipping - D(order.get("shipping_refunded"))
    base_allowed = base_shipping - D(order.get("base_shipping_refunded"))
    if requested is None:
        return {"": allowed, "base_": base_allowed}
    desired = money(D(requested))
    if desired > money(base_allowed):
        raise MagentoError(
            400, "Maximum shipping amount allowed to refund is: %1", [_format_base(state, order, base_allowed)]
        )
    if desired >= base_allowed:
        return {"": allowed, "base_": base_allowed}
    ratio = desired / base_shipping if base_shipping > 0 else ZERO
    return {"": money(shipping * ratio), "base_": money(base_shipping * ratio)}


def _creditmemo_adjustments(order: dict[str, Any], arguments: dict[str, Any]) -> dict[str, tuple[Decimal, Decimal]]:
    """{prefix: (adjustment_positive, adjustment_negative)} of a new credit memo.

    The arguments are in the BASE currency (``Creditmemo::setAdjustmentPositive/Negative``): the base amount is
    the argument rounded to the cent, the order-currency amount ``round(base x base_to_order_rate)``.
    """
    rate = D(order.get("base_to_order_rate")) or Decimal(1)
    base = tuple(money(D(arguments.get(n))) for n in ("adjustment_positive", "adjustment_negative"))
    return {"base_": base, "": tuple(money(b * rate) for b in base)}  # type: ignore[dict-item]


def _format_base(state: SandboxState, order: dict[str, Any], amount: Decimal) -> str:
    """``$order->getBaseCurrency()->format($amount, null, false)``: the amount in the base currency, CLDR format
    of the order's store locale (``$15.09``); the plain number when babel is missing."""
    found = state.config.store_by_id(int(order.get("store_id") or 0))
    locale = (found[1] if found else {}).get("locale", "en_US")
    try:
        from babel.numbers import format_currency

        return format_currency(amount, str(order.get("base_currency_code") or "USD"), locale=locale)
    except (ImportError, ValueError):
        return format_decimal(amount)


def refund_order(state: SandboxState, order: dict[str, Any], body: dict[str, Any]) -> int:  # noqa: C901
    items = _coerce_items(body, "sales-data-creditmemo-item-creation-interface")
    arguments = coerce("sales-data-creditmemo-creation-arguments-interface", body.get("arguments") or {}, "arguments")
    return_ids = {int(i) for i in (arguments.get("extension_attributes") or {}).get("return_to_stock_items") or []}
    with state.lock:
        if not machine.can_creditmemo(order):
            raise MagentoError(400, CREDITMEMO_ERR + "The order does not allow a creditmemo to be created.")
        by_id = {int(i["item_id"]): i for i in order["items"]}
        for raw in items:
            if int(raw["order_item_id"]) not in by_id:
                raise MagentoError(
                    400,
                    CREDITMEMO_ERR + "The creditmemo contains product item id %1 that is not "
                    "part of the original order.",
                    [int(raw["order_item_id"])],
                )
        wanted: dict[int, Decimal] = {}
        if items:
            for raw in items:
                wanted[int(raw["order_item_id"])] = wanted.get(int(raw["order_item_id"]), ZERO) + D(raw["qty"])
        else:
            wanted = {k: machine.qty_to_refund(i) for k, i in by_id.items() if machine.qty_to_refund(i) > 0}
        for item_id, qty in wanted.items():
            if qty < 0 or qty > machine.qty_to_refund(by_id[item_id]):
                raise MagentoError(
                    400,
                    CREDITMEMO_ERR + "The quantity to creditmemo must not be greater than the "
                    f'unrefunded quantity for product SKU "{by_id[item_id]["sku"]}".',
                )
        wanted = {k: v for k, v in wanted.items() if v > 0}
        if not return_ids <= set(wanted):
            raise MagentoError(
                400,
                CREDITMEMO_ERR + "The return to stock argument contains product item that is "
                "not part of the original order.",
            )
        memo = _doc_common(state, order, "creditmemo")
        memo.update(_money_doc_fields(order))
        memo.update(state=2, creditmemo_status=2, email_sent=int(bool(body.get("notify"))))
        updates: list[tuple[dict[str, Any], Decimal, dict[str, Decimal]]] = []
        totals = {f"{p}{n}": ZERO for p in PREFIXES for n in ("subtotal", "tax_amount", "discount_amount")}
        amounts = _line_amounts(order, wanted, CREDITMEMO_AMOUNTS, machine.qty_to_refund)
        doc_items = []
        for item_id, qty in wanted.items():
            item = by_id[item_id]
            line = _doc_line(state, "creditmemo_item", memo["entity_id"], item, qty, amounts[item_id])
            line["base_cost"] = D(item.get("base_cost"))
            deltas: dict[str, Decimal] = {}
            for p in PREFIXES:
                row, tax, disc = (amounts[item_id][f"{p}{n}"] for n in ("row_total", "tax_amount", "discount_amount"))
                deltas.update({f"{p}amount_refunded": row, f"{p}tax_refunded": tax, f"{p}discount_refunded": disc})
                totals[f"{p}subtotal"] += row
                totals[f"{p}tax_amount"] += tax
                totals[f"{p}discount_amount"] += disc
            updates.append((item, qty, deltas))
            doc_items.append(line)
        shipping_by = _creditmemo_shipping(state, order, arguments.get("shipping_amount"))
        adjustments = _creditmemo_adjustments(order, arguments)
        for p in PREFIXES:
            shipping = shipping_by[p]
            full_shipping = D(order.get(f"{p}shipping_amount"))
            shipping_tax = (
                money(D(order.get(f"{p}shipping_tax_amount")) * shipping / full_shipping) if full_shipping > 0 else ZERO
            )
            adj_pos, adj_neg = adjustments[p]
            tax = totals[f"{p}tax_amount"] + shipping_tax
            grand = totals[f"{p}subtotal"] + tax + shipping - totals[f"{p}discount_amount"] + adj_pos - adj_neg
            if p:  # Creditmemo\Validation\TotalsValidator: the base currency only
                available = D(order.get(f"{p}total_paid")) - D(order.get(f"{p}total_refunded"))
                if money(D(order.get(f"{p}total_refunded")) + grand) > money(D(order.get(f"{p}total_paid"))):
                    raise MagentoError(400, "The most money available to refund is %1.", [format_decimal(available)])
            if grand <= 0 and not p:
                raise MagentoError(400, CREDITMEMO_ERR + "The credit memo's total must be positive.")
            memo.update(
                {
                    f"{p}subtotal": totals[f"{p}subtotal"],
                    f"{p}subtotal_incl_tax": totals[f"{p}subtotal"] + totals[f"{p}tax_amount"],
                    f"{p}tax_amount": tax,
                    f"{p}shipping_amount": shipping,
                    f"{p}shipping_tax_amount": shipping_tax,
                    f"{p}shipping_incl_tax": shipping + shipping_tax,
                    f"{p}discount_amount": -totals[f"{p}discount_amount"],
                    f"{p}adjustment_positive": adj_pos,
                    f"{p}adjustment_negative": adj_neg,
                    f"{p}adjustment": adj_pos - adj_neg,
                    f"{p}grand_total": grand,
                }
            )
        # Validation passed: apply to the order.
        for item, qty, deltas in updates:
            item["qty_refunded"] = D(item["qty_refunded"]) + qty
            for name, value in deltas.items():
                item[name] = D(item.get(name)) + value
            item["updated_at"] = state.now()
            if int(item["item_id"]) in return_ids:
                catalog.return_to_stock(state, item["sku"], qty)
        for p in PREFIXES:
            for order_field, memo_field in (
                ("subtotal_refunded", "subtotal"),
                ("tax_refunded", "tax_amount"),
                ("shipping_refunded", "shipping_amount"),
                ("shipping_tax_refunded", "shipping_tax_amount"),
                ("total_refunded", "grand_total"),
                ("total_offline_refunded", "grand_total"),
                ("adjustment_positive", "adjustment_positive"),
                ("adjustment_negative", "adjustment_negative"),
            ):
                order[f"{p}{order_field}"] = D(order.get(f"{p}{order_field}")) + memo[f"{p}{memo_field}"]
            order[f"{p}discount_refunded"] = D(order.get(f"{p}discount_refunded")) + memo[f"{p}discount_amount"]
            order["payment"][f"{p}amount_refunded"] = (
                D(order["payment"].get(f"{p}amount_refunded")) + memo[f"{p}grand_total"]
            )
        memo["items"] = doc_items
        memo["comments"] = _comment(state, memo["entity_id"], body.get("comment"), bool(body.get("notify")))
        machine.check_state(order)
        touch(state, order)
        state.creditmemos[memo["entity_id"]] = memo
        state.save()
        return int(memo["entity_id"])


@router.post("/V1/order/{order_id}/refund")
async def post_refund(order_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    return ok(refund_order(ctx.state, get_order(ctx.state, order_id), body_object(ctx)))
