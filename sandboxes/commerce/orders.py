"""Orders: ``POST /V1/orders`` (saved with the amounts given), reads, search, cancel, hold, comments, and the
order address repository (``PUT /V1/orders/{parent_id}``)."""

from __future__ import annotations

import copy
import secrets
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from sandboxes.commerce import machine, search
from sandboxes.commerce.addresses import check_order_address
from sandboxes.commerce.config import CommerceSandboxConfig
from sandboxes.commerce.context import Ctx, body_object, rest_context
from sandboxes.commerce.errors import MSG_STORE_NOT_FOUND, MagentoError, not_found, required
from sandboxes.commerce.schema_input import coerce, properties
from sandboxes.commerce.state import SandboxState
from sandboxes.commerce.wire import FOUR, D, money, ok

router = APIRouter()
ZERO = Decimal("0")
ORDER_ZERO_FIELDS = (
    "subtotal_invoiced",
    "tax_invoiced",
    "shipping_invoiced",
    "discount_invoiced",
    "total_invoiced",
    "total_paid",
    "subtotal_refunded",
    "tax_refunded",
    "shipping_refunded",
    "shipping_tax_refunded",
    "discount_refunded",
    "total_refunded",
    "total_offline_refunded",
    "total_online_refunded",
    "subtotal_canceled",
    "tax_canceled",
    "shipping_canceled",
    "discount_canceled",
    "total_canceled",
    "adjustment_positive",
    "adjustment_negative",
)
ITEM_ZERO_FIELDS = (
    "qty_invoiced",
    "qty_shipped",
    "qty_refunded",
    "qty_canceled",
    "qty_backordered",
    "qty_returned",
    "amount_refunded",
    "tax_invoiced",
    "tax_refunded",
    "tax_canceled",
    "discount_invoiced",
    "discount_refunded",
    "row_invoiced",
)
# Counters of what later documents did, kept in both currencies (NULL in a new Magento order: 0 here).
ITEM_BASE_COUNTERS = (
    "amount_refunded",
    "tax_invoiced",
    "tax_refunded",
    "discount_invoiced",
    "discount_refunded",
    "row_invoiced",
)
MSG_ADDRESS_NOT_SAVED = "The order address couldn't be saved."
# sales_order's rate columns are decimal(20,4): Magento keeps 4 places of the rates it is given.
ORDER_RATES = ("base_to_global_rate", "base_to_order_rate", "store_to_base_rate", "store_to_order_rate")


def _zero_fields(record: dict[str, Any], names: tuple[str, ...], *, with_base: bool = True) -> None:
    for name in names:
        record.setdefault(name, ZERO)
        if with_base:
            record.setdefault(f"base_{name}", ZERO)


def _new_address(state: SandboxState, raw: dict[str, Any], order_id: int, kind: str) -> dict[str, Any]:
    """An order address as ``Order::setBillingAddress``/``setShippingAddress`` stores it (type from its place)."""
    address = dict(raw)
    address["entity_id"] = state.next_id("order_address")
    address["parent_id"] = order_id
    address["address_type"] = kind
    return address


def _check_addresses(config: CommerceSandboxConfig, entity: dict[str, Any]) -> None:
    """Run the order address validator on the addresses the order will save (billing first), before any id is
    taken: Magento saves them in the order's transaction, so a refused address leaves no order."""
    found = [("billing", entity.get("billing_address"))]
    for assignment in (entity.get("extension_attributes") or {}).get("shipping_assignments") or []:
        found.append(("shipping", (assignment.get("shipping") or {}).get("address")))
    for kind, raw in found:
        if isinstance(raw, dict):
            check_order_address({**raw, "parent_id": 0, "address_type": kind}, config)


# varchar columns of sales_order / sales_order_payment (Magento_Sales db_schema.xml) a REST client can overflow.
ORDER_COLUMN_LENGTHS = {"customer_taxvat": 32, "ext_order_id": 32, "customer_email": 128, "increment_id": 50}
PAYMENT_COLUMN_LENGTHS = {"po_number": 32}
MSG_INTERNAL = "Internal Error. Details are available in Magento log file. Report ID: webapi-%1"


