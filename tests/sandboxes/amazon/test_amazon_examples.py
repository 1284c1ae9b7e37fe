"""Amazon's example orders (the model's x-amzn-api-sandbox blocks and examples), loaded as they are."""

from __future__ import annotations

import copy

from amazon_helpers import ORDERS_MODEL

from sandboxes.amazon.examples import describe, example_orders
from sandboxes.amazon.marketplaces import region_of
from sandboxes.swagger import load_model, validate

ALL_DATA = "BUYER,RECIPIENT,PROCEEDS,EXPENSE,PROMOTION,CANCELLATION,FULFILLMENT,PACKAGES,TAX,PAYMENT,FULFILLMENT_ORDERS"
# The examples of the model in reference/ (orders_2026-01-01.json, models commit 34dc93fe45f3).
KNOWN = {
    "123-4567890-1234567",
    "250-1234567-8901234",
    "202-7654321-1098765",
    "171-2345678-9012345",
    "202-1234567-8901234",
    "171-9876543-2109876",
    "028-1234567-8901234",
    "114-9876543-1234567",
}


def test_every_example_order_is_found_and_valid():
    orders = example_orders()
    assert {o["orderId"] for o in orders} == KNOWN and len(orders) == len(KNOWN)
    for order in orders:
        validate(ORDERS_MODEL, "Order", order)
    facts = {d["orderId"]: d for d in map(describe, orders)}
    fba = facts["250-1234567-8901234"]
    assert (fba["fulfilledBy"], fba["currency"], fba["grandTotal"]) == ("AMAZON", "JPY", "19940")
    assert "packages" in fba["absent"]
    assert "buyer" in facts["114-9876543-1234567"]["absent"]
    assert facts["123-4567890-1234567"]["itemsAddUp"] is False  # a 5.00 order-level delivery tip
    assert {d["currency"] for d in facts.values()} == {"USD", "JPY", "GBP", "BRL", "TRY"}


def test_new_examples_in_a_later_model_are_picked_up():
    model = copy.deepcopy(load_model(ORDERS_MODEL))
    extra = copy.deepcopy(example_orders()[0])
    extra["orderId"] = "999-0000000-0000001"
    duplicate = copy.deepcopy(example_orders()[0])
    duplicate["buyer"] = {"buyerName": "someone else"}
    model["paths"]["/orders/2026-01-01/orders/{orderId}/later"] = {
        "get": {
            "responses": {
                "200": {
                    "x-amzn-api-sandbox": {"dynamic": [{"request": {}, "response": {"order": extra}}]},
                    "examples": {"application/json": {"orders": [duplicate]}},
                }
            }
        }
    }
    ids = [o["orderId"] for o in example_orders(model)]
    assert ids.count(duplicate["orderId"]) == 1 and "999-0000000-0000001" in ids and len(ids) == len(KNOWN) + 1
    first = next(o for o in example_orders(model) if o["orderId"] == duplicate["orderId"])
    assert first["buyer"] != {"buyerName": "someone else"}  # the first occurrence wins


def test_examples_are_served_back_unchanged(amz):
    refused = amz.admin("POST", "/orders/examples", json={})
    assert refused.status_code == 400 and "does not sell in" in refused.json()["errors"][0]["message"]
    r = amz.admin("POST", "/orders/examples", json={"addMarketplaces": True})
    assert r.status_code == 200, r.text
    assert set(r.json()["orderIds"]) == KNOWN
    examples = {o["orderId"]: o for o in example_orders()}
    served = {}
    for prefix in ("", "/eu", "/fe"):  # NA (US, BR), EU (GB, TR), FE (JP)
        body = amz.get(
            f"{prefix}/orders/2026-01-01/orders",
            params={"createdAfter": "2024-01-01T00:00:00Z", "includedData": ALL_DATA},
        ).json()
        validate(ORDERS_MODEL, "SearchOrdersResponse", body)
        served.update({o["orderId"]: o for o in body["orders"]})
    assert served == examples
    for order_id, example in examples.items():
        prefix = {"NA": "", "EU": "/eu", "FE": "/fe"}[region_of(example["salesChannel"]["marketplaceId"])]
        got = amz.get(f"{prefix}/orders/2026-01-01/orders/{order_id}", params={"includedData": ALL_DATA}).json()
        validate(ORDERS_MODEL, "GetOrderResponse", got)
        assert got["order"] == example


def test_examples_take_part_in_events_with_their_currencys_decimals(amz):
    amz.admin("POST", "/orders/examples", json={"addMarketplaces": True})
    jp = "250-1234567-8901234"  # Amazon-fulfilled, JPY, shipped
    half_yen = amz.admin(
        "POST",
        f"/orders/{jp}/events",
        json={
            "type": "refund",
            "items": [{"orderItemId": "25012345678901", "components": [{"type": "Principal", "amount": "100.50"}]}],
        },
    )
    assert half_yen.status_code == 400 and "more decimals than JPY" in half_yen.json()["errors"][0]["message"]
    refund = amz.admin("POST", f"/orders/{jp}/events", json={"type": "refund"}).json()["refund"]
    assert [c["amount"] for i in refund["items"] for c in i["components"]] == ["5980", "13960"]
    events = amz.get(f"/fe/finances/v0/orders/{jp}/financialEvents").json()["payload"]["FinancialEvents"]
    assert [
        c["ChargeAmount"]["CurrencyAmount"]
        for e in events["RefundEventList"]
        for line in e["ShipmentItemAdjustmentList"]
        for c in line["ItemChargeAdjustmentList"]
    ] == [-5980, -13960]
    br = "171-9876543-2109876"  # merchant-fulfilled, BRL, unshipped
    r = amz.post(
        f"/orders/v0/orders/{br}/shipmentConfirmation",
        json={
            "marketplaceId": "A2Q3Y263D00KWC",
            "packageDetail": {
                "packageReferenceId": "1",
                "carrierCode": "Correios",
                "trackingNumber": "BR123456789BR",
                "shipDate": "2024-12-26T10:00:00Z",
                "orderItems": [{"orderItemId": "17198765432109", "quantity": 1}],
            },
        },
    )
    assert r.status_code == 204, r.text
    assert amz.admin("GET", f"/orders/{br}").json()["order"]["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
