"""Fixtures of the Commerce sandbox tests: an authenticated client with a seeded catalog."""

from __future__ import annotations

import pytest
from commerce_helpers import Client


@pytest.fixture
def client(commerce_sandbox) -> Client:
    base, app = commerce_sandbox
    c = Client(base, app)
    seeded = c.admin("/products", {"products": [
        {"sku": "SKU-1", "name": "Widget", "price": "10.00", "status": 1, "qty": 50},
        {"sku": "SKU-2", "name": "Gadget", "price": "5.25", "status": 1, "qty": 7},
        {"sku": "SKU-3", "name": "Gizmo", "price": "99.99", "status": 2, "qty": 0},
    ]})
    assert seeded.status_code == 200, seeded.text
    return c
