"""Finances events, persistence across restarts, reset, generator, live mode and the CLI."""

from __future__ import annotations

import json
import random
import time
from decimal import Decimal

from amazon_helpers import FINANCES_MODEL, LONG_AGO, ORDERS_MODEL, US, Amz, make_order, serve
from test_amazon_feeds import adjustment, envelope, submit

from sandboxes.amazon.__main__ import parse_args
from sandboxes.amazon.config import AmazonSandboxConfig
from sandboxes.amazon.generator import CATALOG, generate_orders
from sandboxes.amazon.live import live_step
from sandboxes.amazon.util import iso
from sandboxes.swagger import validate

OID = "113-0000001-0000001"


def _events(amz, order_id=OID):
    r = amz.get(f"/finances/v0/orders/{order_id}/financialEvents")
    assert r.status_code == 200
    body = r.json()
    validate(FINANCES_MODEL, "ListFinancialEventsResponse", body)
    return body["payload"]["FinancialEvents"], json.loads(r.text, parse_float=Decimal)


def test_refunds_and_shipments_in_financial_events(amz):
    amz.load(make_order(OID))
    amz.admin("POST", f"/orders/{OID}/events", json={"type": "ship"})
    item = amz.admin("GET", f"/orders/{OID}").json()["order"]["orderItems"][0]["orderItemId"]
    r = amz.admin(
        "POST",
        f"/orders/{OID}/events",
        json={
            "type": "refund",
            "items": [{"orderItemId": item, "components": [{"type": "Principal", "amount": "5.00"}]}],
        },
    )
    assert r.status_code == 200
    assert (
        amz.admin(
            "POST",
            f"/orders/{OID}/events",
            json={
                "type": "refund",
                "items": [{"orderItemId": item, "components": [{"type": "Principal", "amount": "100000.00"}]}],
            },
        ).status_code
        == 400
    )
    _, exact = _events(amz)
    events = exact["payload"]["FinancialEvents"]
    assert len(events["ShipmentEventList"]) == 1
    refund = events["RefundEventList"][0]
    assert refund["AmazonOrderId"] == OID and refund["MarketplaceName"] == "Amazon.com"
    line = refund["ShipmentItemAdjustmentList"][0]
    assert line["OrderAdjustmentItemId"] == item
    assert line["ItemChargeAdjustmentList"] == [
        {"ChargeType": "Principal", "ChargeAmount": {"CurrencyCode": "USD", "CurrencyAmount": Decimal("-5.00")}}
    ]
    # full refund of the rest, then nothing is left
    assert amz.admin("POST", f"/orders/{OID}/events", json={"type": "refund"}).status_code == 200
    assert amz.admin("POST", f"/orders/{OID}/events", json={"type": "refund"}).status_code == 400
    events, _ = _events(amz)
    order = amz.admin("GET", f"/orders/{OID}").json()["order"]
    refunded = -sum(
        Decimal(str(c["ChargeAmount"]["CurrencyAmount"]))
        for e in events["RefundEventList"]
        for line in e["ShipmentItemAdjustmentList"]
        for c in line["ItemChargeAdjustmentList"]
    )
    assert refunded == Decimal(order["proceeds"]["grandTotal"]["amount"])


def test_feed_refund_visible_with_merchant_id(amz):
    amz.load(make_order(OID, status="SHIPPED"))
    item = amz.admin("GET", f"/orders/{OID}").json()["order"]["orderItems"][0]["orderItemId"]
    feed_id = submit(amz, "POST_PAYMENT_ADJUSTMENT_DATA", envelope("OrderAdjustment", adjustment(OID, item, "2.50")))
    amz.admin("POST", f"/feeds/{feed_id}/complete")
    events, _ = _events(amz)
    line = events["RefundEventList"][0]["ShipmentItemAdjustmentList"][0]
    assert line["MerchantAdjustmentItemId"] == "CM-1" and line["OrderAdjustmentItemId"] == item


