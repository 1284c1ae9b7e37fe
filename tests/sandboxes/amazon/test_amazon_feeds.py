"""Feeds API: documents, time-driven progression, the three order feeds and their reports."""

from __future__ import annotations

import gzip
import time
from decimal import Decimal

import requests
from amazon_helpers import FEEDS_MODEL, US, make_order
from defusedxml import ElementTree

from sandboxes.swagger import validate

OID = "113-0000001-0000001"


def envelope(message_type: str, *messages: str) -> bytes:
    body = "".join(f"<Message><MessageID>{i}</MessageID>{m}</Message>" for i, m in enumerate(messages, 1))
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><AmazonEnvelope><Header><DocumentVersion>1.01</DocumentVersion>'
        f"<MerchantIdentifier>A2SANDBOXSELLER1</MerchantIdentifier></Header>"
        f"<MessageType>{message_type}</MessageType>{body}</AmazonEnvelope>"
    ).encode()


def submit(amz, feed_type: str, content: bytes, content_type: str = "text/xml; charset=UTF-8") -> str:
    r = amz.post("/feeds/2021-06-30/documents", json={"contentType": content_type})
    assert r.status_code == 201
    validate(FEEDS_MODEL, "CreateFeedDocumentResponse", r.json())
    doc = r.json()
    assert requests.put(doc["url"], data=content, headers={"Content-Type": content_type}, timeout=5).status_code == 200
    r = amz.post(
        "/feeds/2021-06-30/feeds",
        json={"feedType": feed_type, "marketplaceIds": [US], "inputFeedDocumentId": doc["feedDocumentId"]},
    )
    assert r.status_code == 202, r.text
    validate(FEEDS_MODEL, "CreateFeedResponse", r.json())
    return r.json()["feedId"]


def finish(amz, feed_id: str) -> tuple[dict, list[dict]]:
    """Complete the feed now; return (Feed, [Result dicts from the processing report])."""
    assert amz.admin("POST", f"/feeds/{feed_id}/complete").status_code == 200
    feed = amz.get(f"/feeds/2021-06-30/feeds/{feed_id}").json()
    validate(FEEDS_MODEL, "Feed", feed)
    doc = amz.get(f"/feeds/2021-06-30/documents/{feed['resultFeedDocumentId']}").json()
    validate(FEEDS_MODEL, "FeedDocument", doc)
    content = requests.get(doc["url"], timeout=5).content
    if doc.get("compressionAlgorithm") == "GZIP":
        content = gzip.decompress(content)
    root = ElementTree.fromstring(content)
    assert root.findtext("MessageType") == "ProcessingReport"
    report = root.find("Message/ProcessingReport")
    assert report.findtext("DocumentTransactionID") == feed_id
    assert report.findtext("StatusCode") == "Complete"
    results = [
        {c.tag: (c.text if c.tag != "AdditionalInfo" else c.findtext("AmazonOrderID")) for c in r}
        for r in report.findall("Result")
    ]
    feed["summary"] = {c.tag: c.text for c in report.find("ProcessingSummary")}
    return feed, results


def ack(order_id: str, status: str, item: str | None = None, reason: str | None = None) -> str:
    items = (
        f"<Item><AmazonOrderItemCode>{item}</AmazonOrderItemCode>"
        f"{f'<CancelReason>{reason}</CancelReason>' if reason else ''}</Item>"
        if item
        else ""
    )
    return (
        f"<OrderAcknowledgement><AmazonOrderID>{order_id}</AmazonOrderID>"
        f"<MerchantOrderID>100000{order_id[-1]}</MerchantOrderID><StatusCode>{status}</StatusCode>{items}"
        "</OrderAcknowledgement>"
    )


def test_feed_progresses_with_time(amz):
    amz.load(make_order(OID))
    amz.settings(feed_stage_seconds=150)  # speed 100 -> 1.5 s per stage: every stage is seen, however slow a poll
    feed_id = submit(amz, "POST_ORDER_ACKNOWLEDGEMENT_DATA", envelope("OrderAcknowledgement", ack(OID, "Success")))
    seen = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        feed = amz.get(f"/feeds/2021-06-30/feeds/{feed_id}").json()
        validate(FEEDS_MODEL, "Feed", feed)
        if not seen or seen[-1] != feed["processingStatus"]:
            seen.append(feed["processingStatus"])
        if feed["processingStatus"] == "DONE":
            break
        time.sleep(0.05)
    assert seen == ["IN_QUEUE", "IN_PROGRESS", "DONE"]
    assert feed["resultFeedDocumentId"] and feed["processingEndTime"]
    aliases = amz.admin("GET", f"/orders/{OID}").json()["order"]["orderAliases"]
    assert aliases == [{"aliasId": "1000001", "aliasType": "SELLER_ORDER_ID"}]


