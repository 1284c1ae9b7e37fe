"""confirmShipment (Orders v0): transitions, packages, errors."""

from __future__ import annotations

from amazon_helpers import ORDERS_MODEL, ORDERS_V0, US, make_order

from sandboxes.swagger import validate

OID = "113-0000001-0000001"


def confirm(amz, ref, items, order_id=OID, **extra):
    body = {
        "marketplaceId": US,
        "packageDetail": {
            "packageReferenceId": ref,
            "carrierCode": "UPS",
            "shippingMethod": "UPS Ground",
            "trackingNumber": f"1Z{ref}",
            "shipDate": "2026-01-02T10:00:00Z",
            "orderItems": items,
            **extra,
        },
    }
    body["packageDetail"] = {k: v for k, v in body["packageDetail"].items() if v is not None}
    return amz.post(f"/orders/v0/orders/{order_id}/shipmentConfirmation", json=body)


def two_item_order():
    order = make_order(OID)
    item = order["orderItems"][0]
    order["orderItems"] = [
        dict(item, orderItemId="A1", quantityOrdered=2, fulfillment={"quantityFulfilled": 0, "quantityUnfulfilled": 2}),
        dict(item, orderItemId="B2", quantityOrdered=1, fulfillment={"quantityFulfilled": 0, "quantityUnfulfilled": 1}),
    ]
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
    assert (
        confirm(amz, "P2", [{"orderItemId": "A1", "quantity": 1}, {"orderItemId": "B2", "quantity": 1}]).status_code
        == 204
    )
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
    amz.load(
        two_item_order(),
        make_order("113-0000001-0000002", status="CANCELLED"),
        make_order("113-0000001-0000003", status="PENDING"),
    )
    assert "not found" in _error(
        confirm(amz, "X", [{"orderItemId": "A1", "quantity": 1}], order_id="999-9999999-9999999"), 404
    )
    cancelled = amz.admin("GET", "/orders/113-0000001-0000002").json()["order"]["orderItems"][0]["orderItemId"]
    assert "cancelled" in _error(
        confirm(amz, "X", [{"orderItemId": cancelled, "quantity": 1}], order_id="113-0000001-0000002"), 400
    )
    pending = amz.admin("GET", "/orders/113-0000001-0000003").json()["order"]["orderItems"][0]["orderItemId"]
    assert "PENDING" in _error(
        confirm(amz, "X", [{"orderItemId": pending, "quantity": 1}], order_id="113-0000001-0000003"), 400
    )
    assert "not part of order" in _error(confirm(amz, "X", [{"orderItemId": "ZZ", "quantity": 1}]), 400)
    assert "exceeds the unshipped quantity" in _error(confirm(amz, "X", [{"orderItemId": "A1", "quantity": 3}]), 400)
    assert confirm(amz, "P1", [{"orderItemId": "B2", "quantity": 1}]).status_code == 204
    assert "already been confirmed" in _error(confirm(amz, "P1", [{"orderItemId": "A1", "quantity": 1}]), 400)
    assert "exceeds" in _error(confirm(amz, "P9", [{"orderItemId": "B2", "quantity": 1}]), 400)
    missing_carrier = amz.post(
        f"/orders/v0/orders/{OID}/shipmentConfirmation",
        json={"marketplaceId": US, "packageDetail": {"packageReferenceId": "Q"}},
    )
    assert "Invalid" in _error(missing_carrier, 400)
    # nothing of the rejected requests was applied
    order = amz.admin("GET", f"/orders/{OID}").json()["order"]
    assert [p["packageReferenceId"] for p in order["packages"]] == ["P1"]
    assert order["orderItems"][0]["fulfillment"]["quantityFulfilled"] == 0


def _detail(r) -> str:
    error = r.json()["errors"][0]
    return f"{error['message']} {error.get('details', '')}"


def test_carrier_code_must_be_on_amazons_list(amz):
    amz.load(two_item_order())
    wrong_case = confirm(amz, "P1", [{"orderItemId": "B2", "quantity": 1}], carrierCode="Fedex")
    assert "not one of Amazon's carrier codes" in _detail(wrong_case) and wrong_case.status_code == 400
    validate(ORDERS_V0, "ConfirmShipmentErrorResponse", wrong_case.json())
    other_without_name = confirm(amz, "P1", [{"orderItemId": "B2", "quantity": 1}], carrierCode="Other")
    assert other_without_name.status_code == 400 and "carrierName is required" in _detail(other_without_name)
    assert amz.admin("GET", f"/orders/{OID}").json()["order"].get("packages") is None  # nothing applied
    unlisted = confirm(
        amz, "P1", [{"orderItemId": "B2", "quantity": 1}], carrierCode="Other", carrierName="Paquetería Ejemplo"
    )
    assert unlisted.status_code == 204
    listed = confirm(
        amz, "P2", [{"orderItemId": "A1", "quantity": 1}], carrierCode="Amazon Shipping", carrierName="Amazon Shipping"
    )  # a name beside a listed code is allowed (Amazon's example)
    assert listed.status_code == 204
    packages = amz.admin("GET", f"/orders/{OID}").json()["order"]["packages"]
    assert [p["carrier"] for p in packages] == ["Paquetería Ejemplo", "Amazon Shipping"]


