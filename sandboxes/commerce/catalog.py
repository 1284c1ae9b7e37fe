"""Catalog, inventory (MSI source items, salable quantity, legacy stock items) and stores.

Salable quantity is the ``default`` source's quantity when in stock: ``POST /V1/orders`` places no
reservations, so nothing else reduces it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from sandboxes.commerce import search
from sandboxes.commerce.context import Ctx, body_object, rest_context
from sandboxes.commerce.errors import MSG_PRODUCT_NOT_FOUND, MagentoError, not_found, required
from sandboxes.commerce.schema_input import properties
from sandboxes.commerce.state import SandboxState
from sandboxes.commerce.wire import D, ok

router = APIRouter()

SOURCE_CODE = "default"
DEFAULT_STOCK_ID = 1
PRODUCT_SEARCH_FIELDS = {
    "sku",
    "name",
    "price",
    "status",
    "type_id",
    "visibility",
    "entity_id",
    "id",
    "created_at",
    "updated_at",
    "attribute_set_id",
    "weight",
}


# --- logic ------------------------------------------------------------------------------------


def upsert_product(state: SandboxState, data: dict[str, Any]) -> dict[str, Any]:
    """Create or update a simple product and its ``default`` source item (admin seeding)."""
    sku = str(data.get("sku") or "").strip()
    if not sku:
        raise required("sku")
    now = state.now()
    with state.lock:
        product = state.products.get(sku)
        if product is None:
            product = {
                "id": state.next_id("product"),
                "sku": sku,
                "name": sku,
                "attribute_set_id": 4,
                "price": Decimal("0.00"),
                "status": 1,
                "visibility": 4,
                "type_id": "simple",
                "created_at": now,
                "weight": Decimal("1.00"),
            }
            state.products[sku] = product
        for key in ("name", "type_id"):
            if data.get(key) is not None:
                product[key] = str(data[key])
        if data.get("price") is not None:
            product["price"] = D(data["price"])
        if data.get("status") is not None:
            product["status"] = int(data["status"])
        product["updated_at"] = now
        if data.get("qty") is not None or sku not in state.source_items:
            qty = D(data.get("qty"))
            state.source_items[sku] = {
                "sku": sku,
                "source_code": SOURCE_CODE,
                "quantity": qty,
                "status": 1 if qty > 0 else 0,
            }
    return product


def get_product(state: SandboxState, sku: str) -> dict[str, Any]:
    product = state.products.get(sku)
    if product is None:
        raise not_found(MSG_PRODUCT_NOT_FOUND)
    return product


def render_stock_item(state: SandboxState, product: dict[str, Any]) -> dict[str, Any]:
    source = state.source_items.get(product["sku"], {"quantity": Decimal("0"), "status": 0})
    return {
        "item_id": product["id"],
        "product_id": product["id"],
        "stock_id": DEFAULT_STOCK_ID,
        "qty": source["quantity"],
        "is_in_stock": bool(source["status"]),
        "is_qty_decimal": False,
        "show_default_notification_message": False,
        "use_config_min_qty": True,
        "min_qty": Decimal("0"),
        "use_config_min_sale_qty": 1,
        "min_sale_qty": Decimal("1"),
        "use_config_max_sale_qty": True,
        "max_sale_qty": Decimal("10000"),
        "use_config_backorders": True,
        "backorders": 0,
        "use_config_notify_stock_qty": True,
        "notify_stock_qty": Decimal("1"),
        "use_config_qty_increments": True,
        "qty_increments": Decimal("0"),
        "use_config_enable_qty_inc": True,
        "enable_qty_increments": False,
        "use_config_manage_stock": True,
        "manage_stock": True,
        "low_stock_date": "",
        "is_decimal_divided": False,
        "stock_status_changed_auto": 0,
    }


def render_product(state: SandboxState, product: dict[str, Any]) -> dict[str, Any]:
    out = dict(product)
    out["extension_attributes"] = {"website_ids": [1], "stock_item": render_stock_item(state, product)}
    out["product_links"] = []
    out["options"] = []
    out["media_gallery_entries"] = []
    out["tier_prices"] = []
    out["custom_attributes"] = []
    return out


def salable_qty(state: SandboxState, sku: str) -> Decimal:
    source = state.source_items.get(sku)
    if source is None or not source["status"]:
        return Decimal("0")
    return max(source["quantity"], Decimal("0"))


def set_source_quantity(state: SandboxState, sku: str, quantity: Decimal, status: int | None = None) -> None:
    with state.lock:
        current = state.source_items.get(sku) or {"sku": sku, "source_code": SOURCE_CODE}
        current["quantity"] = quantity
        current["status"] = int(status) if status is not None else (1 if quantity > 0 else 0)
        state.source_items[sku] = current


def return_to_stock(state: SandboxState, sku: str, qty: Decimal) -> None:
    source = state.source_items.get(sku)
    if source is None:
        return
    set_source_quantity(state, sku, source["quantity"] + qty, 1 if source["quantity"] + qty > 0 else 0)


def _search_result(items: list[dict[str, Any]], criteria: search.SearchCriteria, total: int) -> dict[str, Any]:
    return {"items": items, "search_criteria": criteria.echo(), "total_count": total}


def _criteria(ctx: Ctx, request_items: list[tuple[str, str]]) -> search.SearchCriteria:
    return search.parse_search_criteria(request_items, max_page_size=ctx.state.config.max_page_size)


# --- routes -----------------------------------------------------------------------------------


@router.get("/V1/products")
async def search_products(request: Request, ctx: Ctx = Depends(rest_context)) -> Response:
    criteria = _criteria(ctx, request.query_params.multi_items())

    def getter(product: dict[str, Any], name: str) -> Any:
        return product["id"] if name in ("entity_id", "id") else product.get(name)

    page, total = search.apply(list(ctx.state.products.values()), criteria, PRODUCT_SEARCH_FIELDS, getter)
    return ok(_search_result([render_product(ctx.state, p) for p in page], criteria, total))


@router.get("/V1/products/{sku}")
async def read_product(sku: str, ctx: Ctx = Depends(rest_context)) -> Response:
    return ok(render_product(ctx.state, get_product(ctx.state, sku)))


@router.get("/V1/inventory/get-product-salable-quantity/{sku}/{stock_id}")
async def read_salable_qty(sku: str, stock_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    if stock_id != str(DEFAULT_STOCK_ID):
        raise not_found('Stock with id "%value" does not exist.', {"value": stock_id})
    get_product(ctx.state, sku)
    return ok(salable_qty(ctx.state, sku))


@router.get("/V1/inventory/source-items")
async def search_source_items(request: Request, ctx: Ctx = Depends(rest_context)) -> Response:
    criteria = _criteria(ctx, request.query_params.multi_items())
    page, total = search.apply(
        list(ctx.state.source_items.values()), criteria, ("sku", "source_code", "quantity", "status")
    )
    return ok(_search_result([dict(s) for s in page], criteria, total))


@router.post("/V1/inventory/source-items")
async def save_source_items(ctx: Ctx = Depends(rest_context)) -> Response:
    body = body_object(ctx)
    if "sourceItems" not in body:
        raise required("sourceItems")
    items = body["sourceItems"]
    if not isinstance(items, list) or not items:
        raise MagentoError(400, "Input data is empty")
    parsed = []
    for raw in items:
        if not isinstance(raw, dict):
            raise MagentoError(400, "Could not save Source Item")
        unknown = set(raw) - set(properties("inventory-api-data-source-item-interface"))
        if unknown:
            raise MagentoError(
                400,
                'Property "%1" does not have accessor method "%2" in class "%3".',
                [sorted(unknown)[0], "get", "Magento\\InventoryApi\\Api\\Data\\SourceItemInterface"],
            )
        sku = str(raw.get("sku") or "")
        if sku not in ctx.state.products:
            raise MagentoError(400, "Could not save Source Item")
        if raw.get("source_code", SOURCE_CODE) != SOURCE_CODE:
            raise MagentoError(400, 'Source with code "%value" does not exist.', {"value": str(raw.get("source_code"))})
        if raw.get("quantity") is None:
            raise required("quantity")
        status = raw.get("status")
        parsed.append((sku, D(raw["quantity"]), None if status is None else int(status)))
    with ctx.state.lock:
        for sku, qty, status in parsed:
            set_source_quantity(ctx.state, sku, qty, status)
        ctx.state.save()
    return ok([])


@router.get("/V1/stockItems/{sku}")
async def read_stock_item(sku: str, ctx: Ctx = Depends(rest_context)) -> Response:
    return ok(render_stock_item(ctx.state, get_product(ctx.state, sku)))


@router.put("/V1/products/{sku}/stockItems/{item_id}")
async def update_stock_item(sku: str, item_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    product = get_product(ctx.state, sku)
    body = body_object(ctx)
    stock_item = body.get("stockItem")
    if not isinstance(stock_item, dict):
        raise required("stockItem")
    with ctx.state.lock:
        current = ctx.state.source_items.get(sku, {"quantity": Decimal("0"), "status": 0})
        qty = D(stock_item["qty"]) if stock_item.get("qty") is not None else current["quantity"]
        in_stock = stock_item.get("is_in_stock")
        status = (1 if qty > 0 else 0) if in_stock is None else int(bool(in_stock))
        set_source_quantity(ctx.state, sku, qty, status)
        ctx.state.save()
    return ok(int(product["id"]))


@router.get("/V1/store/storeViews")
async def read_store_views(ctx: Ctx = Depends(rest_context)) -> Response:
    views = [{"id": 0, "code": "admin", "name": "Admin", "website_id": 0, "store_group_id": 0, "is_active": 1}]
    for code, store in ctx.state.config.stores.items():
        views.append(
            {
                "id": int(store["store_id"]),
                "code": code,
                "name": store.get("name", code),
                "website_id": int(store["website_id"]),
                "store_group_id": int(store.get("store_group_id", store["website_id"])),
                "is_active": 1,
            }
        )
    return ok(views)


@router.get("/V1/store/storeConfigs")
async def read_store_configs(ctx: Ctx = Depends(rest_context)) -> Response:
    out = []
    for code, store in ctx.state.config.stores.items():
        base_url = f"http://localhost/{code}/"
        out.append(
            {
                "id": int(store["store_id"]),
                "code": code,
                "website_id": int(store["website_id"]),
                "locale": store.get("locale", "en_US"),
                "base_currency_code": store["base_currency"],
                "default_display_currency_code": store.get("display_currency", store["base_currency"]),
                "timezone": store.get("timezone", "UTC"),
                "weight_unit": store.get("weight_unit", "lbs"),
                "base_url": base_url,
                "base_link_url": base_url,
                "base_static_url": base_url + "static/",
                "base_media_url": base_url + "media/",
                "secure_base_url": base_url,
                "secure_base_link_url": base_url,
                "secure_base_static_url": base_url + "static/",
                "secure_base_media_url": base_url + "media/",
            }
        )
    return ok(out)