def _check_lengths(entity: dict[str, Any], payment: dict[str, Any]) -> None:
    """MySQL in strict mode refuses a value longer than its varchar column (SQLSTATE 22001); Magento's web API
    answers that as an internal error (500), the order not saved."""
    for record, lengths in ((entity, ORDER_COLUMN_LENGTHS), (payment, PAYMENT_COLUMN_LENGTHS)):
        for name, limit in lengths.items():
            value = record.get(name)
            if isinstance(value, str) and len(value) > limit:
                raise MagentoError(500, MSG_INTERNAL, [secrets.token_hex(6)])


def create_order(state: SandboxState, store: dict[str, Any], raw_entity: Any) -> dict[str, Any]:
    """Validate and save an order like ``OrderRepository::save`` (no price, currency or stock recalculation).

    Currency codes, rates and every ``base_*`` amount are kept as given (rates to 4 places, as sales_order
    stores them); nothing is converted or defaulted from the store's base currency. Addresses go through
    Magento's order address validator (``addresses.check_order_address``).
    """
    if not isinstance(raw_entity, dict):
        raise required("entity")
    entity = coerce("sales-data-order-interface", raw_entity)
    for name in ("base_grand_total", "customer_email", "grand_total"):
        if entity.get(name) in (None, ""):
            raise required(name)
    if not entity.get("items"):
        raise required("items")
    payment = entity.get("payment")
    if not isinstance(payment, dict) or not payment.get("method"):
        raise required("payment.method")
    for item in entity["items"]:
        if not item.get("sku"):
            raise required("sku")
        if D(item.get("qty_ordered")) <= 0:
            raise required("qty_ordered")
    _check_lengths(entity, payment)
    store_id = int(entity.get("store_id") or store["store_id"])
    found = state.config.store_by_id(store_id)
    if found is None:
        raise MagentoError(400, MSG_STORE_NOT_FOUND)
    store_code, order_store = found
    _check_addresses(state.config, entity)
    now = state.now()
    with state.lock:
        increment_id = entity.get("increment_id") or state.next_increment_id("order", store_id)
        if any(o["increment_id"] == increment_id and int(o["store_id"]) == store_id for o in state.orders.values()):
            raise MagentoError(400, "Unique constraint violation found")
        order_id = state.next_id("order")
        order: dict[str, Any] = dict(entity)
        order.update(
            entity_id=order_id,
            increment_id=str(increment_id),
            store_id=store_id,
            created_at=entity.get("created_at") or now,
            updated_at=now,
        )
        order.setdefault("state", "new")
        order.setdefault("status", machine.DEFAULT_STATUS.get(order["state"], order["state"]))
        order.setdefault("protect_code", secrets.token_hex(3))
        order.setdefault("customer_is_guest", 0 if entity.get("customer_id") else 1)
        order.setdefault("store_name", order_store.get("name", store_code))
        for name in ORDER_RATES:
            if order.get(name) is not None:
                order[name] = D(order[name]).quantize(FOUR)
        order.setdefault("is_virtual", 0)
        order.setdefault("email_sent", 0)
        items = []
        for raw_item in entity["items"]:
            item = dict(raw_item)
            qty = D(item["qty_ordered"])
            price = D(item.get("price"))
            product = state.products.get(item["sku"])
            item.update(
                item_id=state.next_id("order_item"),
                order_id=order_id,
                store_id=store_id,
                created_at=now,
                updated_at=now,
                qty_ordered=qty,
                price=price,
            )
            if product is not None:
                item.setdefault("product_id", product["id"])
            item.setdefault("name", product["name"] if product else item["sku"])
            item.setdefault("product_type", "simple")
            item.setdefault("original_price", price)
            item.setdefault("row_total", money(price * qty))
            item.setdefault("tax_amount", ZERO)
            item.setdefault("tax_percent", ZERO)
            item.setdefault("discount_amount", ZERO)
            item.setdefault("price_incl_tax", money(price + D(item["tax_amount"]) / qty))
            item.setdefault("row_total_incl_tax", D(item["row_total"]) + D(item["tax_amount"]))
            item.setdefault("is_virtual", 0)
            item.setdefault("is_qty_decimal", 0)
            item.setdefault("no_discount", 0)
            item.setdefault("free_shipping", 0)
            _zero_fields(item, ITEM_ZERO_FIELDS, with_base=False)
            _zero_fields(item, ITEM_BASE_COUNTERS)
            items.append(item)
        order["items"] = items
        order.setdefault("subtotal", sum((D(i["row_total"]) for i in items), ZERO))
        for name in ("tax_amount", "shipping_amount", "shipping_tax_amount", "discount_amount"):
            order.setdefault(name, ZERO)
        order.setdefault("shipping_incl_tax", D(order["shipping_amount"]) + D(order["shipping_tax_amount"]))
        order.setdefault("subtotal_incl_tax", order["subtotal"] + sum((D(i["tax_amount"]) for i in items), ZERO))
        order.setdefault("total_qty_ordered", sum((D(i["qty_ordered"]) for i in items), ZERO))
        order.setdefault("total_item_count", len(items))
        _zero_fields(order, ORDER_ZERO_FIELDS)
        order["total_due"] = D(order["grand_total"]) - D(order["total_paid"])
        order["base_total_due"] = D(order["base_grand_total"]) - D(order["base_total_paid"])
        if isinstance(entity.get("billing_address"), dict):
            order["billing_address"] = _new_address(state, entity["billing_address"], order_id, "billing")
            order["billing_address_id"] = order["billing_address"]["entity_id"]
        pay = dict(payment)
        pay.update(entity_id=state.next_id("order_payment"), parent_id=order_id)
        pay.setdefault("amount_ordered", D(order["grand_total"]))
        pay.setdefault("base_amount_ordered", D(order["base_grand_total"]))
        pay.setdefault("shipping_amount", D(order["shipping_amount"]))
        pay.setdefault("base_shipping_amount", D(order.get("base_shipping_amount")))
        pay.setdefault("account_status", "")
        pay.setdefault("cc_last4", "")
        pay.setdefault("additional_information", [])
        order["payment"] = pay
        ext = dict(entity.get("extension_attributes") or {})
        assignments = []
        for raw_assignment in ext.get("shipping_assignments") or []:
            assignment = {k: v for k, v in raw_assignment.items() if k != "items"}
            shipping = dict(assignment.get("shipping") or {})
            if isinstance(shipping.get("address"), dict):
                shipping["address"] = _new_address(state, shipping["address"], order_id, "shipping")
            assignment["shipping"] = shipping
            assignments.append(assignment)
        ext["shipping_assignments"] = assignments
        order["extension_attributes"] = ext
        histories = []
        for raw_history in entity.get("status_histories") or []:
            histories.append(_new_history(state, order, raw_history, now))
        order["status_histories"] = histories
        state.orders[order_id] = order
        state.save()
    return order


