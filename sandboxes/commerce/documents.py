"""Invoices, shipments and credit memos: the order actions and their read/search routes.

Item amounts follow Magento's document items and total collectors (``Order\\Invoice\\Item::calcRowTotal``,
``Order\\Creditmemo\\Item::calcRowTotal``): an item's row total, discount and tax on a document are what is left of
the order item's amount ÷ the quantity left × the document's quantity, rounded to the cent with the document's
delta rounding (``Invoice::roundPrice``: the rounding remainder is carried to the next amount, one carry per
currency); the document that takes an item's last quantity takes what is left. The ``base_*`` amounts are computed
the same way from the order item's own ``base_*`` amounts, never converted with a rate, so a refund in the base
currency is exact. Shipping goes with the first invoice, and a credit memo refunds at most what was paid.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from sandboxes.commerce import machine, search
from sandboxes.commerce.context import Ctx, body_object, rest_context
from sandboxes.commerce.errors import MagentoError, not_found
from sandboxes.commerce.orders import get_order, touch
from sandboxes.commerce.schema_input import coerce, properties
from sandboxes.commerce.state import SandboxState
from sandboxes.commerce.wire import D, money, ok

router = APIRouter()
ZERO = Decimal("0")
PREFIXES = ("", "base_")
INVOICE_ERR = "Invoice Document Validation Error(s):\n"
SHIP_ERR = "Shipment Document Validation Error(s):\n"
CREDITMEMO_ERR = "Creditmemo Document Validation Error(s):\n"


class DeltaRounder:
    """``Magento\\Framework\\Math\\Calculator::deltaRound`` of one document and currency: each amount is rounded to
    the cent after adding the previous rounding remainder, and its own remainder is kept for the next."""

    def __init__(self) -> None:
        self.delta = ZERO

    def round(self, amount: Decimal) -> Decimal:
        if not amount:
            return amount
        amount += self.delta
        rounded = money(amount)
        self.delta = amount - rounded
        return rounded


# The amounts a document line takes from its order item, in the order Magento's collectors compute them:
# (line field, order item amount, order item counter of what earlier documents took).
INVOICE_AMOUNTS = (
    ("row_total", "row_total", "row_invoiced"),
    ("discount_amount", "discount_amount", "discount_invoiced"),
    ("tax_amount", "tax_amount", "tax_invoiced"),
)
CREDITMEMO_AMOUNTS = (
    ("row_total", "row_invoiced", "amount_refunded"),
    ("discount_amount", "discount_invoiced", "discount_refunded"),
    ("tax_amount", "tax_invoiced", "tax_refunded"),
)


def _line_amounts(
    order: dict[str, Any], wanted: dict[int, Decimal], amounts: tuple[tuple[str, str, str], ...], qty_left: Any
) -> dict[int, dict[str, Decimal]]:
    """{order item id: {"row_total", "base_row_total", "discount_amount", ...}} of a new document.

    ``qty_left(item)`` is the quantity the document may still take (to invoice, or to refund); a line taking all of
    it is the item's last and takes what is left of each amount.
    """
    rounders = {p: DeltaRounder() for p in PREFIXES}
    lines: dict[int, dict[str, Decimal]] = {item_id: {} for item_id in wanted}
    for field, total_field, done_field in amounts:
        for item_id, qty in wanted.items():
            item = _item(order, item_id)
            available = qty_left(item)
            for p in PREFIXES:
                left = D(item.get(f"{p}{total_field}")) - D(item.get(f"{p}{done_field}"))
                if qty >= available or available <= 0:
                    lines[item_id][f"{p}{field}"] = left
                else:
                    lines[item_id][f"{p}{field}"] = rounders[p].round(left / available * qty)
    return lines


def _requested(raw_items: Any, order: dict[str, Any], remaining: Any, err: str, message: str) -> dict[int, Decimal]:
    """Requested {order_item_id: qty}; omitted items mean "everything left"."""
    by_id = {int(i["item_id"]): i for i in order["items"]}
    if not raw_items:
        return {item_id: remaining(item) for item_id, item in by_id.items() if remaining(item) > 0}
    wanted: dict[int, Decimal] = {}
    for raw in raw_items:
        item_id = int(raw["order_item_id"])
        if item_id not in by_id:
            raise MagentoError(400, err + message)
        wanted[item_id] = wanted.get(item_id, ZERO) + D(raw["qty"])
    for item_id, qty in wanted.items():
        if qty < 0 or qty > remaining(by_id[item_id]):
            raise MagentoError(400, err + message)
    return {k: v for k, v in wanted.items() if v > 0}


def _item(order: dict[str, Any], item_id: int) -> dict[str, Any]:
    return next(i for i in order["items"] if int(i["item_id"]) == item_id)


def _doc_line(
    state: SandboxState, kind: str, parent_id: int, item: dict[str, Any], qty: Decimal, amounts: dict[str, Decimal]
) -> dict[str, Any]:
    """A document item: the order item's identity and prices, and the amounts the document takes."""
    line: dict[str, Any] = {
        "entity_id": state.next_id(kind),
        "parent_id": parent_id,
        "order_item_id": int(item["item_id"]),
        "sku": item["sku"],
        "name": item.get("name"),
        "qty": qty,
    }
    if item.get("product_id") is not None:
        line["product_id"] = item["product_id"]
    for p in PREFIXES:
        row, tax = amounts[f"{p}row_total"], amounts[f"{p}tax_amount"]
        line.update(
            {
                f"{p}price": D(item.get(f"{p}price")),
                f"{p}row_total": row,
                f"{p}tax_amount": tax,
                f"{p}discount_amount": amounts[f"{p}discount_amount"],
                f"{p}price_incl_tax": D(item.get(f"{p}price_incl_tax")),
                f"{p}row_total_incl_tax": row + tax,
            }
        )
    return line


