"""Fixtures of the Commerce sandbox tests: an authenticated client with a seeded catalog."""

from __future__ import annotations

import contextlib

import pytest
from commerce_helpers import Client

from sandboxes.commerce.app import create_app
from sandboxes.commerce.config import CommerceSandboxConfig
from sandboxes.server import serve_in_thread


@pytest.fixture
def client(commerce_sandbox) -> Client:
    base, app = commerce_sandbox
    c = Client(base, app)
    seeded = c.admin(
        "/products",
        {
            "products": [
                {"sku": "SKU-1", "name": "Widget", "price": "10.00", "status": 1, "qty": 50},
                {"sku": "SKU-2", "name": "Gadget", "price": "5.25", "status": 1, "qty": 7},
                {"sku": "SKU-3", "name": "Gizmo", "price": "99.99", "status": 2, "qty": 0},
            ]
        },
    )
    assert seeded.status_code == 200, seeded.text
    return c


@pytest.fixture
def custom_sandbox():
    """Start a sandbox with config overrides: ``custom_sandbox(**fields)`` → Client."""
    with contextlib.ExitStack() as stack:

        def start(**fields) -> Client:
            app = create_app(CommerceSandboxConfig(**fields))
            return Client(stack.enter_context(serve_in_thread(app)), app)

        yield start