def _new_history(state: SandboxState, order: dict[str, Any], raw: dict[str, Any], now: str) -> dict[str, Any]:
    history = dict(raw)
    history.update(entity_id=state.next_id("status_history"), parent_id=order["entity_id"], entity_name="order")
    history.setdefault("created_at", now)
    history.setdefault("comment", "")
    history["is_customer_notified"] = int(bool(history.get("is_customer_notified")))
    history["is_visible_on_front"] = int(bool(history.get("is_visible_on_front")))
    history.setdefault("status", order["status"])
    return history


def render_order(order: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(order)
    out.pop("_sandbox", None)
    ext = out.setdefault("extension_attributes", {})
    for assignment in ext.get("shipping_assignments", []):
        assignment["items"] = copy.deepcopy(out["items"])
        assignment.setdefault("stock_id", 1)
        shipping = assignment.setdefault("shipping", {})
        shipping["total"] = {
            "shipping_amount": order.get("shipping_amount", ZERO),
            "base_shipping_amount": order.get("base_shipping_amount", ZERO),
            "shipping_incl_tax": order.get("shipping_incl_tax", ZERO),
            "base_shipping_incl_tax": order.get("base_shipping_incl_tax", ZERO),
            "shipping_tax_amount": order.get("shipping_tax_amount", ZERO),
            "base_shipping_tax_amount": order.get("base_shipping_tax_amount", ZERO),
            "shipping_invoiced": order.get("shipping_invoiced", ZERO),
            "shipping_refunded": order.get("shipping_refunded", ZERO),
            "shipping_canceled": order.get("shipping_canceled", ZERO),
        }
    return out


def get_order(state: SandboxState, raw_id: Any) -> dict[str, Any]:
    try:
        order_id = int(str(raw_id))
    except ValueError as exc:
        raise not_found() from exc
    order = state.orders.get(order_id)
    if order is None:
        raise not_found()
    return order


def touch(state: SandboxState, order: dict[str, Any]) -> None:
    order["updated_at"] = state.now()


def cancel_order(state: SandboxState, order: dict[str, Any]) -> bool:
    """Order::registerCancellation: False when the order cannot be cancelled."""
    with state.lock:
        if not machine.can_cancel(order):
            return False
        new_state = "canceled"
        for item in order["items"]:
            if new_state != "processing" and machine.qty_to_refund(item) > 0:
                new_state = "processing" if machine.qty_to_ship(item) > 0 else "complete"
            item["qty_canceled"] = D(item.get("qty_canceled")) + machine.qty_to_cancel(item)
            item["updated_at"] = state.now()
        for prefix in ("", "base_"):
            order[f"{prefix}subtotal_canceled"] = D(order.get(f"{prefix}subtotal")) - D(
                order.get(f"{prefix}subtotal_invoiced")
            )
            order[f"{prefix}tax_canceled"] = D(order.get(f"{prefix}tax_amount")) - D(order.get(f"{prefix}tax_invoiced"))
            order[f"{prefix}shipping_canceled"] = D(order.get(f"{prefix}shipping_amount")) - D(
                order.get(f"{prefix}shipping_invoiced")
            )
            order[f"{prefix}discount_canceled"] = abs(D(order.get(f"{prefix}discount_amount"))) - abs(
                D(order.get(f"{prefix}discount_invoiced"))
            )
            order[f"{prefix}total_canceled"] = D(order.get(f"{prefix}grand_total")) - D(
                order.get(f"{prefix}total_paid")
            )
        machine.set_state(order, new_state)
        touch(state, order)
        state.save()
    return True


def hold_order(state: SandboxState, order: dict[str, Any]) -> None:
    with state.lock:
        if not machine.can_hold(order):
            raise MagentoError(400, "A hold action is not available.")
        order["hold_before_state"] = order["state"]
        order["hold_before_status"] = order["status"]
        machine.set_state(order, "holded")
        touch(state, order)
        state.save()


def unhold_order(state: SandboxState, order: dict[str, Any]) -> None:
    with state.lock:
        if order["state"] != "holded":
            raise MagentoError(400, "You cannot remove the hold.")
        machine.set_state(order, order.pop("hold_before_state", "new") or "new", order.pop("hold_before_status", None))
        touch(state, order)
        state.save()


def add_comment(state: SandboxState, order: dict[str, Any], raw: Any) -> None:
    if not isinstance(raw, dict):
        raise required("statusHistory")
    history = coerce("sales-data-order-status-history-interface", raw, "statusHistory")
    if history.get("comment") is None:
        raise required("comment")
    with state.lock:
        if history.get("status"):
            order["status"] = history["status"]
        entry = _new_history(state, order, history, state.now())
        order.setdefault("status_histories", []).insert(0, entry)
        touch(state, order)
        state.save()


def order_addresses(order: dict[str, Any]) -> list[dict[str, Any]]:
    """The order's billing address and the addresses of its shipping assignments (stored objects)."""
    found = [order["billing_address"]] if isinstance(order.get("billing_address"), dict) else []
    for assignment in (order.get("extension_attributes") or {}).get("shipping_assignments") or []:
        address = (assignment.get("shipping") or {}).get("address")
        if isinstance(address, dict):
            found.append(address)
    return found


def save_address(state: SandboxState, parent_id: str, raw: Any) -> dict[str, Any]:
    """``OrderAddressRepositoryInterface::save``: update one of the order's addresses by ``entity_id``.

    As Magento's REST layer does, the path's ``parent_id`` is written into the body's entity; an address that is not
    the order's is "not found". The body is saved as sent (fields it leaves out keep their values), so the order
    address validator checks the body: a refused address is Magento's ``CouldNotSaveException``.
    """
    order = get_order(state, parent_id)
    if not isinstance(raw, dict):
        raise required("entity")
    address = coerce("sales-data-order-address-interface", raw, "entity")
    address["parent_id"] = order["entity_id"]
    try:
        check_order_address(address, state.config)
    except MagentoError as exc:
        raise MagentoError(400, MSG_ADDRESS_NOT_SAVED) from exc
    with state.lock:
        target = next((a for a in order_addresses(order) if a.get("entity_id") == address.get("entity_id")), None)
        if target is None:
            raise MagentoError(404, "The entity that was requested doesn't exist. Verify the entity and try again.")
        target.update({k: v for k, v in address.items() if k != "address_type"})
        touch(state, order)
        state.save()
        return copy.deepcopy(target)


ORDER_FIELDS = {
    k
    for k, v in properties("sales-data-order-interface").items()
    if v.get("type") in ("string", "number", "integer", "boolean")
}


# --- routes -----------------------------------------------------------------------------------


@router.post("/V1/orders")
async def post_order(ctx: Ctx = Depends(rest_context)) -> Response:
    body = body_object(ctx)
    if "entity" not in body:
        raise required("entity")
    return ok(render_order(create_order(ctx.state, ctx.store, body["entity"])))


@router.get("/V1/orders")
async def search_orders(request: Request, ctx: Ctx = Depends(rest_context)) -> Response:
    criteria = search.parse_search_criteria(
        request.query_params.multi_items(), max_page_size=ctx.state.config.max_page_size
    )
    page, total = search.apply(list(ctx.state.orders.values()), criteria, ORDER_FIELDS)
    return ok({"items": [render_order(o) for o in page], "search_criteria": criteria.echo(), "total_count": total})


@router.get("/V1/orders/{order_id}")
async def read_order(order_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    return ok(render_order(get_order(ctx.state, order_id)))


@router.put("/V1/orders/{parent_id}")
async def put_order_address(parent_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    return ok(save_address(ctx.state, parent_id, body_object(ctx).get("entity")))


@router.post("/V1/orders/{order_id}/cancel")
async def post_cancel(order_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    return ok(cancel_order(ctx.state, get_order(ctx.state, order_id)))


@router.post("/V1/orders/{order_id}/hold")
async def post_hold(order_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    hold_order(ctx.state, get_order(ctx.state, order_id))
    return ok(True)


@router.post("/V1/orders/{order_id}/unhold")
async def post_unhold(order_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    unhold_order(ctx.state, get_order(ctx.state, order_id))
    return ok(True)


@router.post("/V1/orders/{order_id}/comments")
async def post_comment(order_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    order = get_order(ctx.state, order_id)
    add_comment(ctx.state, order, body_object(ctx).get("statusHistory"))
    return ok(True)


@router.get("/V1/orders/{order_id}/comments")
async def read_comments(order_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    order = get_order(ctx.state, order_id)
    items = copy.deepcopy(order.get("status_histories", []))
    return ok(
        {
            "items": items,
            "search_criteria": {
                "filter_groups": [
                    {"filters": [{"field": "parent_id", "value": str(order["entity_id"]), "condition_type": "eq"}]}
                ]
            },
            "total_count": len(items),
        }
    )
