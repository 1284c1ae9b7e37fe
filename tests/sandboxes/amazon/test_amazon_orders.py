"""searchOrders / getOrder: parameter rules, paging, includedData, PII, visibility, conformance."""

from __future__ import annotations

import time

import pytest
from amazon_helpers import CA, LONG_AGO, ORDERS_MODEL, US, make_order

from sandboxes.amazon.util import iso
from sandboxes.swagger import validate

ALL_DATA = "BUYER,RECIPIENT,PROCEEDS,EXPENSE,PROMOTION,CANCELLATION,FULFILLMENT,PACKAGES,TAX,PAYMENT,FULFILLMENT_ORDERS"


def test_search_with_all_included_data_conforms(amz):
    amz.admin("POST", "/orders/generate", json={"count": 40, "seed": 3})
    r = amz.search(lastUpdatedAfter=LONG_AGO, includedData=ALL_DATA)
    assert r.status_code == 200
    body = r.json()
    validate(ORDERS_MODEL, "SearchOrdersResponse", body)
    assert len(body["orders"]) == 40
    assert "lastUpdatedBefore" in body and "pagination" not in body
    statuses = {o["fulfillment"]["fulfillmentStatus"] for o in body["orders"]}
    assert {"UNSHIPPED", "SHIPPED"} <= statuses
    for order in body["orders"]:
        pending = order["fulfillment"]["fulfillmentStatus"] in ("PENDING", "PENDING_AVAILABILITY")
        if order["fulfillment"]["fulfilledBy"] == "MERCHANT" or pending:  # FBA orders may come without buyer
            assert ("buyer" in order) is not pending
        assert ("recipient" in order) is not pending


def test_included_data_filters_sections(amz):
    amz.load(make_order("113-0000001-0000001", status="SHIPPED"))
    bare = amz.search(lastUpdatedAfter=LONG_AGO).json()["orders"][0]
    assert not {"buyer", "recipient", "proceeds", "fulfillment", "packages"} & set(bare)
    assert not {"proceeds", "fulfillment", "promotion"} & set(bare["orderItems"][0])
    assert bare["orderItems"][0]["product"]["sellerSku"].startswith("ACS-")
    some = amz.search(lastUpdatedAfter=LONG_AGO, includedData="BUYER,PACKAGES").json()["orders"][0]
    assert "buyer" in some and "packages" in some
    assert "recipient" not in some and "proceeds" not in some


def test_created_and_updated_after_rules(amz):
    now = time.time()
    cases = [
        {},
        {"createdAfter": LONG_AGO, "lastUpdatedAfter": LONG_AGO},
        {"createdAfter": LONG_AGO, "lastUpdatedBefore": iso(now - 600)},
        {"lastUpdatedAfter": LONG_AGO, "createdBefore": iso(now - 600)},
        {"lastUpdatedAfter": LONG_AGO, "lastUpdatedBefore": iso(now - 30)},
        {"createdAfter": iso(now - 600), "createdBefore": iso(now - 3600)},
        {"createdAfter": "yesterday"},
        {"createdAfter": iso(now + 3600)},
        {"lastUpdatedAfter": LONG_AGO, "maxResultsPerPage": 0},
        {"lastUpdatedAfter": LONG_AGO, "maxResultsPerPage": 101},
        {"lastUpdatedAfter": LONG_AGO, "maxResultsPerPage": "ten"},
        {"lastUpdatedAfter": LONG_AGO, "fulfillmentStatuses": "SHIPPED,LOST"},
        {"lastUpdatedAfter": LONG_AGO, "fulfilledBy": "SELLER"},
        {"lastUpdatedAfter": LONG_AGO, "includedData": "EVERYTHING"},
        {"lastUpdatedAfter": LONG_AGO, "marketplaceIds": "NOTAMARKETPLACE"},
        {"lastUpdatedAfter": LONG_AGO, "paginationToken": "garbage"},
    ]
    amz.settings(rate_limits_enabled=False)
    for params in cases:
        r = amz.search(**params)
        assert r.status_code == 400, (params, r.text)
        body = r.json()
        validate(ORDERS_MODEL, "ErrorList", body)
        assert body["errors"][0]["code"] == "InvalidInput"
        assert body["errors"][0]["message"]
    assert "Exactly one of createdAfter and lastUpdatedAfter" in amz.search().json()["errors"][0]["message"]
    msg = amz.search(lastUpdatedAfter=LONG_AGO, lastUpdatedBefore=iso(now - 30)).json()["errors"][0]["message"]
    assert "two minutes" in msg
    ok = amz.search(createdAfter=LONG_AGO, createdBefore=iso(now - 121))
    assert ok.status_code == 200 and ok.json()["createdBefore"] == iso(now - 121)


def test_filters_and_time_window(amz):
    now = time.time()
    amz.load(
        make_order("113-0000001-0000001", status="UNSHIPPED", updated=now - 7200, created=now - 7200),
        make_order("113-0000001-0000002", status="SHIPPED", updated=now - 3600, created=now - 9000),
        make_order(
            "701-0000001-0000003",
            status="UNSHIPPED",
            marketplace=CA,
            fulfilled_by="AMAZON",
            updated=now - 600,
            created=now - 600,
        ),
    )
    ids = lambda r: [o["orderId"] for o in r.json()["orders"]]  # noqa: E731
    assert ids(amz.search(lastUpdatedAfter=iso(now - 4000))) == ["113-0000001-0000002", "701-0000001-0000003"]
    assert ids(amz.search(createdAfter=iso(now - 4000))) == ["701-0000001-0000003"]
    assert ids(amz.search(lastUpdatedAfter=LONG_AGO, lastUpdatedBefore=iso(now - 3000))) == [
        "113-0000001-0000001",
        "113-0000001-0000002",
    ]
    assert ids(amz.search(lastUpdatedAfter=LONG_AGO, fulfillmentStatuses="SHIPPED")) == ["113-0000001-0000002"]
    assert ids(amz.search(lastUpdatedAfter=LONG_AGO, marketplaceIds=CA)) == ["701-0000001-0000003"]
    assert ids(amz.search(lastUpdatedAfter=LONG_AGO, fulfilledBy="AMAZON")) == ["701-0000001-0000003"]
    assert len(ids(amz.search(lastUpdatedAfter=LONG_AGO, marketplaceIds=f"{US},{CA}"))) == 3


