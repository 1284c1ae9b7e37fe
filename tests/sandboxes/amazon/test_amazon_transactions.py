"""Finances 2024-06-19 listTransactions, and Finances v0 answering as a removed API."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from amazon_helpers import FINANCES_MODEL, US, make_order
from test_amazon_feeds import adjustment, envelope, submit

from sandboxes.amazon.util import iso
from sandboxes.swagger import validate

TRANSACTIONS_MODEL = "sp-api/models/finances_2024-06-19.json"
PATH = "/finances/2024-06-19/transactions"
OID = "113-0000001-0000001"


def transactions(amz, prefix: str = "", **params) -> tuple[dict, list[dict]]:
    r = amz.get(prefix + PATH, params=params)
    assert r.status_code == 200, r.text
    validate(TRANSACTIONS_MODEL, "ListTransactionsResponse", r.json())
    exact = json.loads(r.text, parse_float=Decimal)
    return exact["payload"], exact["payload"]["transactions"]


def ids(tx: dict) -> dict[str, str]:
    return {r["relatedIdentifierName"]: r["relatedIdentifierValue"] for r in tx["relatedIdentifiers"]}


def leaves(breakdowns: list[dict]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for b in breakdowns:
        if b["breakdowns"]:
            out.update(leaves(b["breakdowns"]))
        else:
            out[b["breakdownType"]] = b["breakdownAmount"]["currencyAmount"]
    return out


def shipped_and_refunded(amz, hours_ago: float = 1.0) -> tuple[dict, str]:
    """A shipped order with a feed refund of 2.50 Principal on its first item, all posted in the past."""
    amz.settings(deferral_rate=0)
    amz.load(make_order(OID))
    back = time.time() - hours_ago * 3600
    assert amz.admin("POST", f"/orders/{OID}/events", json={"type": "ship", "at": iso(back)}).ok
    order = amz.admin("GET", f"/orders/{OID}").json()["order"]
    item = order["orderItems"][0]["orderItemId"]
    feed_id = submit(amz, "POST_PAYMENT_ADJUSTMENT_DATA", envelope("OrderAdjustment", adjustment(OID, item, "2.50")))
    amz.admin("POST", f"/feeds/{feed_id}/complete")
    with amz.state.lock:
        amz.state.refunds[-1]["postedAt"] = back + 60
    return order, item


def test_shipment_and_feed_refund_as_amazon_shows_them(amz):
    order, item = shipped_and_refunded(amz)
    payload, txs = transactions(amz, postedAfter=iso(time.time() - 7200))
    assert "nextToken" not in payload
    assert [t["transactionType"] for t in txs] == ["Shipment", "Refund"]
    shipment, refund = txs
    for tx in txs:
        assert ids(tx)["ORDER_ID"] == OID and ids(tx)["FINANCIAL_EVENT_GROUP_ID"]
        assert tx["marketplaceDetails"] == {"marketplaceId": US, "marketplaceName": "Amazon.com"}
        assert tx["transactionStatus"] == "RELEASED" and len(tx["transactionId"]) == 43
        assert tx["totalAmount"]["currencyAmount"] == sum(i["totalAmount"]["currencyAmount"] for i in tx["items"])
    assert refund["description"] == "Refund Order" and ids(refund)["REFUND_ID"].startswith("amzn1:crow:")
    [line] = refund["items"]
    assert leaves(line["breakdowns"])["Principal"] == Decimal("-2.50")
    commission = leaves(line["breakdowns"])["Commission"]
    assert commission == Decimal("0.38") and leaves(line["breakdowns"])["RefundCommission"] == Decimal("-0.08")
    assert line["totalAmount"]["currencyAmount"] == Decimal("-2.50") + Decimal("0.38") - Decimal("0.08")
    [context] = line["contexts"]
    assert (context["sku"], context["fulfillmentNetwork"]) == (order["orderItems"][0]["product"]["sellerSku"], "MFN")
    adjustment_id = line["relatedIdentifiers"][0]
    assert adjustment_id["itemRelatedIdentifierName"] == "ORDER_ADJUSTMENT_ITEM_ID"
    assert adjustment_id["itemRelatedIdentifierValue"] != item  # Amazon's own id, not the order item id
    # nothing only the sandbox knows: the feed's MerchantAdjustmentItemID (CM-1) is not echoed
    text = json.dumps(txs, default=str)
    assert "CM-1" not in text and "merchantAdjustment" not in text
    # the shipment: what the buyer paid, Amazon's commission taken off
    paid = sum(Decimal(b["subtotal"]["amount"]) for i in order["orderItems"] for b in i["proceeds"]["breakdowns"])
    sales = next(b for b in shipment["breakdowns"] if b["breakdownType"] == "Sales")
    promos = sum(
        (
            b["breakdownAmount"]["currencyAmount"]
            for b in shipment["breakdowns"]
            if b["breakdownType"] == "PromoRebates"
        ),
        Decimal("0"),
    )
    assert sales["breakdownAmount"]["currencyAmount"] + promos == paid
    assert shipment["totalAmount"]["currencyAmount"] < paid


def test_amazon_side_refund_and_order_filter(amz):
    shipped_and_refunded(amz)
    back = time.time() - 1800
    assert amz.admin("POST", f"/orders/{OID}/events", json={"type": "refund", "at": iso(back)}).ok
    _, by_order = transactions(amz, relatedIdentifierName="ORDER_ID", relatedIdentifierValue=OID)
    assert [t["transactionType"] for t in by_order] == ["Shipment", "Refund", "Refund"]
    group = ids(by_order[0])["FINANCIAL_EVENT_GROUP_ID"]
    _, by_group = transactions(
        amz,
        relatedIdentifierName="FINANCIAL_EVENT_GROUP_ID",
        relatedIdentifierValue=group,
        postedAfter=iso(time.time() - 7200),
    )
    assert {t["transactionId"] for t in by_group} <= {t["transactionId"] for t in by_order} and by_group
    assert transactions(amz, relatedIdentifierName="ORDER_ID", relatedIdentifierValue="999-0000000-0000000")[1] == []


def test_parameter_rules(amz):
    amz.settings(rate_limits_enabled=False)
    now = time.time()
    cases = [
        ({}, "Start date cannot be null"),
        ({"postedAfter": iso(now - 30)}, "two minutes"),
        ({"postedAfter": iso(now - 7200), "postedBefore": iso(now - 60)}, "two minutes"),
        ({"postedAfter": iso(now - 3600), "postedBefore": iso(now - 7200)}, "later than"),
        ({"postedAfter": iso(now - 7200), "transactionStatus": "Released"}, "transactionStatus"),
        ({"relatedIdentifierName": "ORDER_ID"}, "together"),
        ({"relatedIdentifierName": "SHIPMENT_ID", "relatedIdentifierValue": "1"}, "filtering"),
        ({"postedAfter": "yesterday"}, "ISO 8601"),
        ({"postedAfter": iso(now - 7200), "nextToken": "garbage"}, "nextToken"),
        ({"postedAfter": iso(now - 7200), "marketplaceId": "NOTAMARKETPLACE"}, "marketplace"),
    ]
    for params, words in cases:
        r = amz.get(PATH, params=params)
        assert r.status_code == 400, (params, r.text)
        validate(TRANSACTIONS_MODEL, "ErrorList", r.json())
        error = r.json()["errors"][0]
        assert error["code"] == "InvalidInput" and words in error["message"] + error.get("details", ""), params
    other_region = amz.get(PATH, params={"postedAfter": iso(now - 7200), "marketplaceId": "A1PA6795UKMFR9"})
    assert other_region.status_code == 403
    shipped_and_refunded(amz, hours_ago=24 * 200)
    assert transactions(amz, postedAfter=iso(now - 86400 * 365), postedBefore=iso(now - 86400))[1] == []  # > 180 d
    assert len(transactions(amz, postedAfter=iso(now - 86400 * 201), postedBefore=iso(now - 86400 * 190))[1]) == 2


def test_deferred_then_released_over_time(amz):
    posted = int(time.time()) - 130  # past the 2-minute rule
    amz.settings(deferral_rate=1.0, deferral_seconds=133 * 100.0)  # / speed 100: matures ~3 s from now
    amz.load(make_order(OID))
    amz.admin("POST", f"/orders/{OID}/events", json={"type": "ship", "at": iso(posted)})
    amz.admin("POST", f"/orders/{OID}/events", json={"type": "refund", "at": iso(posted + 5)})
    after = iso(posted - 60)
    _, txs = transactions(amz, postedAfter=after)
    assert [t["transactionStatus"] for t in txs] == ["DEFERRED", "DEFERRED"]  # the refund follows its payment
    [context] = txs[0]["contexts"]
    assert (context["contextType"], context["deferralReason"]) == ("DeferredContext", "DD7")
    assert txs[1]["contexts"][0]["maturityDate"] == context["maturityDate"] == iso(posted + 133)
    assert transactions(amz, postedAfter=after, transactionStatus="RELEASED")[1] == []
    assert len(transactions(amz, postedAfter=after, transactionStatus="DEFERRED")[1]) == 2
    time.sleep(max(0.0, posted + 133 - time.time()) + 0.3)
    _, txs = transactions(amz, postedAfter=after)
    assert [t["transactionStatus"] for t in txs] == ["DEFERRED_RELEASED", "DEFERRED_RELEASED"]
    assert transactions(amz, postedAfter=after, transactionStatus="DEFERRED")[1] == []
    amz.settings(deferral_rate=0.0)  # not deferred at all: released at once
    assert {t["transactionStatus"] for t in transactions(amz, postedAfter=after)[1]} == {"RELEASED"}


def test_paging_with_next_token(amz):
    amz.settings(finances_page_size=2, deferral_rate=0)
    back = time.time() - 3600
    for n in range(1, 6):
        amz.load(make_order(f"113-0000001-000000{n}"))
        amz.admin("POST", f"/orders/113-0000001-000000{n}/events", json={"type": "ship", "at": iso(back + n)})
    after = iso(back - 60)
    seen, token, pages = [], None, 0
    while True:
        params = {"postedAfter": after, **({"nextToken": token} if token else {})}
        payload, txs = transactions(amz, **params)
        seen += [t["transactionId"] for t in txs]
        pages += 1
        token = payload.get("nextToken")
        if not token:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 5
    first = transactions(amz, postedAfter=after)[0]["nextToken"]
    other = amz.get(PATH, params={"postedAfter": iso(back - 120), "nextToken": first})
    assert other.status_code == 400 and "same arguments" in other.json()["errors"][0]["message"]


def test_us_merchant_fulfilled_orders_are_left_out_with_marketplace_id(amz):
    amz.settings(deferral_rate=0)
    back = time.time() - 3600
    amz.load(make_order("113-0000001-0000001"), make_order("113-0000001-0000002", fulfilled_by="AMAZON"))
    for oid in ("113-0000001-0000001", "113-0000001-0000002"):
        amz.admin("POST", f"/orders/{oid}/events", json={"type": "ship", "at": iso(back)})
    everything = transactions(amz, postedAfter=iso(back - 60))[1]
    assert {ids(t)["ORDER_ID"] for t in everything} == {"113-0000001-0000001", "113-0000001-0000002"}
    us_only = transactions(amz, postedAfter=iso(back - 60), marketplaceId=US)[1]
    assert [ids(t)["ORDER_ID"] for t in us_only] == ["113-0000001-0000002"]  # Amazon's documented quirk
    fba = us_only[0]["items"][0]
    assert fba["contexts"][0]["fulfillmentNetwork"] == "AFN" and "FBAPerUnitFulfillmentFee" in leaves(fba["breakdowns"])


def test_rate_limit_of_list_transactions(amz):
    amz.settings(speed=1.0)  # Amazon's own rate: 0.5 requests a second after a burst of 10
    codes, limits = [], set()
    for _ in range(11):
        r = amz.get(PATH, params={"postedAfter": iso(time.time() - 3600)})
        codes.append(r.status_code)
        limits.add(r.headers.get("x-amzn-RateLimit-Limit"))
    assert codes[:10] == [200] * 10 and codes[10] == 429 and limits == {"0.5"}


def test_yen_transactions_have_no_decimals(amz):
    amz.settings(deferral_rate=0)
    amz.admin("POST", "/orders/examples", json={"addMarketplaces": True})
    jp = "250-1234567-8901234"
    amz.admin("POST", f"/orders/{jp}/events", json={"type": "refund", "at": iso(time.time() - 600)})
    [refund] = transactions(amz, "/fe", relatedIdentifierName="ORDER_ID", relatedIdentifierValue=jp)[1]
    amounts = leaves(refund["breakdowns"])
    assert amounts["Principal"] == Decimal("-19940") and amounts["Commission"] == Decimal("2991")
    assert all(Decimal(v) == Decimal(v).to_integral_value() for v in amounts.values())
    assert transactions(amz, relatedIdentifierName="ORDER_ID", relatedIdentifierValue=jp)[1] == []  # not NA


@pytest.mark.parametrize("removed", [False, True])
def test_finances_v0_removed_switch(amz, removed):
    amz.settings(finances_v0_removed=removed)
    paths = [
        "/finances/v0/financialEvents",
        f"/finances/v0/orders/{OID}/financialEvents",
        "/finances/v0/financialEventGroups",
    ]
    answers = [amz.get(p, params={"PostedAfter": iso(time.time() - 3600)}) for p in paths]
    if removed:
        for r in answers:
            assert r.status_code == 404
            assert r.json() == {
                "errors": [{"code": "ResourceNotFound", "message": "Cannot find resource by the given URI"}]
            }
        stats = amz.admin("GET", "/stats").json()["operations"]
        assert stats["listFinancialEvents"]["removed"] == 1 and stats["listFinancialEventsByOrderId"]["removed"] == 1
    else:
        assert [r.status_code for r in answers[:2]] == [200, 200]
        validate(FINANCES_MODEL, "ListFinancialEventsResponse", answers[0].json())
    assert amz.get(PATH, params={"postedAfter": iso(time.time() - 3600)}).status_code == 200
