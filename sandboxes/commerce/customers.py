"""Customers: search, create (with addresses), read and update; e-mail unique per website.

``POST /V1/customers`` is ``AccountManagement::createAccount``: the customer is saved first, then each address through
``AddressRepository::save`` (addresses in a country the website does not allow are skipped); an address the
validators refuse deletes the new customer again and answers the ``InputException`` (``addresses.py``).
``PUT /V1/customers/{customerId}`` is ``CustomerRepository::save``: given ``addresses`` replace the customer's
(each validated; here nothing is saved when one is refused).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from sandboxes.commerce import directory, search
from sandboxes.commerce.addresses import customer_address_errors, input_exception, region_text, resolve_region_id
from sandboxes.commerce.context import Ctx, body_object, rest_context
from sandboxes.commerce.errors import MagentoError, required
from sandboxes.commerce.schema_input import coerce, properties
from sandboxes.commerce.state import SandboxState
from sandboxes.commerce.wire import ok

router = APIRouter()
CUSTOMER_FIELDS = {
    k
    for k, v in properties("customer-data-customer-interface").items()
    if v.get("type") in ("string", "integer", "number")
} | {"entity_id"}
MSG_DUPLICATE_EMAIL = "A customer with the same email address already exists in an associated website."
MSG_NO_SUCH_ENTITY = "No such entity with %fieldName = %fieldValue"


def _store_of(state: SandboxState, store_id: int, fallback: dict[str, Any]) -> dict[str, Any]:
    found = state.config.store_by_id(store_id)
    return found[1] if found else fallback


def _address_record(state: SandboxState, raw: dict[str, Any], customer_id: int) -> dict[str, Any]:
    """The address as ``AddressRepository::save`` returns it: region resolved through the directory."""
    address = {k: v for k, v in raw.items() if k not in ("region", "region_id")}
    address.update(id=state.next_id("customer_address"), customer_id=customer_id)
    region_id = resolve_region_id(raw, state.config)
    region = directory.directory_of(state.config).regions.get(region_id) if region_id is not None else None
    if region is not None and region.country_id == raw.get("country_id"):
        address["region"] = {"region_code": region.code, "region": region.name, "region_id": region.id}
        address["region_id"] = region.id
    else:
        name, code = region_text(raw)
        address["region"] = {"region_code": name or code or "", "region": name or "", "region_id": 0}
        address["region_id"] = 0
    address["default_billing"] = bool(raw.get("default_billing"))
    address["default_shipping"] = bool(raw.get("default_shipping"))
    return address


def _validated_addresses(
    state: SandboxState, store: dict[str, Any], raw_addresses: list[dict[str, Any]], *, skip_disallowed: bool
) -> list[dict[str, Any]]:
    """The addresses to save, in order; raise the first refused address's ``InputException``."""
    allowed = set(directory.allowed_countries(state.config, store))
    kept = []
    for raw in raw_addresses:
        if skip_disallowed and raw.get("country_id") not in allowed:
            continue  # AccountManagement::isAddressAllowedForWebsite
        errors = customer_address_errors(raw, state.config, store)
        if errors:
            raise input_exception(errors)
        kept.append(raw)
    return kept


def _attach_addresses(state: SandboxState, customer: dict[str, Any], raw_addresses: list[dict[str, Any]]) -> None:
    addresses = [_address_record(state, raw, customer["id"]) for raw in raw_addresses]
    customer["addresses"] = addresses
    for flag in ("default_billing", "default_shipping"):
        chosen = next((a for a in addresses if a[flag]), None)
        if chosen is not None:
            customer[flag] = str(chosen["id"])
        else:
            customer.pop(flag, None)


def _email_taken(state: SandboxState, email: str, website_id: int, except_id: int | None = None) -> bool:
    return any(
        c["email"].casefold() == email.casefold() and int(c["website_id"]) == website_id and c["id"] != except_id
        for c in state.customers.values()
    )