def test_paging_250_orders_without_gaps_or_duplicates(amz):
    amz.settings(rate_limits_enabled=False)
    amz.admin("POST", "/orders/generate", json={"count": 250, "seed": 11})
    seen, token, pages = [], None, 0
    while True:
        params = {"lastUpdatedAfter": LONG_AGO, "maxResultsPerPage": 30}
        if token:
            params["paginationToken"] = token
        body = amz.search(**params).json()
        validate(ORDERS_MODEL, "SearchOrdersResponse", body)
        seen += [(o["lastUpdatedTime"], o["orderId"]) for o in body["orders"]]
        pages += 1
        token = body.get("pagination", {}).get("nextToken")
        if not token:
            break
    assert pages == 9
    assert len(seen) == 250 == len(set(seen))
    assert seen == sorted(seen)
    # a token only works with the query that produced it
    first = amz.search(lastUpdatedAfter=LONG_AGO, maxResultsPerPage=10).json()["pagination"]["nextToken"]
    bad = amz.search(lastUpdatedAfter="2001-01-01T00:00:00Z", paginationToken=first)
    assert bad.status_code == 400 and "same query" in bad.json()["errors"][0]["message"]
    other_size = amz.search(lastUpdatedAfter=LONG_AGO, maxResultsPerPage=50, paginationToken=first)
    assert other_size.status_code == 200 and len(other_size.json()["orders"]) == 50


def test_get_order_conforms_and_404(amz):
    amz.load(make_order("113-0000001-0000001", status="PENDING"))
    r = amz.get("/orders/2026-01-01/orders/113-0000001-0000001", params={"includedData": ALL_DATA})
    assert r.status_code == 200
    validate(ORDERS_MODEL, "GetOrderResponse", r.json())
    assert "buyer" not in r.json()["order"] and "recipient" not in r.json()["order"]
    assert r.headers["x-amzn-RateLimit-Limit"] == "50"  # 0.5/s x speed 100
    missing = amz.get("/orders/2026-01-01/orders/999-0000000-0000000")
    assert missing.status_code == 404
    validate(ORDERS_MODEL, "ErrorList", missing.json())
    assert missing.json()["errors"][0]["code"] == "NotFound"


def test_pending_order_gets_buyer_after_payment_authorisation(amz):
    amz.load(make_order("113-0000001-0000001", status="PENDING"))
    r = amz.admin("POST", "/orders/113-0000001-0000001/events", json={"type": "authorize_payment"})
    assert r.status_code == 200
    order = amz.get(
        "/orders/2026-01-01/orders/113-0000001-0000001", params={"includedData": "BUYER,RECIPIENT,FULFILLMENT"}
    ).json()["order"]
    assert order["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    assert order["buyer"]["buyerName"]
    assert order["lastUpdatedTime"] > order["createdTime"]


@pytest.mark.parametrize("delay", [1.0])
def test_visibility_delay_keeps_update_time(amz, delay):
    amz.settings(visibility_delay_seconds=delay)
    before = time.time()
    amz.load(make_order("113-0000001-0000001", status="PENDING", updated=before - 3600))
    amz.settings(visibility_delay_seconds=0)
    amz.settings(visibility_delay_seconds=delay)
    time.sleep(delay + 0.1)
    amz.admin("POST", "/orders/113-0000001-0000001/events", json={"type": "authorize_payment"})
    query = {"lastUpdatedAfter": LONG_AGO, "includedData": "FULFILLMENT"}
    early = amz.search(**query).json()["orders"]
    assert [o["fulfillment"]["fulfillmentStatus"] for o in early] == ["PENDING"]  # old version still shown
    time.sleep(delay + 0.2)
    late = amz.search(**query).json()["orders"]
    assert late[0]["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    # the published version carries the real update time, not the publication time
    assert late[0]["lastUpdatedTime"] <= iso(time.time() - delay)


def test_new_order_invisible_until_published(amz):
    amz.settings(visibility_delay_seconds=0.8)
    amz.load(make_order("113-0000001-0000009"))
    assert amz.search(lastUpdatedAfter=LONG_AGO).json()["orders"] == []
    assert amz.get("/orders/2026-01-01/orders/113-0000001-0000009").status_code == 200
    time.sleep(1.0)
    assert len(amz.search(lastUpdatedAfter=LONG_AGO).json()["orders"]) == 1


def test_admin_load_rejects_invalid_orders(amz):
    r = amz.admin("POST", "/orders", json={"orders": [{"orderId": "x"}]})
    assert r.status_code == 400 and "not a valid Order" in r.json()["errors"][0]["message"]
    order = make_order()
    amz.load(order)
    stored = amz.admin("GET", f"/orders/{order['orderId']}").json()
    assert stored["order"] == order and stored["sellerId"] == "A2SANDBOXSELLER1"