def test_list_financial_events_time_rules_and_paging(amz):
    now = time.time()
    amz.load(*[make_order(f"113-0000001-000000{i}", status="SHIPPED") for i in range(1, 4)])
    state = amz.state
    for i in range(1, 4):
        amz.admin("POST", f"/orders/113-0000001-000000{i}/events", json={"type": "refund"})
    with state.lock:  # posted an hour ago, so the 2-minute rule lets them through
        for n, refund in enumerate(state.refunds):
            refund["postedAt"] = now - 3600 + n
    r = amz.get("/finances/v0/financialEvents", params={"PostedAfter": iso(now - 7200), "MaxResultsPerPage": 2})
    body = r.json()
    validate(FINANCES_MODEL, "ListFinancialEventsResponse", body)
    assert len(body["payload"]["FinancialEvents"]["RefundEventList"]) == 2
    token = body["payload"]["NextToken"]
    rest = amz.get("/finances/v0/financialEvents", params={"NextToken": token, "MaxResultsPerPage": 2}).json()
    assert len(rest["payload"]["FinancialEvents"]["RefundEventList"]) == 1 and "NextToken" not in rest["payload"]
    for params in (
        {"PostedAfter": iso(now - 30)},
        {"PostedBefore": iso(now - 3600)},
        {"PostedAfter": iso(now - 7200), "PostedBefore": iso(now - 60)},
        {"PostedAfter": iso(now - 3600), "PostedBefore": iso(now - 7200)},
        {"PostedAfter": iso(now - 7200), "MaxResultsPerPage": 101},
    ):
        bad = amz.get("/finances/v0/financialEvents", params=params)
        assert bad.status_code == 400, params
        validate(FINANCES_MODEL, "ListFinancialEventsResponse", bad.json())
    # events younger than two minutes are not listed by default
    amz.admin("POST", "/orders", json={"orders": [make_order("113-0000002-0000001", status="SHIPPED")]})
    amz.admin("POST", "/orders/113-0000002-0000001/events", json={"type": "refund"})
    ids = [
        e["AmazonOrderId"]
        for e in amz.get("/finances/v0/financialEvents", params={"PostedAfter": iso(now - 7200)}).json()["payload"][
            "FinancialEvents"
        ]["RefundEventList"]
    ]
    assert "113-0000002-0000001" not in ids and len(ids) == 3


def test_state_file_survives_restart_and_feed_applied_once(tmp_path):
    path = str(tmp_path / "amazon.json")
    config = AmazonSandboxConfig(speed=100, state_file=path, initial_orders=5)
    with serve(config) as (base, app):
        amz = Amz(base, app)
        amz.load(make_order(OID, status="SHIPPED"))
        item = amz.admin("GET", f"/orders/{OID}").json()["order"]["orderItems"][0]["orderItemId"]
        content = envelope("OrderAdjustment", adjustment(OID, item, "1.00"))
        feed_id = submit(amz, "POST_PAYMENT_ADJUSTMENT_DATA", content)
        token = amz.token
    assert json.loads(open(path, encoding="utf-8").read())["feeds"][feed_id]["finalStatus"] is None
    with serve(AmazonSandboxConfig(speed=100, state_file=path, initial_orders=5)) as (base, app):
        amz = Amz(base, app)
        assert len(amz.admin("GET", "/orders").json()["orders"]) == 6
        amz.admin("POST", f"/feeds/{feed_id}/complete")
        assert amz.get(f"/feeds/2021-06-30/feeds/{feed_id}", token=token).json()["processingStatus"] == "DONE"
    with serve(AmazonSandboxConfig(speed=100, state_file=path)) as (base, app):
        amz = Amz(base, app)
        amz.admin("POST", f"/feeds/{feed_id}/complete")
        assert len(amz.admin("GET", "/refunds").json()["refunds"]) == 1
        assert (
            len(
                amz.get(f"/finances/v0/orders/{OID}/financialEvents").json()["payload"]["FinancialEvents"][
                    "RefundEventList"
                ]
            )
            == 1
        )


