"""Helpers of the Commerce sandbox tests: searchCriteria builder, order bodies, a small client."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import requests

from sandboxes.swagger import validate as _validate

MODEL = "commerce/adobe-commerce-admin-openapi-2.4.9.json"
_counter = itertools.count(1)
# A complete US address (no region): the base of the address validation tests.
ADDRESS = {
    "firstname": "Ana",
    "lastname": "Buyer",
    "street": ["1 Main St"],
    "city": "Seattle",
    "postcode": "98101",
    "country_id": "US",
    "telephone": "555-0100",
    "email": "ana@example.com",
}


def validate(definition: str, instance: Any) -> None:
    _validate(MODEL, definition, instance)


def sc(
    *groups: list[tuple[str, Any, str]],
    page_size: int | None = None,
    current_page: int | None = None,
    sort: list[tuple[str, str]] | None = None,
) -> dict[str, str]:
    """Build PHP-style searchCriteria query params from filter groups of (field, value, condition)."""
    params: dict[str, str] = {}
    for g, group in enumerate(groups):
        for f, (field, value, cond) in enumerate(group):
            prefix = f"searchCriteria[filter_groups][{g}][filters][{f}]"
            params[f"{prefix}[field]"] = field
            params[f"{prefix}[value]"] = str(value)
            params[f"{prefix}[condition_type]"] = cond
    for i, (field, direction) in enumerate(sort or []):
        params[f"searchCriteria[sortOrders][{i}][field]"] = field
        params[f"searchCriteria[sortOrders][{i}][direction]"] = direction
    if page_size is not None:
        params["searchCriteria[pageSize]"] = str(page_size)
    if current_page is not None:
        params["searchCriteria[currentPage]"] = str(current_page)
    if not params:
        params["searchCriteria"] = ""
    return params


def order_entity(**overrides: Any) -> dict[str, Any]:
    """A valid ``sales-data-order-interface`` create body: 2 × SKU-1 at 10.00 + 1 × SKU-2 at 5.25."""
    n = next(_counter)
    address = {
        "firstname": "Test",
        "lastname": "Buyer",
        "street": ["1 Main St"],
        "city": "Seattle",
        "postcode": "98101",
        "country_id": "US",
        "telephone": "555-0100",
        "email": "buyer@example.com",
        "region": "Washington",
        "region_code": "WA",
    }
    entity: dict[str, Any] = {
        "ext_order_id": f"111-0000000-{n:07d}",
        "customer_email": "buyer@example.com",
        "customer_firstname": "Test",
        "customer_lastname": "Buyer",
        "customer_is_guest": 1,
        "base_currency_code": "USD",
        "order_currency_code": "USD",
        "subtotal": Decimal("25.25"),
        "base_subtotal": Decimal("25.25"),
        "tax_amount": Decimal("2.02"),
        "base_tax_amount": Decimal("2.02"),
        "shipping_amount": Decimal("4.99"),
        "base_shipping_amount": Decimal("4.99"),
        "grand_total": Decimal("32.26"),
        "base_grand_total": Decimal("32.26"),
        "shipping_description": "Amazon - Standard",
        "items": [
            {
                "sku": "SKU-1",
                "name": "Widget",
                "qty_ordered": 2,
                "price": Decimal("10.00"),
                "base_price": Decimal("10.00"),
                "row_total": Decimal("20.00"),
                "base_row_total": Decimal("20.00"),
                "tax_amount": Decimal("1.60"),
                "base_tax_amount": Decimal("1.60"),
                "product_type": "simple",
                "ext_order_item_id": f"AMZ-ITEM-{n}-1",
            },
            {
                "sku": "SKU-2",
                "name": "Gadget",
                "qty_ordered": 1,
                "price": Decimal("5.25"),
                "base_price": Decimal("5.25"),
                "row_total": Decimal("5.25"),
                "base_row_total": Decimal("5.25"),
                "tax_amount": Decimal("0.42"),
                "base_tax_amount": Decimal("0.42"),
                "product_type": "simple",
                "ext_order_item_id": f"AMZ-ITEM-{n}-2",
            },
        ],
        "billing_address": {**address, "address_type": "billing"},
        "payment": {"method": "checkmo", "account_status": "", "cc_last4": "", "additional_information": ["Amazon"]},
        "extension_attributes": {
            "shipping_assignments": [
                {
                    "shipping": {"address": {**address, "address_type": "shipping"}, "method": "flatrate_flatrate"},
                    "items": [],
                }
            ]
        },
        "status_histories": [
            {"comment": "Imported from Amazon", "is_customer_notified": 0, "is_visible_on_front": 0, "parent_id": 0}
        ],
    }
    entity.update(overrides)
    return entity


def to_wire(obj: Any) -> Any:
    """Decimals → JSON-able floats only for sending test bodies (json= of requests)."""
    if isinstance(obj, Decimal):
        return float(obj)
    if isinstance(obj, dict):
        return {k: to_wire(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_wire(v) for v in obj]
    return obj


class Client:
    """A tiny admin-token client of the sandbox (only what the tests need)."""

    def __init__(self, base: str, app: Any, store: str = "default") -> None:
        self.base = base
        self.app = app
        self.store = store
        self.session = requests.Session()
        token = self.session.post(
            f"{base}/rest/default/V1/integration/admin/token",
            json={"username": "admin", "password": "sandbox-admin-password"},
            timeout=5,
        )
        assert token.status_code == 200, token.text
        self.session.headers["Authorization"] = f"Bearer {token.json()}"

    def url(self, path: str, store: str | None = None) -> str:
        return f"{self.base}/rest/{store or self.store}{path}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.url(path), timeout=kw.pop("timeout", 5), **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.session.post(self.url(path), json=to_wire(body), timeout=kw.pop("timeout", 5), **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.session.put(self.url(path), json=to_wire(body), timeout=kw.pop("timeout", 5), **kw)

    def admin(self, path: str, body: Any = None) -> requests.Response:
        if body is None:
            return requests.get(f"{self.base}/_sandbox{path}", timeout=5)
        return requests.post(f"{self.base}/_sandbox{path}", json=to_wire(body), timeout=5)

    def create_order(self, **overrides: Any) -> dict[str, Any]:
        response = self.post("/V1/orders", {"entity": order_entity(**overrides)})
        assert response.status_code == 200, response.text
        return response.json()
