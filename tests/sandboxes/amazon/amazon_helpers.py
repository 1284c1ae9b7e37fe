"""Helpers for the Amazon sandbox tests: a small SP-API client and order factories."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import requests

from sandboxes.amazon.app import create_app
from sandboxes.amazon.config import AmazonSandboxConfig
from sandboxes.amazon.generator import generate_orders
from sandboxes.amazon.util import iso
from sandboxes.server import serve_in_thread

ORDERS_MODEL = "sp-api/models/orders_2026-01-01.json"
ORDERS_V0 = "sp-api/models/ordersV0.json"
FEEDS_MODEL = "sp-api/models/feeds_2021-06-30.json"
FINANCES_MODEL = "sp-api/models/financesV0.json"
US = "ATVPDKIKX0DER"
CA = "A2EUQ1WTGCTBG2"
LONG_AGO = "2000-01-01T00:00:00Z"
REFRESH_TOKEN = "sandbox-refresh-token"
CLIENT_ID = "sandbox-client-id"
CLIENT_SECRET = "sandbox-client-secret"


class Amz:
    """A tiny SP-API client bound to one sandbox and one seller."""

    def __init__(self, base: str, app: Any, refresh_token: str = REFRESH_TOKEN) -> None:
        self.base = base
        self.app = app
        self.http = requests.Session()
        self.token = self.login(refresh_token)

    @property
    def state(self) -> Any:
        return self.app.state.sandbox

    def login(
        self, refresh_token: str = REFRESH_TOKEN, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET
    ) -> str:
        r = self.lwa(
            grant_type="refresh_token", refresh_token=refresh_token, client_id=client_id, client_secret=client_secret
        )
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    def lwa(self, **form: str) -> requests.Response:
        """``POST /auth/o2/token`` with ``form`` (the application's client id and secret unless given)."""
        data = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **form}
        return self.http.post(f"{self.base}/auth/o2/token", data=data, timeout=10)

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        headers.setdefault("x-amz-access-token", token or self.token)
        return self.http.request(method, f"{self.base}{path}", headers=headers, timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, f"{self.base}/_sandbox{path}", timeout=10, **kwargs)

    def load(self, *orders: dict[str, Any], seller_id: str | None = None) -> None:
        body: dict[str, Any] = {"orders": list(orders)}
        if seller_id:
            body["sellerId"] = seller_id
        r = self.admin("POST", "/orders", json=body)
        assert r.status_code == 200, r.text

    def settings(self, **values: Any) -> None:
        assert self.admin("POST", "/settings", json=values).status_code == 200

    def search(self, **params: Any) -> requests.Response:
        return self.get("/orders/2026-01-01/orders", params=params)


def make_order(
    order_id: str = "113-0000001-0000001",
    *,
    status: str = "UNSHIPPED",
    seed: int = 1,
    updated: float | None = None,
    created: float | None = None,
    marketplace: str = US,
    fulfilled_by: str = "MERCHANT",
) -> dict[str, Any]:
    """A valid generated order with a fixed id and times (default: created/updated 1 h ago)."""
    t = time.time()
    order = generate_orders(seed, 1, t, status=status, fulfilled_by=fulfilled_by, marketplace_ids=[marketplace])[0]
    order["orderId"] = order_id
    order["createdTime"] = iso(created if created is not None else t - 3600)
    order["lastUpdatedTime"] = iso(updated if updated is not None else t - 3600)
    for n, item in enumerate(order["orderItems"]):
        item["orderItemId"] = f"{order_id.replace('-', '')[:10]}{n:04d}"
    for package in order.get("packages", []):
        for n, pi in enumerate(package["packageItems"]):
            pi["orderItemId"] = order["orderItems"][n]["orderItemId"]
    return order


@contextlib.contextmanager
def serve(config: AmazonSandboxConfig) -> Iterator[tuple[str, Any]]:
    app = create_app(config)
    with serve_in_thread(app) as base:
        yield base, app


NOTIFICATIONS_MODEL = "sp-api/models/notifications.json"
NOTIFICATIONS_SCOPE = "sellingpartnerapi::notifications"


def grantless_token(amz: Amz, scope: str = NOTIFICATIONS_SCOPE) -> str:
    """An LWA client_credentials token for the application (grantless operations)."""
    r = amz.lwa(grant_type="client_credentials", scope=scope)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]
