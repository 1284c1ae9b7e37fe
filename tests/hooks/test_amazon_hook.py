"""AmazonSpApiHook against the SP-API sandbox on loopback."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from amazon_commerce_sync.errors import (
    AuthenticationError,
    BadRequestError,
    ConnectionFailedError,
    NotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
)
from amazon_commerce_sync.hooks.amazon import AmazonSpApiHook
from amazon_commerce_sync.ratelimit import LocalLimiter
from amazon_commerce_sync.retry import RetryPolicy

CLIENT_SECRET = "sandbox-client-secret"
REFRESH_TOKEN = "sandbox-refresh-token"
US = "ATVPDKIKX0DER"


def set_conn(monkeypatch, base_url: str, conn_id: str = "amazon_sp_api", **overrides) -> None:
    extra = {"refresh_token": REFRESH_TOKEN, "lwa_endpoint": f"{base_url}/auth/o2/token", "rate_scale": 100}
    extra.update(overrides.pop("extra", {}))
    conn = {
        "conn_type": "http",
        "host": base_url,
        "login": "sandbox-client-id",
        "password": CLIENT_SECRET,
        "extra": extra,
        **overrides,
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def admin(base_url: str, method: str, path: str, body=None):
    response = httpx.request(method, f"{base_url}/_sandbox{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def stats(base_url: str, operation: str) -> dict:
    return admin(base_url, "GET", "/stats")["operations"].get(operation, {"requests": 0, "throttled": 0, "faults": 0})


@pytest.fixture
def sandbox(amazon_sandbox, monkeypatch):
    base_url, app = amazon_sandbox
    set_conn(monkeypatch, base_url)
    return base_url, app


def new_hook(**kw) -> AmazonSpApiHook:
    return AmazonSpApiHook(limiter=kw.pop("limiter", LocalLimiter()), **kw)


def generate(base_url: str, count: int, **kw) -> list[str]:
    return admin(base_url, "POST", "/orders/generate", {"count": count, **kw})["orderIds"]


def test_search_orders_pages_through_everything(sandbox):
    base_url, _ = sandbox
    ids = generate(base_url, 23, marketplaceIds=[US], status="UNSHIPPED")
    hook = new_hook()
    pages = list(
        hook.search_orders(
            last_updated_after=datetime.now(UTC) - timedelta(days=5), marketplace_ids=[US], max_results_per_page=10
        )
    )
    assert [len(p.orders) for p in pages] == [10, 10, 3]
    assert [p.next_token is not None for p in pages] == [True, True, False]
    assert sorted(o["orderId"] for p in pages for o in p.orders) == sorted(ids)
    assert all(p.last_updated_before for p in pages) and pages[0].created_before is None
    assert stats(base_url, "searchOrders")["requests"] == 3
    # exactly one of the two lower bounds
    with pytest.raises(ValueError):
        next(hook.search_orders(marketplace_ids=[US]))


def test_get_order_and_not_found(sandbox):
    base_url, _ = sandbox
    [order_id] = generate(base_url, 1, status="UNSHIPPED")
    hook = new_hook()
    assert hook.get_order(order_id)["orderId"] == order_id
    with pytest.raises(NotFoundError) as info:
        hook.get_order("111-0000000-0000000")
    assert info.value.status == 404
    assert stats(base_url, "getOrder")["requests"] == 2  # a 404 is not retried


def test_access_token_cached_and_refreshed_once_when_refused(sandbox):
    base_url, app = sandbox
    [order_id] = generate(base_url, 1, status="UNSHIPPED")
    hook = new_hook()
    for _ in range(3):
        hook.get_order(order_id)
    assert stats(base_url, "lwaToken")["requests"] == 1  # cached
    with app.state.sandbox.lock:  # the token expires (or is revoked) on Amazon's side
        app.state.sandbox.tokens.clear()
    assert hook.get_order(order_id)["orderId"] == order_id
    assert stats(base_url, "lwaToken")["requests"] == 2
    assert stats(base_url, "getOrder")["requests"] == 5  # one 403, then the replay


def test_token_close_to_expiry_is_renewed(sandbox):
    base_url, _ = sandbox
    admin(base_url, "POST", "/settings", {"token_ttl_seconds": 30})  # shorter than the 60 s margin
    [order_id] = generate(base_url, 1, status="UNSHIPPED")
    hook = new_hook()
    hook.get_order(order_id)
    hook.get_order(order_id)
    assert stats(base_url, "lwaToken")["requests"] == 2


def test_lwa_rejection_names_the_connection_and_never_the_secret(sandbox, monkeypatch):
    base_url, _ = sandbox
    set_conn(monkeypatch, base_url, conn_id="amz_wrong", password="not-the-secret-xyz")
    with pytest.raises(AuthenticationError) as info:
        AmazonSpApiHook("amz_wrong", limiter=LocalLimiter()).get_order("111-0000000-0000001")
    text = str(info.value)
    assert "LWA rejected the credentials: invalid_client" in text and "amz_wrong" in text
    assert "not-the-secret-xyz" not in text and REFRESH_TOKEN not in text
    set_conn(monkeypatch, base_url, conn_id="amz_revoked", extra={"refresh_token": "Atzr|revoked"})
    with pytest.raises(AuthenticationError, match="invalid_grant"):
        AmazonSpApiHook("amz_revoked", limiter=LocalLimiter()).access_token()
    assert stats(base_url, "lwaToken")["requests"] == 2  # fatal: not retried


def test_server_errors_are_retried_then_raised(sandbox):
    base_url, _ = sandbox
    [order_id] = generate(base_url, 1, status="UNSHIPPED")
    hook = new_hook()
    hook.access_token()
    admin(base_url, "POST", "/faults", {"error_rate": 1.0, "error_statuses": [503], "operations": ["getOrder"]})
    with pytest.raises(ServiceUnavailableError) as info:
        hook.get_order(order_id)
    assert info.value.status == 503 and info.value.code == "ServiceUnavailable"
    assert stats(base_url, "getOrder")["faults"] == 6
    admin(base_url, "POST", "/faults", {"error_rate": 0.5, "operations": ["getOrder"], "seed": 3})
    for _ in range(5):
        assert hook.get_order(order_id)["orderId"] == order_id
    assert stats(base_url, "getOrder")["faults"] > 6  # some calls needed a retry, all succeeded


def test_dropped_connection_is_retriable(sandbox):
    base_url, _ = sandbox
    [order_id] = generate(base_url, 1, status="UNSHIPPED")
    hook = new_hook(retry_policy=RetryPolicy(attempts=3))
    hook.access_token()
    admin(base_url, "POST", "/faults", {"drop_rate": 1.0, "operations": ["getOrder"]})
    with pytest.raises(ConnectionFailedError) as info:
        hook.get_order(order_id)
    assert info.value.retriable and info.value.request_sent
    assert stats(base_url, "getOrder")["requests"] == 3
    admin(base_url, "POST", "/faults", {})
    assert hook.get_order(order_id)["orderId"] == order_id


def test_bad_request_is_fatal_and_not_retried(sandbox):
    base_url, _ = sandbox
    hook = new_hook()
    now = datetime.now(UTC)
    with pytest.raises(BadRequestError) as info:  # lastUpdatedBefore must be >= 2 minutes ago
        next(
            hook.search_orders(
                last_updated_after=now - timedelta(hours=1), last_updated_before=now, marketplace_ids=[US]
            )
        )
    assert info.value.code == "InvalidInput" and "two minutes" in info.value.message
    assert stats(base_url, "searchOrders")["requests"] == 1


def test_429_drains_the_bucket_and_honours_the_rate_header(sandbox):
    base_url, _ = sandbox
    # server: getOrder 0.05/s (20 s a token), burst 30: the 31st call finds no token on any machine
    admin(base_url, "POST", "/settings", {"speed": 0.1})
    [order_id] = generate(base_url, 1, status="UNSHIPPED")
    waits: list[float] = []
    limiter = LocalLimiter()
    # rate_scale 100 on the connection: this client believes in 50/s, the server allows 0.05/s
    hook = new_hook(limiter=limiter, retry_policy=RetryPolicy(attempts=3, sleep=waits.append))
    for _ in range(30):
        hook.get_order(order_id)
    with pytest.raises(RateLimitedError) as info:
        hook.get_order(order_id)
    assert info.value.retry_after == pytest.approx(20.0)  # 1 / x-amzn-RateLimit-Limit
    assert waits and min(waits) >= 20.0  # each retry waited at least retry_after
    assert stats(base_url, "getOrder")["throttled"] == 3
    assert hook.rate_limit_headroom()["getOrder"]["server_rate"] == pytest.approx(0.05)
    key, _, _ = hook._bucket("getOrder")
    tokens, _ = limiter._buckets[key]
    assert tokens <= 0  # penalised: the local bucket was drained (read, not refilled: refilling is time-dependent)


def test_client_limiter_keeps_under_the_server_limit(sandbox, monkeypatch):
    base_url, _ = sandbox
    admin(base_url, "POST", "/settings", {"speed": 10})  # server: getOrder 5/s, burst 30
    set_conn(monkeypatch, base_url, extra={"rate_scale": 10})  # the client knows the server's speed
    [order_id] = generate(base_url, 1, status="UNSHIPPED")
    hook = new_hook()
    for _ in range(34):
        hook.get_order(order_id)
    assert stats(base_url, "getOrder")["throttled"] == 0


def test_confirm_shipment(sandbox):
    base_url, _ = sandbox
    [order_id] = generate(base_url, 1, status="UNSHIPPED", fulfilledBy="MERCHANT", marketplaceIds=[US])
    hook = new_hook()
    order = hook.get_order(order_id)
    items = [{"orderItemId": i["orderItemId"], "quantity": i["quantityOrdered"]} for i in order["orderItems"]]
    hook.confirm_shipment(
        order_id,
        marketplace_id=US,
        package_detail={
            "packageReferenceId": "1",
            "carrierCode": "UPS",
            "trackingNumber": "1Z999",
            "shipDate": (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "orderItems": items,
        },
    )
    [confirmation] = admin(base_url, "GET", "/shipment-confirmations")["confirmations"]
    assert confirmation["orderId"] == order_id
    assert hook.get_order(order_id)["fulfillment"]["fulfillmentStatus"] == "SHIPPED"


ACK = """<?xml version="1.0" encoding="UTF-8"?>
<AmazonEnvelope><Header><DocumentVersion>1.01</DocumentVersion><MerchantIdentifier>A2SANDBOXSELLER1</MerchantIdentifier></Header>
<MessageType>OrderAcknowledgement</MessageType><Message><MessageID>1</MessageID><OrderAcknowledgement>
<AmazonOrderID>{order_id}</AmazonOrderID><MerchantOrderID>100000001</MerchantOrderID><StatusCode>Success</StatusCode>
</OrderAcknowledgement></Message></AmazonEnvelope>"""


@pytest.mark.parametrize("compress", [False, True])
def test_submit_feed_and_download_report(sandbox, compress):
    base_url, _ = sandbox
    admin(base_url, "POST", "/settings", {"compress_reports": compress})
    [order_id] = generate(base_url, 1, status="UNSHIPPED")
    hook = new_hook()
    feed_id = hook.submit_feed("POST_ORDER_ACKNOWLEDGEMENT_DATA", [US], ACK.format(order_id=order_id).encode())
    assert hook.get_feed(feed_id)["processingStatus"] in ("IN_QUEUE", "IN_PROGRESS")
    admin(base_url, "POST", f"/feeds/{feed_id}/complete")
    feed = hook.get_feed(feed_id)
    assert feed["processingStatus"] == "DONE"
    document = hook.get_feed_document(feed["resultFeedDocumentId"])
    assert (document.get("compressionAlgorithm") == "GZIP") is compress
    report = hook.download_feed_document(feed["resultFeedDocumentId"])
    assert b"ProcessingReport" in report


def test_list_transactions_pages(sandbox):
    """Finances 2024-06-19: every page followed by its nextToken, amounts exact; v0 is not called (removed)."""
    base_url, app = sandbox
    ids = generate(base_url, 3, status="UNSHIPPED", fulfilledBy="MERCHANT")
    for order_id in ids:
        admin(base_url, "POST", f"/orders/{order_id}/events", {"type": "ship"})
    with app.state.sandbox.lock:  # posted 10 minutes ago: inside Amazon's "2 minutes before now" window
        for event in app.state.sandbox.shipment_events:
            event["postedAt"] -= 600
    admin(base_url, "POST", "/settings", {"finances_page_size": 1})
    hook = new_hook()
    pages = list(hook.list_transactions(posted_after=datetime.now(UTC) - timedelta(days=1)))
    shipments = [t for page in pages for t in page if t["transactionType"] == "Shipment"]
    orders = sorted(
        r["relatedIdentifierValue"]
        for t in shipments
        for r in t["relatedIdentifiers"]
        if r["relatedIdentifierName"] == "ORDER_ID"
    )
    assert orders == sorted(ids)
    assert len(pages) >= 3  # one transaction per page
    assert type(shipments[0]["totalAmount"]["currencyAmount"]).__name__ == "Decimal"
    assert stats(base_url, "listFinancialEvents")["requests"] == 0


def test_check_health(sandbox):
    base_url, _ = sandbox
    health = new_hook().check_health()
    assert health["ok"] and health["call"] == "listTransactions"
    assert health["rate_limits"]["listTransactions"]["server_rate"] == pytest.approx(50.0)


def test_logs_carry_no_token_or_secret(sandbox, caplog):
    base_url, app = sandbox
    [order_id] = generate(base_url, 1, status="UNSHIPPED")
    admin(base_url, "POST", "/faults", {"error_rate": 0.5, "operations": ["getOrder"], "seed": 1})
    with caplog.at_level(logging.DEBUG):
        hook = new_hook()
        for _ in range(3):
            hook.get_order(order_id)
        app.state.sandbox.tokens.clear()
        hook.get_order(order_id)
        feed_id = hook.submit_feed("POST_ORDER_ACKNOWLEDGEMENT_DATA", [US], ACK.format(order_id=order_id).encode())
        assert feed_id
    tokens = list(app.state.sandbox.tokens)
    client_logs = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("sandboxes", "uvicorn")))
    assert "getOrder" in client_logs or "access token" in client_logs  # something was logged
    for secret in [CLIENT_SECRET, REFRESH_TOKEN, *tokens]:
        assert secret not in client_logs
    assert "Atza|" not in client_logs


def test_lwa_outage_before_a_write_is_safe_to_retry(sandbox):
    base_url, _ = sandbox
    [order_id] = generate(base_url, 1, status="UNSHIPPED", fulfilledBy="MERCHANT", marketplaceIds=[US])
    admin(base_url, "POST", "/faults", {"error_rate": 1.0, "operations": ["lwaToken"]})
    hook = new_hook(retry_policy=RetryPolicy(attempts=3))
    with pytest.raises(ConnectionFailedError) as info:
        hook.confirm_shipment(
            order_id,
            marketplace_id=US,
            package_detail={
                "packageReferenceId": "1",
                "carrierCode": "UPS",
                "trackingNumber": "1Z1",
                "shipDate": "2026-01-01T00:00:00Z",
                "orderItems": [],
            },
        )
    assert not info.value.request_sent  # the write never left: retried although not idempotent
    assert stats(base_url, "lwaToken")["requests"] == 3
    assert stats(base_url, "confirmShipment")["requests"] == 0