def test_carrier_list_is_amazons_data_file():
    import json

    from sandboxes.amazon.carriers import CARRIER_CODES, DATA_FILE

    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    assert data["retrieved"] and data["sources"] and len(data["carrierCodes"]) == len(set(data["carrierCodes"]))
    assert {
        "UPS",
        "USPS",
        "FedEx",
        "DHL",
        "Canada Post",
        "Royal Mail",
        "Amazon Shipping",
        "OnTrac",
        "Correios",
        "Japan Post",
        "India Post",
        "Aras Kargo",
        "Emirates Post",
        "Other",
    } <= CARRIER_CODES
    assert not {"Fedex", "UPS Ground", "other", "AMZN_US"} & CARRIER_CODES


def test_confirmed_in_seller_central_then_confirm_shipment_is_refused(amz):
    """Issue 13 §4: the seller confirmed the order in Seller Central with UPS 1Z999AA10123456784; a
    confirmShipment with the same carrier and tracking then finds nothing left to ship."""
    order = make_order(OID)
    amz.load(order)
    items = [{"orderItemId": i["orderItemId"], "quantity": i["quantityOrdered"]} for i in order["orderItems"]]
    r = amz.admin(
        "POST",
        f"/orders/{OID}/events",
        json={"type": "ship", "packages": [{"carrier": "UPS", "trackingNumber": "1Z999AA10123456784"}]},
    )  # items default to everything left
    assert r.status_code == 200, r.text
    shipped = amz.get(f"/orders/2026-01-01/orders/{OID}", params={"includedData": "FULFILLMENT,PACKAGES"}).json()
    validate(ORDERS_MODEL, "GetOrderResponse", shipped)
    assert shipped["order"]["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert [(p["carrier"], p["trackingNumber"]) for p in shipped["order"]["packages"]] == [
        ("UPS", "1Z999AA10123456784")
    ]
    again = amz.post(
        f"/orders/v0/orders/{OID}/shipmentConfirmation",
        json={
            "marketplaceId": US,
            "packageDetail": {
                "packageReferenceId": "7",
                "carrierCode": "UPS",
                "trackingNumber": "1Z999AA10123456784",
                "shipDate": "2026-01-02T10:00:00Z",
                "orderItems": items,
            },
        },
    )
    assert "exceeds the unshipped quantity 0" in _error(again, 400)


def test_seller_central_shipment_without_package_data(amz):
    amz.load(make_order(OID))
    assert amz.admin("POST", f"/orders/{OID}/events", json={"type": "ship", "packageData": "no"}).status_code == 400
    r = amz.admin("POST", f"/orders/{OID}/events", json={"type": "ship", "packageData": False})
    assert r.status_code == 200, r.text
    order = amz.get(f"/orders/2026-01-01/orders/{OID}", params={"includedData": "FULFILLMENT,PACKAGES"}).json()
    validate(ORDERS_MODEL, "GetOrderResponse", order)
    assert order["order"]["fulfillment"]["fulfillmentStatus"] == "SHIPPED" and "packages" not in order["order"]
    assert all(i["fulfillment"]["quantityUnfulfilled"] == 0 for i in order["order"]["orderItems"])
    item = order["order"]["orderItems"][0]
    assert "exceeds the unshipped quantity 0" in _error(
        confirm(amz, "1", [{"orderItemId": item["orderItemId"], "quantity": 1}]), 400
    )


def test_package_data_arrives_later_for_units_shipped_without_it(amz):
    """A Seller Central confirmation completed later: ``packages`` gains the units already shipped without package
    data; nothing ships again; units beyond those (or never shipped) are refused."""
    amz.load(two_item_order())
    assert amz.admin("POST", f"/orders/{OID}/events", json={"type": "package_data"}).status_code == 400  # unshipped
    r = amz.admin("POST", f"/orders/{OID}/events", json={"type": "ship", "packageData": False})
    assert r.status_code == 200, r.text
    too_many = {
        "type": "package_data",
        "packages": [{"carrier": "UPS", "items": [{"orderItemId": "A1", "quantity": 3}]}],
    }
    assert amz.admin("POST", f"/orders/{OID}/events", json=too_many).status_code == 400
    event = {
        "type": "package_data",
        "packages": [
            {"carrier": "UPS", "trackingNumber": "1ZLATE0001", "items": [{"orderItemId": "A1", "quantity": 2}]}
        ],
    }
    assert amz.admin("POST", f"/orders/{OID}/events", json=event).status_code == 200
    order = amz.get(f"/orders/2026-01-01/orders/{OID}", params={"includedData": "FULFILLMENT,PACKAGES"}).json()
    validate(ORDERS_MODEL, "GetOrderResponse", order)
    [package] = order["order"]["packages"]
    assert package["trackingNumber"] == "1ZLATE0001"
    assert package["packageItems"] == [{"orderItemId": "A1", "quantity": 2}]
    assert order["order"]["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert [i["fulfillment"]["quantityFulfilled"] for i in order["order"]["orderItems"]] == [2, 1]
    rest = amz.admin("POST", f"/orders/{OID}/events", json={"type": "package_data"})  # default: all that is left
    assert rest.status_code == 200
    assert rest.json()["order"]["packages"][1]["packageItems"] == [{"orderItemId": "B2", "quantity": 1}]
    assert amz.admin("POST", f"/orders/{OID}/events", json={"type": "package_data"}).status_code == 400