def _coerce_items(body: dict[str, Any], definition: str) -> list[dict[str, Any]]:
    items = body.get("items") or []
    if not isinstance(items, list):
        raise MagentoError(400, "Decoding error: \nSyntax error")
    out = []
    for raw in items:
        item = coerce(definition, raw, "items")
        for name in ("order_item_id", "qty"):
            if item.get(name) is None:
                raise MagentoError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": name})
        out.append(item)
    return out


def _doc_common(state: SandboxState, order: dict[str, Any], kind: str) -> dict[str, Any]:
    now = state.now()
    return {
        "entity_id": state.next_id(kind),
        "increment_id": state.next_increment_id(kind, int(order["store_id"])),
        "order_id": order["entity_id"],
        "store_id": order["store_id"],
        "created_at": now,
        "updated_at": now,
        **({"billing_address_id": order["billing_address_id"]} if order.get("billing_address_id") else {}),
    }


def _money_doc_fields(order: dict[str, Any]) -> dict[str, Any]:
    return {
        name: order[name]
        for name in (
            "base_currency_code",
            "global_currency_code",
            "order_currency_code",
            "store_currency_code",
            "base_to_global_rate",
            "base_to_order_rate",
            "store_to_base_rate",
            "store_to_order_rate",
        )
        if name in order
    }


def _comment(state: SandboxState, parent_id: int, raw: Any, notify: bool) -> list[dict[str, Any]]:
    if not isinstance(raw, dict) or not raw.get("comment"):
        return []
    return [
        {
            "entity_id": state.next_id("document_comment"),
            "parent_id": parent_id,
            "comment": str(raw["comment"]),
            "is_customer_notified": int(notify),
            "is_visible_on_front": int(bool(raw.get("is_visible_on_front"))),
            "created_at": state.now(),
        }
    ]


# --- invoice ----------------------------------------------------------------------------------