def _customer_input(raw: Any) -> dict[str, Any]:
    """The request's customer, coerced by the official schema, with the fields Magento requires."""
    if not isinstance(raw, dict):
        raise required("customer")
    data = coerce("customer-data-customer-interface", raw, "customer")
    for name in ("email", "firstname", "lastname"):
        if not data.get(name):
            raise required(name)
    return data


def create_customer(state: SandboxState, store: dict[str, Any], raw: Any) -> dict[str, Any]:
    """``AccountManagement::createAccount``: the customer, then its addresses (see the module docstring)."""
    data = _customer_input(raw)
    website_id = int(data.get("website_id") or store["website_id"])
    email = str(data["email"]).strip()
    raw_addresses = data.pop("addresses", None) or []
    with state.lock:
        if _email_taken(state, email, website_id):
            raise MagentoError(400, MSG_DUPLICATE_EMAIL)
        now = state.now()
        customer = dict(data)
        customer.update(
            id=state.next_id("customer"), email=email, website_id=website_id, created_at=now, updated_at=now
        )
        customer.setdefault("group_id", 1)
        customer.setdefault("store_id", int(store["store_id"]))
        customer.setdefault("created_in", store.get("name", "Default Store View"))
        customer.setdefault("disable_auto_group_change", 0)
        customer_store = _store_of(state, int(customer["store_id"]), store)
        # The customer exists until an address is refused; then it is deleted again (its id stays used).
        kept = _validated_addresses(state, customer_store, raw_addresses, skip_disallowed=True)
        _attach_addresses(state, customer, kept)
        state.customers[customer["id"]] = customer
        state.save()
    return customer


def get_customer(state: SandboxState, raw_id: Any) -> dict[str, Any]:
    """The customer, or Magento's ``NoSuchEntityException::singleField('customerId', …)`` (404)."""
    try:
        customer = state.customers.get(int(str(raw_id)))
    except ValueError:
        customer = None
    if customer is None:
        raise MagentoError(404, MSG_NO_SUCH_ENTITY, {"fieldName": "customerId", "fieldValue": str(raw_id)})
    return customer


def update_customer(state: SandboxState, store: dict[str, Any], customer_id: str, raw: Any) -> dict[str, Any]:
    """``CustomerRepository::save`` of an existing customer (the path's id wins over the body's)."""
    current = get_customer(state, customer_id)
    data = _customer_input(raw)
    raw_addresses = data.pop("addresses", None)
    with state.lock:
        website_id = int(data.get("website_id") or current["website_id"])
        if _email_taken(state, str(data["email"]).strip(), website_id, except_id=current["id"]):
            raise MagentoError(400, MSG_DUPLICATE_EMAIL)
        customer_store = _store_of(state, int(data.get("store_id") or current["store_id"]), store)
        if raw_addresses is not None:
            kept = _validated_addresses(state, customer_store, raw_addresses, skip_disallowed=False)
        updated = {**current, **data, "id": current["id"], "website_id": website_id, "updated_at": state.now()}
        if raw_addresses is not None:
            _attach_addresses(state, updated, kept)
        state.customers[current["id"]] = updated
        state.save()
        return updated


@router.get("/V1/customers/search")
async def search_customers(request: Request, ctx: Ctx = Depends(rest_context)) -> Response:
    criteria = search.parse_search_criteria(
        request.query_params.multi_items(), max_page_size=ctx.state.config.max_page_size
    )

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


@router.get("/V1/customers/{customer_id}")
async def read_customer(customer_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    return ok(copy.deepcopy(get_customer(ctx.state, customer_id)))


@router.put("/V1/customers/{customer_id}")
async def put_customer(customer_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    body = body_object(ctx)
    if "customer" not in body:
        raise required("customer")
    return ok(copy.deepcopy(update_customer(ctx.state, ctx.store, customer_id, body["customer"])))
