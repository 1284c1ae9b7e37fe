"""A Commerce sandbox with the Amazon sandbox's catalog, the production CommerceHook, and a state store."""

from __future__ import annotations

import dataclasses
import json
import time
from decimal import Decimal
from typing import Any

import pytest
import requests

from amazon_commerce_sync import transform
from amazon_commerce_sync.settings import AccountSettings
from amazon_commerce_sync.times import parse_time

MARKETPLACE = "ATVPDKIKX0DER"  # amazon.com: USD, which the sandbox's default store accepts


@dataclasses.dataclass
class Shop:
    """The Commerce sandbox as the integration sees it (``hook``) and as a test inspects it (``state``)."""

    base_url: str
    app: Any
    hook: Any
    account: AccountSettings

    @property
    def state(self):
        return self.app.state.sandbox

    def fail_next(self, route: str, *kinds: tuple[str, int]) -> None:
        """Queue faults for the next calls of ``route``, e.g. ``("commit_then_fail", 1), ("error", 20)``."""
        entries = [{"route": route, "kind": kind, "count": count} for kind, count in kinds]
        response = requests.post(f"{self.base_url}/_sandbox/faults", json={"fail_next": entries}, timeout=10)
        response.raise_for_status()

    def orders_with(self, amazon_order_id: str) -> list[dict[str, Any]]:
        return [o for o in self.state.orders.values() if o.get("ext_order_id") == amazon_order_id]

    def documents_of(self, kind: str, commerce_id: int) -> list[dict[str, Any]]:
        """The order's invoices, shipments or creditmemos."""
        return [d for d in getattr(self.state, kind).values() if int(d["order_id"]) == commerce_id]

    def comments(self, commerce_id: int) -> list[str]:
        return [h.get("comment") or "" for h in self.state.orders[commerce_id].get("status_histories") or []]

    def quantity(self, sku: str) -> Decimal:
        [item] = [s for s in self.hook.get_source_items([sku])[sku] if s["source_code"] == "default"]
        return Decimal(str(item["quantity"]))

    def amazon_order(self, seed: int, **kw: Any) -> dict[str, Any]:
        from sandboxes.amazon.generator import generate_orders

        [order] = generate_orders(seed, 1, time.time() - 3600, marketplace_ids=[MARKETPLACE], **kw)
        return order

    def entity(self, order: dict[str, Any]) -> dict[str, Any]:
        """The ``POST /V1/orders`` entity the import would send for an Amazon order."""
        amounts = transform.order_amounts(order)
        skus = sorted({self.account.commerce_sku(i.seller_sku) for i in amounts.items})
        products = self.hook.get_products_by_skus(skus)
        return transform.build_order(order, amounts, self.account, products=products)


@pytest.fixture
def shop(commerce_sandbox, monkeypatch) -> Shop:
    from amazon_commerce_sync.hooks.commerce import CommerceHook
    from sandboxes.amazon.generator import CATALOG

    base_url, app = commerce_sandbox
    conn = {
        "conn_type": "http",
        "host": base_url,
        "login": "admin",
        "password": "sandbox-admin-password",
        "extra": {"store_code": "default", "auth": "admin"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_COMMERCE", json.dumps(conn))
    products = [
        {"sku": p["sku"], "name": p["name"], "price": str(p["price"]), "status": 1, "qty": 100} for p in CATALOG
    ]
    requests.post(f"{base_url}/_sandbox/products", json={"products": products}, timeout=10).raise_for_status()
    account = AccountSettings(
        account_id="us-main", marketplace_ids=(MARKETPLACE,), import_orders_after=parse_time("2026-01-01T00:00:00Z")
    )
    return Shop(base_url, app, CommerceHook("commerce"), account)