def test_reset_clears_everything(amz):
    amz.admin("POST", "/orders/generate", json={"count": 3})
    amz.admin("POST", "/faults", json={"error_rate": 1.0, "operations": ["getOrder"]})
    assert amz.admin("POST", "/reset").status_code == 200
    assert amz.admin("GET", "/orders").json()["orders"] == []
    assert amz.admin("GET", "/faults").json()["error_rate"] == 0
    assert amz.search(lastUpdatedAfter=LONG_AGO).status_code == 403  # tokens are gone too


def test_generator_is_deterministic_and_valid():
    now = 1_780_000_000.0
    assert generate_orders(5, 20, now) == generate_orders(5, 20, now)
    skus = {c["sku"] for c in CATALOG}
    seen_status, seen_by, seen_currency = set(), set(), set()
    for seed in range(40):
        for order in generate_orders(seed, 8, now):
            validate(ORDERS_MODEL, "Order", order)
            a, b, c = order["orderId"].split("-")
            assert (len(a), len(b), len(c)) == (3, 7, 7) and order["orderId"].replace("-", "").isdigit()
            total = sum(Decimal(i["proceeds"]["proceedsTotal"]["amount"]) for i in order["orderItems"])
            assert Decimal(order["proceeds"]["grandTotal"]["amount"]) == total
            for item in order["orderItems"]:
                assert item["product"]["sellerSku"] in skus
                parts = sum(Decimal(b["subtotal"]["amount"]) for b in item["proceeds"]["breakdowns"])
                assert parts == Decimal(item["proceeds"]["proceedsTotal"]["amount"])
            seen_status.add(order["fulfillment"]["fulfillmentStatus"])
            seen_by.add(order["fulfillment"]["fulfilledBy"])
            seen_currency.add(order["proceeds"]["grandTotal"]["currencyCode"])
    assert seen_status == {"UNSHIPPED", "PENDING", "SHIPPED", "CANCELLED"}
    assert seen_by == {"MERCHANT", "AMAZON"} and seen_currency == {"USD", "CAD"}


def test_live_step_creates_orders_and_events(amz):
    amz.load(make_order(OID, status="PENDING"), make_order("113-0000001-0000002", fulfilled_by="AMAZON"))
    state = amz.state
    state.config.live_events = 20
    happened = live_step(state, random.Random(3))
    assert any(h.startswith("new ") for h in happened)
    assert any(not h.startswith("new ") for h in happened)
    for record in state.orders.values():
        validate(ORDERS_MODEL, "Order", record["order"])


def test_cli_flags_and_env(monkeypatch):
    monkeypatch.setenv("AMAZON_SANDBOX_PORT", "9999")
    args = parse_args(["--speed", "5", "--orders", "10", "--live", "--state-file", "/tmp/x.json"])
    assert (args.port, args.speed, args.orders, args.live, args.state_file) == (9999, 5.0, 10, True, "/tmp/x.json")
    assert args.host == "127.0.0.1" and US


def test_events_dated_in_the_past_with_at(amz):
    """``at`` dates a ship or refund event back (an out-of-process driver cannot reach the state)."""
    amz.load(make_order(OID))
    an_hour_ago = time.time() - 3600
    assert amz.admin("POST", f"/orders/{OID}/events", json={"type": "ship", "at": iso(an_hour_ago)}).status_code == 200
    assert amz.admin("POST", f"/orders/{OID}/events", json={"type": "refund", "at": iso(an_hour_ago + 60)}).ok
    order = amz.admin("GET", f"/orders/{OID}").json()["order"]
    assert order["lastUpdatedTime"] == iso(an_hour_ago + 60)
    assert order["packages"][0]["shipTime"] == iso(an_hour_ago)
    r = amz.get("/finances/v0/financialEvents", params={"PostedAfter": iso(an_hour_ago - 60)})
    assert len(r.json()["payload"]["FinancialEvents"]["RefundEventList"]) == 1  # past the 2-minute delay
    future = amz.admin("POST", f"/orders/{OID}/events", json={"type": "refund", "at": iso(time.time() + 600)})
    assert future.status_code == 400
    bad = amz.admin("POST", f"/orders/{OID}/events", json={"type": "refund", "at": "yesterday"})
    assert bad.status_code == 400
