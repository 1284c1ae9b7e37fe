"""Faults (error, drop, commit-then-fail in both modes, random rates), stats, reset, persistence."""

from __future__ import annotations

import json

import pytest
import requests
from commerce_helpers import Client, order_entity, sc, to_wire

from sandboxes.commerce.app import create_app
from sandboxes.commerce.config import CommerceSandboxConfig
from sandboxes.server import serve_in_thread


def _orders(client):
    return client.admin("/orders").json()["total_count"]


def test_fail_next_error_does_not_write(client):
    assert client.admin(
        "/faults", {"fail_next": [{"route": "POST /V1/orders", "kind": "error", "count": 1, "status": 503}]}
    ).ok
    resp = client.post("/V1/orders", {"entity": order_entity()})
    assert resp.status_code == 503
    assert _orders(client) == 0
    assert client.post("/V1/orders", {"entity": order_entity()}).status_code == 200  # only the next one
    assert _orders(client) == 1


def test_fail_next_drop_closes_the_connection(client):
    client.admin("/faults", {"fail_next": [{"route": "GET /V1/orders/*", "kind": "drop"}]})
    oid = client.create_order()["entity_id"]
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(client.url(f"/V1/orders/{oid}"), headers=client.session.headers, timeout=5)
    assert requests.get(client.url(f"/V1/orders/{oid}"), headers=client.session.headers, timeout=5).ok


def test_commit_then_fail_error_mode_writes_but_answers_500(client):
    client.admin("/faults", {"fail_next": [{"route": "POST /V1/orders", "kind": "commit_then_fail"}]})
    entity = order_entity(ext_order_id="111-CTF")
    resp = client.post("/V1/orders", {"entity": entity})
    assert resp.status_code == 500
    assert "Internal Error" in resp.json()["message"]
    found = client.get("/V1/orders", params=sc([("ext_order_id", "111-CTF", "eq")])).json()
    assert found["total_count"] == 1  # the order exists although the client got an error
    # A naive retry duplicates it: ext_order_id is not unique.
    client.post("/V1/orders", {"entity": entity})
    assert client.get("/V1/orders", params=sc([("ext_order_id", "111-CTF", "eq")])).json()["total_count"] == 2


def test_commit_then_fail_timeout_mode(client):
    client.admin(
        "/faults",
        {
            "timeout_seconds": 0.6,
            "commit_then_fail_mode": "timeout",
            "fail_next": [{"route": "POST /V1/order/*/invoice", "kind": "commit_then_fail"}],
        },
    )
    oid = client.create_order()["entity_id"]
    with pytest.raises((requests.exceptions.Timeout, requests.exceptions.ConnectionError)):
        requests.post(client.url(f"/V1/order/{oid}/invoice"), json={}, headers=client.session.headers, timeout=0.2)
    assert client.get(f"/V1/orders/{oid}").json()["state"] == "processing"
    assert client.get("/V1/invoices", params=sc([("order_id", oid, "eq")])).json()["total_count"] == 1


def test_random_rates_limited_to_routes(client):
    client.admin("/faults", {"error_rate": 1.0, "error_statuses": [502], "routes": ["GET /V1/products/*"]})
    assert client.get("/V1/products/SKU-1").status_code == 502
    assert client.get("/V1/stockItems/SKU-1").status_code == 200
    client.admin("/faults", {})
    assert client.get("/V1/products/SKU-1").status_code == 200
    client.admin("/faults", {"drop_rate": 1.0, "routes": ["GET /V1/products/{sku}"]})
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(client.url("/V1/products/SKU-1"), headers=client.session.headers, timeout=5)
    bad = client.admin("/faults", {"error_rate": 2})
    assert bad.status_code == 400


def test_exempt_header_is_never_faulted(client):
    """A test's own back-office calls carry x-sandbox-no-faults and pass; the integration's calls do not."""
    client.admin("/faults", {"error_rate": 1.0, "error_statuses": [503]})
    assert client.get("/V1/products/SKU-1").status_code == 503
    exempt = requests.get(
        client.url("/V1/products/SKU-1"), timeout=5, headers={**client.session.headers, "X-Sandbox-No-Faults": "1"}
    )
    assert exempt.status_code == 200
    assert client.get("/V1/products/SKU-1").status_code == 503


def test_stats_count_calls_per_route_template(client):
    oid = client.create_order()["entity_id"]
    client.get(f"/V1/orders/{oid}")
    client.get(f"/V1/orders/{oid}")
    client.get("/V1/orders", params=sc())
    calls = client.admin("/stats").json()["calls"]
    assert calls["POST /V1/orders"] == 1
    assert calls["GET /V1/orders/{order_id}"] == 2
    assert calls["GET /V1/orders"] == 1
    assert calls["POST /V1/integration/admin/token"] == 1


def test_reset_keeps_or_clears_catalog(client):
    client.create_order()
    client.post("/V1/customers", {"customer": {"email": "a@example.com", "firstname": "A", "lastname": "B"}})
    assert client.admin("/reset", {}).ok
    assert _orders(client) == 0 and client.app.state.sandbox.customers == {}
    assert client.get("/V1/products/SKU-1").ok
    assert client.create_order()["increment_id"] == "000000001"
    client.admin("/reset", {"catalog": True})
    assert client.get("/V1/products/SKU-1").status_code == 404


def test_latency_setting(client):
    import time

    client.admin("/settings", {"latency_ms": 150})
    start = time.monotonic()
    client.get("/V1/products/SKU-1")
    assert time.monotonic() - start >= 0.15
    client.admin("/settings", {"latency_ms": 0})


def test_persistence_across_restart(tmp_path):
    state_file = tmp_path / "commerce.json"
    config = CommerceSandboxConfig(state_file=str(state_file))
    with serve_in_thread(create_app(config)) as base:
        c = Client(base, None)
        c.admin(
            "/products",
            {"products": [{"sku": "SKU-1", "price": "10.00", "qty": 5}, {"sku": "SKU-2", "price": "5.25", "qty": 2}]},
        )
        order = c.create_order(ext_order_id="111-PERSIST")
        c.post(f"/V1/order/{order['entity_id']}/invoice", {})
        token = c.session.headers["Authorization"]
    assert json.loads(state_file.read_text())["orders"][0]["ext_order_id"] == "111-PERSIST"
    with serve_in_thread(create_app(CommerceSandboxConfig(state_file=str(state_file)))) as base:
        headers = {"Authorization": token}  # admin tokens survive too
        got = requests.get(f"{base}/rest/default/V1/orders/{order['entity_id']}", headers=headers, timeout=5)
        assert got.status_code == 200, got.text
        assert got.json()["state"] == "processing" and '"grand_total":32.26' in got.text
        second = requests.post(
            f"{base}/rest/default/V1/orders", headers=headers, timeout=5, json={"entity": to_wire(order_entity())}
        )
        assert second.json()["increment_id"] == "000000002" and second.json()["entity_id"] == 2
        assert (
            requests.get(
                f"{base}/rest/default/V1/inventory/get-product-salable-quantity/SKU-1/1", headers=headers, timeout=5
            ).json()
            == 5
        )
