"""LWA, access tokens, seller isolation, rate limits, faults and stats."""

from __future__ import annotations

import time

import pytest
import requests
from amazon_helpers import LONG_AGO, ORDERS_MODEL, Amz, make_order, serve

from sandboxes.amazon.config import AmazonSandboxConfig
from sandboxes.swagger import validate


def test_lwa_token_and_errors(amz):
    url = f"{amz.base}/auth/o2/token"
    good = {
        "grant_type": "refresh_token",
        "refresh_token": "sandbox-refresh-token",
        "client_id": "sandbox-client-id",
        "client_secret": "sandbox-client-secret",
    }
    body = requests.post(url, data=good, timeout=5).json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["refresh_token"] == "sandbox-refresh-token" and body["access_token"]
    bad_client = requests.post(url, data={**good, "client_secret": "nope"}, timeout=5)
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"
    bad_grant = requests.post(url, data={**good, "refresh_token": "Atzr|unknown"}, timeout=5)
    assert bad_grant.status_code == 400 and bad_grant.json()["error"] == "invalid_grant"
    assert bad_grant.json()["error_description"]
    unsupported = requests.post(url, data={**good, "grant_type": "password"}, timeout=5)
    assert unsupported.status_code == 400 and unsupported.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("token", [None, "", "Atza|forged"])
def test_missing_or_invalid_token_is_403(amz, token):
    headers = {} if token is None else {"x-amz-access-token": token}
    r = requests.get(
        f"{amz.base}/orders/2026-01-01/orders", params={"lastUpdatedAfter": LONG_AGO}, headers=headers, timeout=5
    )
    assert r.status_code == 403
    validate(ORDERS_MODEL, "ErrorList", r.json())
    assert r.json()["errors"][0] == {
        "code": "Unauthorized",
        "message": "Access to requested resource is denied.",
        "details": r.json()["errors"][0]["details"],
    }


def test_expired_token_is_403(amz):
    amz.settings(token_ttl_seconds=1)
    token = amz.login()
    assert amz.get("/orders/2026-01-01/orders", token=token, params={"lastUpdatedAfter": LONG_AGO}).status_code == 200
    time.sleep(1.1)
    expired = amz.get("/orders/2026-01-01/orders", token=token, params={"lastUpdatedAfter": LONG_AGO})
    assert expired.status_code == 403 and expired.json()["errors"][0]["code"] == "Unauthorized"


def test_sellers_see_only_their_orders():
    config = AmazonSandboxConfig(
        speed=100,
        sellers=[
            {
                "seller_id": "A2SANDBOXSELLER1",
                "refresh_token": "sandbox-refresh-token",
                "marketplace_ids": ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"],
            },
            {
                "seller_id": "A3OTHERSELLER",
                "refresh_token": "other-refresh-token",
                "marketplace_ids": ["ATVPDKIKX0DER"],
            },
        ],
    )
    with serve(config) as (base, app):
        one, two = Amz(base, app), Amz(base, app, "other-refresh-token")
        one.load(make_order("113-0000001-0000001"))
        two.load(make_order("113-0000002-0000002"), seller_id="A3OTHERSELLER")
        assert [o["orderId"] for o in one.search(lastUpdatedAfter=LONG_AGO).json()["orders"]] == ["113-0000001-0000001"]
        assert [o["orderId"] for o in two.search(lastUpdatedAfter=LONG_AGO).json()["orders"]] == ["113-0000002-0000002"]
        assert two.get("/orders/2026-01-01/orders/113-0000001-0000001").status_code == 404
        # a marketplace of the region the seller does not sell in: Amazon's 403 (issue #2712)
        denied = two.search(lastUpdatedAfter=LONG_AGO, marketplaceIds="A2EUQ1WTGCTBG2")
        assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == "Unauthorized"