def invoice_order(state: SandboxState, order: dict[str, Any], body: dict[str, Any]) -> int:
    items = _coerce_items(body, "sales-data-invoice-item-creation-interface")
    msg = "The order does not allow an invoice to be created."
    with state.lock:
        if not machine.can_invoice(order):
            raise MagentoError(400, INVOICE_ERR + msg)
        wanted = _requested(items, order, machine.qty_to_invoice, INVOICE_ERR, msg)
        if not wanted:
            raise MagentoError(
                400, INVOICE_ERR + "The invoice can't be created without products. Add products and try again."
            )
        invoice = _doc_common(state, order, "invoice")
        invoice.update(_money_doc_fields(order))
        invoice.update(state=2, can_void_flag=0, email_sent=int(bool(body.get("notify"))), is_used_for_refund=0)
        if body.get("capture"):
            invoice["transaction_id"] = f"sandbox-capture-{invoice['entity_id']}"
        totals = {f"{p}{n}": ZERO for p in PREFIXES for n in ("subtotal", "tax_amount", "discount_amount")}
        amounts = _line_amounts(order, wanted, INVOICE_AMOUNTS, machine.qty_to_invoice)
        doc_items = []
        for item_id, qty in wanted.items():
            item = _item(order, item_id)
            line = _doc_line(state, "invoice_item", invoice["entity_id"], item, qty, amounts[item_id])
            for p in PREFIXES:
                row, tax, disc = (amounts[item_id][f"{p}{n}"] for n in ("row_total", "tax_amount", "discount_amount"))
                item[f"{p}row_invoiced"] = D(item.get(f"{p}row_invoiced")) + row
                item[f"{p}tax_invoiced"] = D(item.get(f"{p}tax_invoiced")) + tax
                item[f"{p}discount_invoiced"] = D(item.get(f"{p}discount_invoiced")) + disc
                totals[f"{p}subtotal"] += row
                totals[f"{p}tax_amount"] += tax
                totals[f"{p}discount_amount"] += disc
            item["qty_invoiced"] = D(item["qty_invoiced"]) + qty
            item["updated_at"] = state.now()
            doc_items.append(line)
        for p in PREFIXES:
            shipping = D(order.get(f"{p}shipping_amount")) - D(order.get(f"{p}shipping_invoiced"))
            shipping_tax = ZERO
            if shipping > 0:
                shipping_tax = D(order.get(f"{p}shipping_tax_amount"))
            tax = totals[f"{p}tax_amount"] + shipping_tax
            discount = totals[f"{p}discount_amount"]
            grand = totals[f"{p}subtotal"] + tax + shipping - discount
            invoice.update(
                {
                    f"{p}subtotal": totals[f"{p}subtotal"],
                    f"{p}subtotal_incl_tax": totals[f"{p}subtotal"] + totals[f"{p}tax_amount"],
                    f"{p}tax_amount": tax,
                    f"{p}shipping_amount": shipping,
                    f"{p}shipping_tax_amount": shipping_tax,
                    f"{p}shipping_incl_tax": shipping + shipping_tax,
                    f"{p}discount_amount": -discount,
                    f"{p}grand_total": grand,
                }
            )
            order[f"{p}subtotal_invoiced"] = D(order.get(f"{p}subtotal_invoiced")) + totals[f"{p}subtotal"]
            order[f"{p}tax_invoiced"] = D(order.get(f"{p}tax_invoiced")) + tax
            order[f"{p}shipping_invoiced"] = D(order.get(f"{p}shipping_invoiced")) + shipping
            order[f"{p}discount_invoiced"] = D(order.get(f"{p}discount_invoiced")) - discount
            order[f"{p}total_invoiced"] = D(order.get(f"{p}total_invoiced")) + grand
            order[f"{p}total_paid"] = D(order.get(f"{p}total_paid")) + grand
            order[f"{p}total_due"] = D(order.get(f"{p}grand_total")) - order[f"{p}total_paid"]
            payment = order["payment"]
            payment[f"{p}amount_paid"] = D(payment.get(f"{p}amount_paid")) + grand
            payment[f"{'base_' if p else ''}shipping_captured"] = (
                D(payment.get(f"{'base_' if p else ''}shipping_captured")) + shipping
            )
        invoice["total_qty"] = sum(wanted.values(), ZERO)
        invoice["items"] = doc_items
        invoice["comments"] = _comment(state, invoice["entity_id"], body.get("comment"), bool(body.get("notify")))
        machine.check_state(order, in_process=True)
        touch(state, order)
        state.invoices[invoice["entity_id"]] = invoice
        state.save()
        return int(invoice["entity_id"])


# --- shipment ---------------------------------------------------------------------------------


