"""Customers: search and create (email unique per website)."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from sandboxes.commerce import search
from sandboxes.commerce.context import Ctx, body_object, rest_context
from sandboxes.commerce.errors import MagentoError, required
from sandboxes.commerce.schema_input import coerce, properties
from sandboxes.commerce.state import SandboxState
from sandboxes.commerce.wire import ok

router = APIRouter()
CUSTOMER_FIELDS = {k for k, v in properties("customer-data-customer-interface").items()
                   if v.get("type") in ("string", "integer", "number")} | {"entity_id"}
MSG_DUPLICATE_EMAIL = "A customer with the same email address already exists in an associated website."


def create_customer(state: SandboxState, store: dict[str, Any], raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise required("customer")
    data = coerce("customer-data-customer-interface", raw, "customer")
    for name in ("email", "firstname", "lastname"):
        if not data.get(name):
            raise required(name)
    website_id = int(data.get("website_id") or store["website_id"])
    email = str(data["email"]).strip()
    with state.lock:
        if any(c["email"].casefold() == email.casefold() and int(c["website_id"]) == website_id
               for c in state.customers.values()):
            raise MagentoError(400, MSG_DUPLICATE_EMAIL)
        now = state.now()
        customer = dict(data)
        customer.update(id=state.next_id("customer"), email=email, website_id=website_id, created_at=now,
                        updated_at=now)
        customer.setdefault("group_id", 1)
        customer.setdefault("store_id", int(store["store_id"]))
        customer.setdefault("created_in", store.get("name", "Default Store View"))
        customer.setdefault("disable_auto_group_change", 0)
        customer.setdefault("addresses", [])
        state.customers[customer["id"]] = customer
        state.save()
    return customer


@router.get("/V1/customers/search")
async def search_customers(request: Request, ctx: Ctx = Depends(rest_context)) -> Response:
    criteria = search.parse_search_criteria(request.query_params.multi_items(),
                                            max_page_size=ctx.state.config.max_page_size)

    def getter(customer: dict[str, Any], name: str) -> Any:
        return customer["id"] if name == "entity_id" else customer.get(name)

    page, total = search.apply(list(ctx.state.customers.values()), criteria, CUSTOMER_FIELDS, getter)
    return ok({"items": copy.deepcopy(page), "search_criteria": criteria.echo(), "total_count": total})


@router.post("/V1/customers")
async def post_customer(ctx: Ctx = Depends(rest_context)) -> Response:
    body = body_object(ctx)
    if "customer" not in body:
        raise required("customer")
    return ok(copy.deepcopy(create_customer(ctx.state, ctx.store, body["customer"])))
