"""CommerceHook against the Adobe Commerce sandbox on loopback."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from amazon_commerce_sync.errors import (
    AuthenticationError,
    BadRequestError,
    ConnectionFailedError,
    NotFoundError,
    ServiceUnavailableError,
)
from amazon_commerce_sync.hooks.commerce import CommerceHook, Filter

ADMIN_PASSWORD = "sandbox-admin-password"
OAUTH = {
    "consumer_key": "sandbox-consumer-key",
    "consumer_secret": "sandbox-consumer-secret",
    "access_token": "sandbox-access-token",
    "access_token_secret": "sandbox-access-token-secret",
}


def set_conn(monkeypatch, base_url: str, conn_id: str = "commerce", **conn) -> None:
    body = {"conn_type": "http", "host": base_url, **conn}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))


def admin(base_url: str, method: str, path: str, body=None):
    response = httpx.request(method, f"{base_url}/_sandbox{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def calls(base_url: str, route: str) -> int:
    return admin(base_url, "GET", "/stats")["calls"].get(route, 0)


@pytest.fixture
def shop(commerce_sandbox, monkeypatch):
    base_url, app = commerce_sandbox
    set_conn(monkeypatch, base_url, login="admin", password=ADMIN_PASSWORD, extra={"auth": "admin"})
    admin(
        base_url,
        "POST",
        "/products",
        {
            "products": [
                {"sku": "SKU-A", "name": "Mug", "price": "12.50", "qty": 10},
                {"sku": "SKU-B", "name": "Cup", "price": "3.10", "qty": 0},
            ]
        },
    )
    return base_url, app


def order_entity(ext_order_id: str, **over) -> dict:
    entity = {
        "ext_order_id": ext_order_id,
        "customer_email": "jane.buyer@example.com",
        "customer_firstname": "Jane",
        "customer_lastname": "Buyer",
        "base_grand_total": Decimal("28.10"),
        "grand_total": Decimal("28.10"),
        "subtotal": Decimal("25.00"),
        "base_subtotal": Decimal("25.00"),
        "shipping_amount": Decimal("3.10"),
        "base_shipping_amount": Decimal("3.10"),
        "order_currency_code": "USD",
        "items": [{"sku": "SKU-A", "name": "Mug", "qty_ordered": 2, "price": Decimal("12.50")}],
        "payment": {"method": "checkmo"},
        "billing_address": {
            "firstname": "Jane",
            "lastname": "Buyer",
            "street": ["1 Main St"],
            "city": "Seattle",
            "postcode": "98101",
            "country_id": "US",
            "telephone": "555-0100",
            "email": "jane.buyer@example.com",
        },
    }
    entity.update(over)
    return entity


def test_order_lifecycle(shop):
    base_url, _ = shop
    hook = CommerceHook()
    created = hook.create_order(order_entity("111-0000001-0000001"))
    order_id = created["entity_id"]
    assert created["grand_total"] == Decimal("28.10")
    assert hook.get_order(order_id)["ext_order_id"] == "111-0000001-0000001"
    found = hook.find_order_by_increment_id(created["increment_id"], store_id=created["store_id"])
    assert found["entity_id"] == order_id
    item_id = created["items"][0]["item_id"]
    invoice_id = hook.invoice_order(order_id, capture=False)
    assert isinstance(invoice_id, int)
    shipment_id = hook.ship_order(
        order_id,
        [{"order_item_id": item_id, "qty": 2}],
        [{"track_number": "1Z999", "title": "UPS", "carrier_code": "ups"}],
        comment="shipped by the integration",
    )
    assert isinstance(shipment_id, int)
    track_id = hook.add_shipment_track(order_id, shipment_id, "TBA0000000001", "AMZN_US")
    tracks = hook.get_shipment(shipment_id)["tracks"]
    assert [(t["track_number"], t["carrier_code"]) for t in tracks] == [("1Z999", "ups"), ("TBA0000000001", "custom")]
    assert tracks[1]["entity_id"] == track_id
    memo_id = hook.refund_order(order_id, [{"order_item_id": item_id, "qty": 1}], shipping_amount=Decimal("0"))
    assert isinstance(memo_id, int)
    hook.add_order_comment(order_id, "Amazon refund synced")
    assert any(c.get("comment") == "Amazon refund synced" for c in hook.get_order_comments(order_id))
    since = datetime.now(UTC) - timedelta(hours=1)
    assert [s["entity_id"] for s in hook.iter_shipments(since)] == [shipment_id]
    assert [m["entity_id"] for m in hook.iter_creditmemos(since)] == [memo_id]
    assert list(hook.iter_shipments(datetime.now(UTC) + timedelta(hours=1))) == []


def test_cancel_hold_unhold(shop):
    hook = CommerceHook()
    order_id = hook.create_order(order_entity("111-0000002-0000001"))["entity_id"]
    assert hook.hold_order(order_id) is True
    assert hook.cancel_order(order_id) is False  # Magento cannot cancel an order on hold
    assert hook.unhold_order(order_id) is True
    assert hook.cancel_order(order_id) is True
    assert hook.get_order(order_id)["state"] == "canceled"


def test_find_orders_by_ext_order_ids_batches_and_keeps_duplicates(shop):
    base_url, _ = shop
    hook = CommerceHook()
    ids = [f"111-{i:07d}-0000009" for i in range(130)]
    for ext in ids[:3]:
        hook.create_order(order_entity(ext))
    hook.create_order(order_entity(ids[0]))  # ext_order_id is not unique
    before = calls(base_url, "GET /V1/orders")
    found = hook.find_orders_by_ext_order_ids(ids + [ids[1]])
    assert calls(base_url, "GET /V1/orders") - before == 2  # 130 ids: two `in` searches
    assert set(found) == set(ids)
    assert [len(found[i]) for i in ids[:4]] == [2, 1, 1, 0]


def test_search_paging_stops_by_total_count(shop):
    base_url, _ = shop
    admin(
        base_url,
        "POST",
        "/products",
        {"products": [{"sku": f"BULK-{i:02d}", "price": "1.00", "qty": 1} for i in range(23)]},
    )
    hook = CommerceHook()
    before = calls(base_url, "GET /V1/products")
    pages = list(hook.search("products", [[Filter("sku", "BULK-%", "like")]], page_size=10))
    assert [len(p) for p in pages] == [10, 10, 3]
    assert len({p["sku"] for page in pages for p in page}) == 23
    assert calls(base_url, "GET /V1/products") - before == 3  # no 4th request for a page past the end


def test_catalog_stock_and_currencies(shop):
    hook = CommerceHook()
    products = hook.get_products_by_skus(["SKU-A", "SKU-B", "NOPE"])
    assert set(products) == {"SKU-A", "SKU-B"}
    assert products["SKU-A"]["price"] == Decimal("12.50")
    assert hook.get_salable_quantity("SKU-A") == Decimal("10")
    hook.save_source_items([{"sku": "SKU-B", "source_code": "default", "quantity": Decimal("4"), "status": 1}])
    assert hook.get_source_items(["SKU-B"])["SKU-B"][0]["quantity"] == Decimal("4")
    assert {"USD", "CAD", "EUR"} <= hook.get_allowed_currencies()
    assert hook.check_health()["ok"]


def test_store_currency_and_directory_of_another_store_view(shop):
    """The account's store view is read by its code (``/rest/<code>/V1/...``), whatever the connection's is."""
    hook = CommerceHook()
    assert hook.get_store_config(3)["code"] == "multi" and hook.get_store_config(99) is None
    multi = hook.store_currency(3)
    assert (multi.base_currency_code, multi.store_code, multi.available) == (
        "USD",
        "multi",
        frozenset({"USD", "EUR", "GBP", "JPY"}),
    )
    assert multi.rates == {"USD": Decimal(1), "EUR": Decimal("0.92"), "GBP": Decimal("0.79")}  # no JPY: rate 0
    canada = hook.store_currency(2)
    assert canada.base_currency_code == "CAD" and canada.rates["USD"] == Decimal("0.7407")
    us = hook.get_country("US", "multi")
    assert {"code": "WA", "name": "Washington"}.items() <= next(
        r for r in us["available_regions"] if r["code"] == "WA"
    ).items()
    assert hook.get_country("PR", "multi") is None  # Magento's directory has no country PR


def test_customers(shop):
    hook = CommerceHook()
    assert hook.find_customer_by_email("new.person@example.com") is None
    created = hook.create_customer(
        {"email": "new.person@example.com", "firstname": "New", "lastname": "Person", "website_id": 1}
    )
    assert hook.find_customer_by_email("new.person@example.com")["id"] == created["id"]


def test_oauth1_signed_requests_accepted(shop, monkeypatch):
    base_url, _ = shop
    set_conn(monkeypatch, base_url, conn_id="shop_integration", extra={"auth": "oauth1", **OAUTH})
    hook = CommerceHook("shop_integration")
    assert "SKU-A" in hook.get_products_by_skus(["SKU-A"])
    order_id = hook.create_order(order_entity("111-0000003-0000001"))["entity_id"]  # signed POST with a body
    assert hook.get_order(order_id)["entity_id"] == order_id
    set_conn(
        monkeypatch,
        base_url,
        conn_id="shop_bad_sig",
        extra={"auth": "oauth1", **OAUTH, "access_token_secret": "wrong-secret"},
    )
    with pytest.raises(AuthenticationError) as info:
        CommerceHook("shop_bad_sig").get_order(order_id)
    assert info.value.status == 401 and "signature" in info.value.message.lower()
    assert "wrong-secret" not in str(info.value)


def test_integration_token_as_bearer_refused_by_default(shop, monkeypatch):
    base_url, _ = shop
    set_conn(monkeypatch, base_url, conn_id="shop_bearer", password=OAUTH["access_token"], extra={"auth": "bearer"})
    with pytest.raises(AuthenticationError):
        CommerceHook("shop_bearer").get_allowed_currencies()


def test_admin_token_cached_and_reacquired_once_on_401(shop):
    base_url, app = shop
    hook = CommerceHook()
    hook.get_allowed_currencies()
    hook.get_allowed_currencies()
    token_route = "POST /V1/integration/admin/token"
    assert calls(base_url, token_route) == 1
    with app.state.sandbox.lock:  # the token expired / was revoked server-side
        app.state.sandbox.admin_tokens.clear()
    assert "USD" in hook.get_allowed_currencies()
    assert calls(base_url, token_route) == 2


def test_wrong_admin_password_is_fatal_with_a_clear_message(shop, monkeypatch):
    base_url, _ = shop
    set_conn(
        monkeypatch, base_url, conn_id="shop_wrong", login="admin", password="bad-password-123", extra={"auth": "admin"}
    )
    with pytest.raises(AuthenticationError) as info:
        CommerceHook("shop_wrong").get_order(1)
    assert "shop_wrong" in str(info.value) and "bad-password-123" not in str(info.value)
    assert calls(base_url, "POST /V1/integration/admin/token") == 1


def test_reads_retried_on_5xx_and_dropped_connections(shop):
    base_url, _ = shop
    hook = CommerceHook()
    order_id = hook.create_order(order_entity("111-0000004-0000001"))["entity_id"]
    admin(
        base_url,
        "POST",
        "/faults",
        {
            "fail_next": [
                {"route": "GET /V1/orders/*", "kind": "error", "count": 2, "status": 503},
                {"route": "GET /V1/orders/*", "kind": "drop", "count": 1},
            ]
        },
    )
    before = calls(base_url, "GET /V1/orders/{order_id}")
    assert hook.get_order(order_id)["entity_id"] == order_id
    assert calls(base_url, "GET /V1/orders/{order_id}") - before == 4
    admin(base_url, "POST", "/faults", {"error_rate": 1.0, "routes": ["GET /V1/orders/*"]})
    with pytest.raises(ServiceUnavailableError):
        hook.get_order(order_id)


def test_non_idempotent_writes_not_retried_after_ambiguous_failure(shop):
    base_url, _ = shop
    hook = CommerceHook()
    admin(
        base_url,
        "POST",
        "/faults",
        {"fail_next": [{"route": "POST /V1/orders", "kind": "commit_then_fail", "count": 1, "status": 500}]},
    )
    with pytest.raises(ServiceUnavailableError):
        hook.create_order(order_entity("111-0000005-0000001"))
    # the order exists once: the caller looks it up by its natural key instead of re-posting
    assert len(hook.find_orders_by_ext_order_ids(["111-0000005-0000001"])["111-0000005-0000001"]) == 1
    admin(base_url, "POST", "/faults", {"fail_next": [{"route": "POST /V1/orders", "kind": "drop", "count": 1}]})
    with pytest.raises(ConnectionFailedError) as info:
        hook.create_order(order_entity("111-0000005-0000002"))
    assert info.value.request_sent
    assert calls(base_url, "POST /V1/orders") == 2


def test_fatal_errors_not_retried(shop):
    base_url, _ = shop
    hook = CommerceHook()
    with pytest.raises(NotFoundError):
        hook.get_order(987654)
    assert calls(base_url, "GET /V1/orders/{order_id}") == 1
    with pytest.raises(BadRequestError) as info:
        hook.create_order(order_entity("111-0000006-0000001", items=[]))
    assert "items" in info.value.message
    assert calls(base_url, "POST /V1/orders") == 1


def test_connection_refused_write_is_retried_safely(monkeypatch):
    from sandboxes.server import free_port

    set_conn(
        monkeypatch, f"http://127.0.0.1:{free_port()}", conn_id="shop_down", password="tok", extra={"auth": "bearer"}
    )
    attempts = []

    hook = CommerceHook("shop_down")
    original = hook._attempt

    def counting(*args):
        attempts.append(args[0])
        return original(*args)

    hook._attempt = counting  # count real attempts against a closed port
    with pytest.raises(ConnectionFailedError) as info:
        hook.create_order(order_entity("x"))
    assert not info.value.request_sent and len(attempts) == 6


def test_logs_carry_no_token_secret_or_email(shop, monkeypatch, caplog):
    base_url, app = shop
    set_conn(monkeypatch, base_url, conn_id="shop_integration", extra={"auth": "oauth1", **OAUTH})
    email = "private.person@example.com"
    with caplog.at_level(logging.DEBUG):
        hook = CommerceHook()
        hook.find_customer_by_email(email)
        hook.create_customer({"email": email, "firstname": "P", "lastname": "P", "website_id": 1})
        with pytest.raises(BadRequestError):  # duplicate e-mail: the server's message may echo it
            hook.create_customer({"email": email, "firstname": "P", "lastname": "P", "website_id": 1})
        app.state.sandbox.admin_tokens.clear()
        hook.find_customer_by_email(email)
        CommerceHook("shop_integration").find_customer_by_email(email)
    tokens = list(app.state.sandbox.admin_tokens)
    client_logs = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if not r.name.startswith(("sandboxes", "uvicorn"))
    )
    assert "customers/search" in client_logs  # urllib3's request lines are there, redacted
    for secret in [email, email.replace("@", "%40"), ADMIN_PASSWORD, *tokens, *OAUTH.values()]:
        assert secret not in client_logs


def test_keyset_paging_yields_each_shipment_once_and_stops_on_the_last_page(shop):
    base_url, _ = shop
    hook = CommerceHook()
    ids = []
    for n in range(7):
        order = hook.create_order(order_entity(f"111-{n:07d}-0000010"))
        ids.append(hook.ship_order(order["entity_id"], [{"order_item_id": order["items"][0]["item_id"], "qty": 1}], []))
    since = datetime.now(UTC) - timedelta(hours=1)
    for page_size in (1, 2, 3):  # restarts from the last updated_at seen, skipping what was yielded
        assert [s["entity_id"] for s in hook.iter_shipments(since, page_size=page_size)] == ids
    before = calls(base_url, "GET /V1/shipments")
    assert [s["entity_id"] for s in hook.iter_shipments(since, page_size=7)] == ids
    assert calls(base_url, "GET /V1/shipments") - before == 1  # the last page ends it: no restart after it