def ship_order(state: SandboxState, order: dict[str, Any], body: dict[str, Any]) -> int:
    items = _coerce_items(body, "sales-data-shipment-item-creation-interface")
    tracks = [coerce("sales-data-shipment-track-creation-interface", t, "tracks") for t in body.get("tracks") or []]
    for track in tracks:
        for name in ("track_number", "title", "carrier_code"):
            if not track.get(name):
                raise MagentoError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": name})
    msg = "The order does not allow a shipment to be created."
    with state.lock:
        if not machine.can_ship(order):
            raise MagentoError(400, SHIP_ERR + msg)
        wanted = _requested(items, order, machine.qty_to_ship, SHIP_ERR, msg)
        if not wanted:
            raise MagentoError(400, SHIP_ERR + "You can't create a shipment without products.")
        shipment = _doc_common(state, order, "shipment")
        shipment.update(
            customer_id=order.get("customer_id"),
            email_sent=int(bool(body.get("notify"))),
            shipment_status=None,
            packages=[],
            shipping_label=None,
        )
        shipment = {k: v for k, v in shipment.items() if v is not None}
        assignments = order.get("extension_attributes", {}).get("shipping_assignments") or []
        address = assignments[0].get("shipping", {}).get("address") if assignments else None
        if address and address.get("entity_id"):
            shipment["shipping_address_id"] = address["entity_id"]
        doc_items, total_weight = [], ZERO
        for item_id, qty in wanted.items():
            item = _item(order, item_id)
            weight = D(item.get("weight"))
            line = {
                "entity_id": state.next_id("shipment_item"),
                "parent_id": shipment["entity_id"],
                "order_item_id": item_id,
                "sku": item["sku"],
                "name": item.get("name"),
                "qty": qty,
                "price": item["price"],
                "row_total": money(D(item["price"]) * qty),
                "weight": weight,
            }
            if item.get("product_id") is not None:
                line["product_id"] = item["product_id"]
            total_weight += weight * qty
            item["qty_shipped"] = D(item["qty_shipped"]) + qty
            item["updated_at"] = state.now()
            doc_items.append(line)
        total_qty = sum(wanted.values(), ZERO)
        shipment.update(total_qty=total_qty, total_weight=total_weight, items=doc_items)
        shipment["tracks"] = [
            {
                "entity_id": state.next_id("shipment_track"),
                "parent_id": shipment["entity_id"],
                "order_id": order["entity_id"],
                "track_number": t["track_number"],
                "title": t["title"],
                "carrier_code": t["carrier_code"],
                "weight": total_weight,
                "qty": total_qty,
                "description": "",
                "created_at": shipment["created_at"],
                "updated_at": shipment["updated_at"],
            }
            for t in tracks
        ]
        shipment["comments"] = _comment(state, shipment["entity_id"], body.get("comment"), bool(body.get("notify")))
        machine.check_state(order, in_process=True)
        touch(state, order)
        state.shipments[shipment["entity_id"]] = shipment
        state.save()
        return int(shipment["entity_id"])


# --- routes -----------------------------------------------------------------------------------


@router.post("/V1/order/{order_id}/invoice")
async def post_invoice(order_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    return ok(invoice_order(ctx.state, get_order(ctx.state, order_id), body_object(ctx)))


@router.post("/V1/order/{order_id}/ship")
async def post_ship(order_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    return ok(ship_order(ctx.state, get_order(ctx.state, order_id), body_object(ctx)))


def _fields(definition: str) -> set[str]:
    return {k for k, v in properties(definition).items() if v.get("type") in ("string", "number", "integer")}


TABLES = {
    "invoices": "sales-data-invoice-interface",
    "shipments": "sales-data-shipment-interface",
    "creditmemos": "sales-data-creditmemo-interface",
}


def _search(table: str, request: Request, ctx: Ctx) -> Response:
    criteria = search.parse_search_criteria(
        request.query_params.multi_items(), max_page_size=ctx.state.config.max_page_size
    )
    rows = list(getattr(ctx.state, table).values())
    page, total = search.apply(rows, criteria, _fields(TABLES[table]))
    return ok({"items": copy.deepcopy(page), "search_criteria": criteria.echo(), "total_count": total})


def _read(table: str, doc_id: str, ctx: Ctx) -> Response:
    try:
        doc = getattr(ctx.state, table).get(int(doc_id))
    except ValueError:
        doc = None
    if doc is None:
        raise not_found()
    return ok(copy.deepcopy(doc))


@router.get("/V1/invoices")
async def search_invoices(request: Request, ctx: Ctx = Depends(rest_context)) -> Response:
    return _search("invoices", request, ctx)


@router.get("/V1/shipments")
async def search_shipments(request: Request, ctx: Ctx = Depends(rest_context)) -> Response:
    return _search("shipments", request, ctx)


@router.get("/V1/creditmemos")
async def search_creditmemos(request: Request, ctx: Ctx = Depends(rest_context)) -> Response:
    return _search("creditmemos", request, ctx)


@router.get("/V1/invoice/{doc_id}")
async def read_invoice(doc_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    return _read("invoices", doc_id, ctx)


@router.get("/V1/invoices/{doc_id}")
async def read_invoice_v2(doc_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    return _read("invoices", doc_id, ctx)


@router.get("/V1/shipment/{doc_id}")
async def read_shipment(doc_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    return _read("shipments", doc_id, ctx)


@router.get("/V1/creditmemo/{doc_id}")
async def read_creditmemo(doc_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    return _read("creditmemos", doc_id, ctx)