def test_feed_document_errors(amz):
    assert amz.post("/feeds/2021-06-30/documents", json={}).status_code == 400
    doc = amz.post("/feeds/2021-06-30/documents", json={"contentType": "text/xml"}).json()
    not_uploaded = amz.post(
        "/feeds/2021-06-30/feeds",
        json={
            "feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA",
            "marketplaceIds": [US],
            "inputFeedDocumentId": doc["feedDocumentId"],
        },
    )
    assert not_uploaded.status_code == 400
    validate(FEEDS_MODEL, "ErrorList", not_uploaded.json())
    assert (
        requests.put(doc["url"], data=b"x", headers={"Content-Type": "application/json"}, timeout=5).status_code == 403
    )
    assert amz.get("/feeds/2021-06-30/feeds/123").status_code == 404
    assert amz.get("/feeds/2021-06-30/documents/nope").status_code == 404


def test_acknowledgement_cancels_and_reports_errors(amz):
    amz.load(
        make_order(OID),
        make_order("113-0000001-0000002", status="SHIPPED"),
        make_order("113-0000001-0000003", status="CANCELLED"),
    )
    item = amz.admin("GET", f"/orders/{OID}").json()["order"]["orderItems"][0]["orderItemId"]
    shipped_item = amz.admin("GET", "/orders/113-0000001-0000002").json()["order"]["orderItems"][0]["orderItemId"]
    feed_id = submit(
        amz,
        "POST_ORDER_ACKNOWLEDGEMENT_DATA",
        envelope(
            "OrderAcknowledgement",
            ack(OID, "Failure", item, "NoInventory"),
            ack("113-0000001-0000002", "Failure", shipped_item, "NoInventory"),
            ack("113-0000001-0000003", "Failure"),
            ack("999-0000000-0000000", "Success"),
        ),
    )
    feed, results = finish(amz, feed_id)
    assert feed["processingStatus"] == "DONE"
    assert feed["summary"] == {
        "MessagesProcessed": "4",
        "MessagesSuccessful": "2",
        "MessagesWithError": "2",
        "MessagesWithWarning": "1",
    }
    by_id = {r["MessageID"]: r for r in results}
    assert by_id["2"]["ResultCode"] == "Error" and "shipped" in by_id["2"]["ResultDescription"]
    assert by_id["2"]["AdditionalInfo"] == "113-0000001-0000002"
    assert by_id["3"]["ResultCode"] == "Warning"
    assert by_id["4"]["ResultCode"] == "Error" and "not found" in by_id["4"]["ResultDescription"]
    cancelled = amz.admin("GET", f"/orders/{OID}").json()["order"]
    assert cancelled["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    assert cancelled["orderItems"][0]["cancellation"]["cancellationExecution"] == {
        "cancelledBy": "MERCHANT",
        "cancelReason": "NoInventory",
    }
    assert (
        amz.admin("GET", "/orders/113-0000001-0000002").json()["order"]["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    )
    admin_feed = amz.admin("GET", "/feeds").json()["feeds"][0]
    assert admin_feed["status"] == "DONE" and len(admin_feed["messages"]) == 4 and admin_feed["report"]


def test_fulfillment_feed_ships(amz):
    amz.load(make_order(OID))
    order = amz.admin("GET", f"/orders/{OID}").json()["order"]
    item = order["orderItems"][0]
    message = (
        f"<OrderFulfillment><AmazonOrderID>{OID}</AmazonOrderID><MerchantFulfillmentID>SHIP-1"
        "</MerchantFulfillmentID><FulfillmentDate>2026-01-02T10:00:00Z</FulfillmentDate><FulfillmentData>"
        "<CarrierCode>USPS</CarrierCode><ShipperTrackingNumber>9400</ShipperTrackingNumber></FulfillmentData>"
        f"<Item><AmazonOrderItemCode>{item['orderItemId']}</AmazonOrderItemCode>"
        f"<Quantity>{item['quantityOrdered']}</Quantity></Item></OrderFulfillment>"
    )
    over = message.replace("SHIP-1", "SHIP-2")
    feed, results = finish(amz, submit(amz, "POST_ORDER_FULFILLMENT_DATA", envelope("OrderFulfillment", message, over)))
    assert [r["MessageID"] for r in results] == ["2"] and "exceeds" in results[0]["ResultDescription"]
    shipped = amz.admin("GET", f"/orders/{OID}").json()["order"]
    assert shipped["packages"][0]["packageReferenceId"] == "SHIP-1"
    assert shipped["packages"][0]["trackingNumber"] == "9400"
    assert shipped["orderItems"][0]["fulfillment"]["quantityFulfilled"] == item["quantityOrdered"]


def adjustment(order_id: str, item: str, amount: str, currency: str = "USD", merchant_id: str = "CM-1") -> str:
    return (
        f"<OrderAdjustment><AmazonOrderID>{order_id}</AmazonOrderID><ActionType>Refund</ActionType>"
        f"<AdjustedItem><AmazonOrderItemCode>{item}</AmazonOrderItemCode>"
        f"<MerchantAdjustmentItemID>{merchant_id}</MerchantAdjustmentItemID>"
        "<AdjustmentReason>CustomerReturn</AdjustmentReason><ItemPriceAdjustments>"
        f'<Component><Type>Principal</Type><Amount currency="{currency}">{amount}</Amount></Component>'
        "</ItemPriceAdjustments></AdjustedItem></OrderAdjustment>"
    )


def test_payment_adjustment_refunds_and_limits(amz):
    amz.load(make_order(OID, status="SHIPPED"), make_order("113-0000001-0000002", status="UNSHIPPED"))
    item = amz.admin("GET", f"/orders/{OID}").json()["order"]["orderItems"][0]
    other = amz.admin("GET", "/orders/113-0000001-0000002").json()["order"]["orderItems"][0]["orderItemId"]
    feed, results = finish(
        amz,
        submit(
            amz,
            "POST_PAYMENT_ADJUSTMENT_DATA",
            envelope(
                "OrderAdjustment",
                adjustment(OID, item["orderItemId"], "5.00"),
                adjustment(OID, item["orderItemId"], "99999.00", merchant_id="CM-2"),
                adjustment(OID, item["orderItemId"], "1.00", currency="CAD", merchant_id="CM-3"),
                adjustment(OID, "000", "1.00", merchant_id="CM-4"),
                adjustment("113-0000001-0000002", other, "1.00", merchant_id="CM-5"),
            ),
        ),
    )
    assert feed["processingStatus"] == "DONE"
    errors = {r["MessageID"]: r["ResultDescription"] for r in results}
    assert set(errors) == {"2", "3", "4", "5"}
    assert "exceeds the refundable amount" in errors["2"]
    assert "Currency CAD" in errors["3"]
    assert "not part of order" in errors["4"]
    assert "only shipped orders" in errors["5"]
    refunds = amz.admin("GET", "/refunds").json()["refunds"]
    assert len(refunds) == 1 and refunds[0]["source"] == "feed" and refunds[0]["feedId"] == feed["feedId"]
    assert refunds[0]["items"][0]["merchantAdjustmentItemId"] == "CM-1"


def components_adjustment(order_id: str, item: str, merchant_id: str, **components: str) -> str:
    parts = "".join(
        f'<Component><Type>{kind}</Type><Amount currency="USD">{amount}</Amount></Component>'
        for kind, amount in components.items()
    )
    return (
        f"<OrderAdjustment><AmazonOrderID>{order_id}</AmazonOrderID><ActionType>Refund</ActionType>"
        f"<AdjustedItem><AmazonOrderItemCode>{item}</AmazonOrderItemCode>"
        f"<MerchantAdjustmentItemID>{merchant_id}</MerchantAdjustmentItemID>"
        f"<AdjustmentReason>CustomerReturn</AdjustmentReason><ItemPriceAdjustments>{parts}"
        "</ItemPriceAdjustments></AdjustedItem></OrderAdjustment>"
    )


def test_payment_adjustment_caps_each_charge_component(amz):
    """Amazon refunds a charge at most as far as it was made on the item: a paid gift wrap refunded as Shipping is
    refused although the item's total would cover it; as GiftWrap it is accepted."""
    order = make_order(OID, status="SHIPPED")
    item = order["orderItems"][0]
    breakdowns = item["proceeds"]["breakdowns"]
    shipping = sum(Decimal(b["subtotal"]["amount"]) for b in breakdowns if b["type"] == "SHIPPING")
    breakdowns.append({"type": "GIFT_WRAP", "subtotal": {"amount": "3.99", "currencyCode": "USD"}})
    amz.load(order)
    code = item["orderItemId"]
    feed, results = finish(
        amz,
        submit(
            amz,
            "POST_PAYMENT_ADJUSTMENT_DATA",
            envelope(
                "OrderAdjustment",
                components_adjustment(OID, code, "CM-1", Shipping=str(shipping + Decimal("3.99"))),
                components_adjustment(OID, code, "CM-2", GiftWrap="4.00"),
                components_adjustment(
                    OID, code, "CM-3", **({"Shipping": str(shipping)} if shipping else {}), GiftWrap="3.99"
                ),
            ),
        ),
    )
    errors = {r["MessageID"]: r["ResultDescription"] for r in results}
    assert set(errors) == {"1", "2"}, errors
    assert "Shipping refund of" in errors["1"] and "exceeds the Shipping charged" in errors["1"]
    assert "GiftWrap refund of 4.00" in errors["2"]
    [refund] = amz.admin("GET", "/refunds").json()["refunds"]
    assert refund["items"][0]["merchantAdjustmentItemId"] == "CM-3"


def test_malformed_xml_is_fatal_and_compressed_report(amz):
    amz.settings(compress_reports=True)
    feed_id = submit(amz, "POST_ORDER_ACKNOWLEDGEMENT_DATA", b"<AmazonEnvelope><Message>")
    feed, results = finish(amz, feed_id)
    assert feed["processingStatus"] == "FATAL"
    assert results[0]["ResultCode"] == "Error" and "XML" in results[0]["ResultDescription"]
    wrong_type = submit(amz, "POST_ORDER_FULFILLMENT_DATA", envelope("OrderAcknowledgement", ack(OID, "Success")))
    assert finish(amz, wrong_type)[0]["processingStatus"] == "FATAL"


def test_unsupported_feed_type(amz):
    doc = amz.post("/feeds/2021-06-30/documents", json={"contentType": "text/xml"}).json()
    r = amz.post(
        "/feeds/2021-06-30/feeds",
        json={"feedType": "POST_PRODUCT_DATA", "marketplaceIds": [US], "inputFeedDocumentId": doc["feedDocumentId"]},
    )
    assert r.status_code == 400


def test_fulfillment_feed_carrier_rules(amz):
    """CarrierCode from Amazon's list is required; Other needs CarrierName (Amazon's 2021/2022 rule)."""
    orders = [make_order(f"113-0000001-000000{n}") for n in range(1, 5)]
    amz.load(*orders)

    def message(order, data):
        return (
            f"<OrderFulfillment><AmazonOrderID>{order['orderId']}</AmazonOrderID>"
            f"<FulfillmentDate>2026-01-02T10:00:00Z</FulfillmentDate><FulfillmentData>{data}</FulfillmentData>"
            "</OrderFulfillment>"
        )

    feed, results = finish(
        amz,
        submit(
            amz,
            "POST_ORDER_FULFILLMENT_DATA",
            envelope(
                "OrderFulfillment",
                message(orders[0], "<CarrierCode>Fedex</CarrierCode><ShipperTrackingNumber>1</ShipperTrackingNumber>"),
                message(orders[1], "<CarrierName>Some Courier</CarrierName>"),
                message(orders[2], "<CarrierCode>Other</CarrierCode>"),
                message(
                    orders[3],
                    "<CarrierCode>Other</CarrierCode><CarrierName>Some Courier</CarrierName>"
                    "<ShipperTrackingNumber>SC-1</ShipperTrackingNumber>",
                ),
            ),
        ),
    )
    errors = {r["MessageID"]: r["ResultDescription"] for r in results}
    assert set(errors) == {"1", "2", "3"}
    assert "not one of Amazon's carrier codes" in errors["1"]
    assert errors["2"] == "CarrierCode is required."
    assert errors["3"] == "CarrierName is required when CarrierCode is Other."
    shipped = amz.admin("GET", f"/orders/{orders[3]['orderId']}").json()["order"]
    assert shipped["packages"][0]["carrier"] == "Some Courier"
    assert (
        amz.admin("GET", f"/orders/{orders[0]['orderId']}").json()["order"]["fulfillment"]["fulfillmentStatus"]
        == "UNSHIPPED"
    )
