"""confirmShipment (Orders v0): transitions, packages, errors."""

from __future__ import annotations

from amazon_helpers import ORDERS_MODEL, ORDERS_V0, US, make_order

from sandboxes.swagger import validate

OID = "113-0000001-0000001"


def confirm(amz, ref, items, order_id=OID, **extra):
    body = {"marketplaceId": US, "packageDetail": {
        "packageReferenceId": ref, "carrierCode": "UPS", "shippingMethod": "UPS Ground",
        "trackingNumber": f"1Z{ref}", "shipDate": "2026-01-02T10:00:00Z", "orderItems": items, **extra}}
    return amz.post(f"/orders/v0/orders/{order_id}/shipmentConfirmation", json=body)


def two_item_order():
    order = make_order(OID)
    item = order["orderItems"][0]
    order["orderItems"] = [dict(item, orderItemId="A1", quantityOrdered=2,
                                fulfillment={"quantityFulfilled": 0, "quantityUnfulfilled": 2}),
                           dict(item, orderItemId="B2", quantityOrdered=1,
                                fulfillment={"quantityFulfilled": 0, "quantityUnfulfilled": 1})]
    return order


def test_partial_then_full_shipment(amz):
    amz.load(two_item_order())
    r = confirm(amz, "P1", [{"orderItemId": "A1", "quantity": 1}])
    assert r.status_code == 204 and r.content == b""
    assert r.headers["x-amzn-RateLimit-Limit"] == "200"
    order = amz.get(f"/orders/2026-01-01/orders/{OID}", params={"includedData": "FULFILLMENT,PACKAGES"}).json()
    validate(ORDERS_MODEL, "GetOrderResponse", order)
    order = order["order"]
    assert order["fulfillment"]["fulfillmentStatus"] == "PARTIALLY_SHIPPED"
    assert order["orderItems"][0]["fulfillment"] == {"quantityFulfilled": 1, "quantityUnfulfilled": 1}
    assert order["packages"][0]["carrier"] == "UPS" and order["packages"][0]["trackingNumber"] == "1ZP1"
    assert order["packages"][0]["packageItems"] == [{"orderItemId": "A1", "quantity": 1}]
    assert confirm(amz, "P2", [{"orderItemId": "A1", "quantity": 1}, {"orderItemId": "B2", "quantity": 1}]
                   ).status_code == 204
    final = amz.admin("GET", f"/orders/{OID}").json()["order"]
    assert final["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert final["lastUpdatedTime"] > order["createdTime"]
    confirmations = amz.admin("GET", "/shipment-confirmations").json()["confirmations"]
    assert [c["body"]["packageDetail"]["packageReferenceId"] for c in confirmations] == ["P1", "P2"]
    assert confirmations[0]["orderId"] == OID


def _error(r, status):
    assert r.status_code == status, r.text
    validate(ORDERS_V0, "ConfirmShipmentErrorResponse", r.json())
    return r.json()["errors"][0]["message"]


def test_confirm_shipment_errors(amz):
    amz.load(two_item_order(), make_order("113-0000001-0000002", status="CANCELLED"),
             make_order("113-0000001-0000003", status="PENDING"))
    assert "not found" in _error(confirm(amz, "X", [{"orderItemId": "A1", "quantity": 1}],
                                         order_id="999-9999999-9999999"), 404)
    cancelled = amz.admin("GET", "/orders/113-0000001-0000002").json()["order"]["orderItems"][0]["orderItemId"]
    assert "cancelled" in _error(confirm(amz, "X", [{"orderItemId": cancelled, "quantity": 1}],
                                         order_id="113-0000001-0000002"), 400)
    pending = amz.admin("GET", "/orders/113-0000001-0000003").json()["order"]["orderItems"][0]["orderItemId"]
    assert "PENDING" in _error(confirm(amz, "X", [{"orderItemId": pending, "quantity": 1}],
                                       order_id="113-0000001-0000003"), 400)
    assert "not part of order" in _error(confirm(amz, "X", [{"orderItemId": "ZZ", "quantity": 1}]), 400)
    assert "exceeds the unshipped quantity" in _error(confirm(amz, "X", [{"orderItemId": "A1", "quantity": 3}]),
                                                      400)
    assert confirm(amz, "P1", [{"orderItemId": "B2", "quantity": 1}]).status_code == 204
    assert "already been confirmed" in _error(confirm(amz, "P1", [{"orderItemId": "A1", "quantity": 1}]), 400)
    assert "exceeds" in _error(confirm(amz, "P9", [{"orderItemId": "B2", "quantity": 1}]), 400)
    missing_carrier = amz.post(f"/orders/v0/orders/{OID}/shipmentConfirmation",
                               json={"marketplaceId": US, "packageDetail": {"packageReferenceId": "Q"}})
    assert "Invalid" in _error(missing_carrier, 400)
    # nothing of the rejected requests was applied
    order = amz.admin("GET", f"/orders/{OID}").json()["order"]
    assert [p["packageReferenceId"] for p in order["packages"]] == ["P1"]
    assert order["orderItems"][0]["fulfillment"]["quantityFulfilled"] == 0