def test_rate_limit_burst_then_429_with_header(amz):
    codes, limits = [], set()
    for _ in range(22):
        r = amz.search(lastUpdatedAfter=LONG_AGO)
        codes.append(r.status_code)
        limits.add(r.headers.get("x-amzn-RateLimit-Limit"))
        if r.status_code == 429:
            validate(ORDERS_MODEL, "ErrorList", r.json())
            assert r.json()["errors"][0] == {
                "code": "QuotaExceeded",
                "message": "You exceeded your quota for the requested resource.",
            }
    assert codes[:20] == [200] * 20 and 429 in codes[20:]
    assert limits == {"0.56"}  # 0.0056 x speed 100
    time.sleep(1 / 0.56 + 0.1)  # one token refilled
    assert amz.search(lastUpdatedAfter=LONG_AGO).status_code == 200
    stats = amz.admin("GET", "/stats").json()["operations"]["searchOrders"]
    assert stats["requests"] == 23 and stats["throttled"] >= 1
    # buckets are per operation: getOrder is unaffected
    assert amz.get("/orders/2026-01-01/orders/none").status_code == 404


def test_error_faults_limited_to_operations(amz):
    amz.load(make_order())
    r = amz.admin("POST", "/faults", json={"error_rate": 1.0, "error_statuses": [503], "operations": ["getOrder"]})
    assert r.status_code == 200
    failed = amz.get("/orders/2026-01-01/orders/113-0000001-0000001")
    assert failed.status_code == 503
    validate(ORDERS_MODEL, "ErrorList", failed.json())
    assert failed.json()["errors"][0]["code"] == "ServiceUnavailable"
    assert amz.search(lastUpdatedAfter=LONG_AGO).status_code == 200  # other operations untouched
    assert amz.admin("GET", "/orders").status_code == 200  # admin never faulted
    amz.admin("POST", "/faults", json={"error_rate": 1.0, "error_statuses": [500]})
    assert amz.search(lastUpdatedAfter=LONG_AGO).json()["errors"][0]["code"] == "InternalFailure"
    amz.admin("POST", "/faults", json={})
    assert amz.get("/orders/2026-01-01/orders/113-0000001-0000001").status_code == 200
    assert amz.admin("GET", "/stats").json()["operations"]["getOrder"]["faults"] == 1
    assert amz.admin("POST", "/faults", json={"error_rate": 2}).status_code == 400


def test_latency_fault(amz):
    amz.admin("POST", "/faults", json={"latency_ms": 300})
    start = time.monotonic()
    assert amz.search(lastUpdatedAfter=LONG_AGO).status_code == 200
    assert time.monotonic() - start >= 0.3


def test_dropped_connection(amz):
    amz.admin("POST", "/faults", json={"drop_rate": 1.0, "operations": ["searchOrders"]})
    with pytest.raises(requests.ConnectionError):
        requests.get(
            f"{amz.base}/orders/2026-01-01/orders",
            params={"lastUpdatedAfter": LONG_AGO},
            headers={"x-amz-access-token": amz.token},
            timeout=5,
        )
    amz.admin("POST", "/faults", json={})
    assert amz.search(lastUpdatedAfter=LONG_AGO).status_code == 200


def test_injected_throttle_fault_is_a_quota_exceeded_429(amz):
    """Another application of the seller used the shared quota: a 429 the bucket did not cause."""
    amz.admin("POST", "/faults", json={"throttle_rate": 1.0, "operations": ["searchOrders"]})
    throttled = amz.search(lastUpdatedAfter=LONG_AGO)
    assert throttled.status_code == 429
    validate(ORDERS_MODEL, "ErrorList", throttled.json())
    assert throttled.json()["errors"][0]["code"] == "QuotaExceeded"
    amz.admin("POST", "/faults", json={})
    assert amz.search(lastUpdatedAfter=LONG_AGO).status_code == 200
    stats = amz.admin("GET", "/stats").json()["operations"]["searchOrders"]
    assert stats["injectedThrottles"] == 1 and stats["throttled"] == 0  # kept apart from real throttling
    assert amz.admin("POST", "/faults", json={"throttle_rate": -0.1}).status_code == 400
