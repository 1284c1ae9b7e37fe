"""Orders: create rules, uniqueness, and the invoice/ship/refund/cancel/hold state machine."""

from __future__ import annotations

from decimal import Decimal

from commerce_helpers import order_entity, sc, to_wire, validate

from sandboxes.commerce.wire import dumps


def _items(order):
    return {i["sku"]: i for i in order["items"]}


def test_create_assigns_ids_and_keeps_given_amounts(client):
    order = client.create_order()
    assert order["entity_id"] == 1 and order["increment_id"] == "000000001"
    assert (order["state"], order["status"]) == ("new", "pending")
    assert order["grand_total"] == 32.26 and order["store_id"] == 1
    assert order["created_at"] and order["updated_at"]
    assert [i["item_id"] for i in order["items"]] == [1, 2]
    assert _items(order)["SKU-1"]["ext_order_item_id"].startswith("AMZ-ITEM-")
    assert order["ext_order_id"].startswith("111-")
    assert order["billing_address"]["address_type"] == "billing"
    shipping = order["extension_attributes"]["shipping_assignments"][0]["shipping"]
    assert shipping["method"] == "flatrate_flatrate" and shipping["address"]["city"] == "Seattle"
    assert order["status_histories"][0]["comment"] == "Imported from Amazon"
    second = client.create_order()
    assert second["increment_id"] == "000000002"
    # No stock effect: POST /V1/orders places no reservation.
    assert client.get("/V1/inventory/get-product-salable-quantity/SKU-1/1").json() == 50
    fetched = client.get(f"/V1/orders/{order['entity_id']}").json()
    assert fetched["increment_id"] == "000000001" and fetched["items"][0]["sku"] == "SKU-1"


def test_money_survives_as_exact_decimals(client):
    body = order_entity(grand_total=Decimal("1234567.89"), base_grand_total=Decimal("1234567.89"))
    response = client.session.post(
        client.url("/V1/orders"),
        data=dumps({"entity": body}),
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    assert '"grand_total":1234567.89' in response.text
    stored = client.app.state.sandbox.orders[response.json()["entity_id"]]
    assert stored["grand_total"] == Decimal("1234567.89") and isinstance(stored["items"][0]["price"], Decimal)


def test_increment_id_store_pair_is_unique_but_ext_order_id_is_not(client):
    client.create_order(increment_id="AMZ-100", ext_order_id="111-DUP")
    dup = client.post("/V1/orders", {"entity": order_entity(increment_id="AMZ-100")})
    assert dup.status_code == 400
    assert dup.json() == {"message": "Unique constraint violation found"}
    # Same increment id in another store is allowed.
    other_store = client.post("/V1/orders", {"entity": order_entity(increment_id="AMZ-100", store_id=2)})
    assert other_store.status_code == 200, other_store.text
    client.create_order(ext_order_id="111-DUP")
    found = client.get("/V1/orders", params=sc([("ext_order_id", "111-DUP", "eq")])).json()
    assert found["total_count"] == 2


def test_values_longer_than_their_column_are_refused_and_nothing_is_saved(client):
    """sales_order.customer_taxvat and sales_order_payment.po_number are varchar(32): strict MySQL refuses more."""
    fits = order_entity(customer_taxvat="D" * 32)
    fits["payment"]["po_number"] = "P" * 32
    assert client.post("/V1/orders", {"entity": fits}).status_code == 200
    before = len(client.app.state.sandbox.orders)
    long_vat = order_entity(customer_taxvat="D" * 33)
    long_po = order_entity()
    long_po["payment"]["po_number"] = "P" * 33
    for body in (long_vat, long_po):
        response = client.post("/V1/orders", {"entity": body})
        assert response.status_code == 500 and response.json()["message"].startswith("Internal Error.")
    assert len(client.app.state.sandbox.orders) == before


def test_second_store_view_uses_its_own_sequence(client):
    order = client.session.post(
        client.url("/V1/orders", store="ca_en"), json={"entity": to_wire(order_entity())}, timeout=5
    ).json()
    assert order["store_id"] == 2 and order["increment_id"] == "2000000001"
    assert order["base_currency_code"] == "USD"  # given in the body, kept


def test_required_fields_and_unknown_properties(client):
    cases = {
        "items": order_entity(items=[]),
        "customer_email": {k: v for k, v in order_entity().items() if k != "customer_email"},
        "grand_total": {k: v for k, v in order_entity().items() if k != "grand_total"},
        "payment.method": order_entity(payment={"additional_information": []}),
    }
    for field, entity in cases.items():
        resp = client.post("/V1/orders", {"entity": entity})
        assert resp.status_code == 400, field
        assert resp.json() == {
            "message": '"%fieldName" is required. Enter and try again.',
            "parameters": {"fieldName": field},
        }
    resp = client.post("/V1/orders", {"entity": order_entity(amazon_order_id="x")})
    assert resp.status_code == 400 and resp.json()["parameters"][0] == "amazon_order_id"
    resp = client.post("/V1/orders", {"entity": order_entity(grand_total="ten")})
    assert resp.status_code == 400 and "type is invalid" in resp.json()["message"]
    assert client.post("/V1/orders", {}).status_code == 400
    assert client.app.state.sandbox.orders == {}


def test_get_unknown_order_is_404(client):
    resp = client.get("/V1/orders/999")
    assert resp.status_code == 404
    assert resp.json() == {"message": "The entity that was requested doesn't exist. Verify the entity and try again."}


def test_invoice_then_ship_completes_then_refund_closes(client):
    order = client.create_order()
    oid, ids = order["entity_id"], {i["sku"]: i["item_id"] for i in order["items"]}
    invoice_id = client.post(f"/V1/order/{oid}/invoice", {"capture": True, "notify": False}).json()
    assert isinstance(invoice_id, int)
    order = client.get(f"/V1/orders/{oid}").json()
    assert (order["state"], order["status"]) == ("processing", "processing")
    assert order["total_invoiced"] == 32.26 and order["total_paid"] == 32.26 and order["total_due"] == 0
    invoice = client.get(f"/V1/invoice/{invoice_id}").json()
    assert invoice["grand_total"] == 32.26 and invoice["shipping_amount"] == 4.99 and invoice["total_qty"] == 3

    # Over-invoicing is refused once everything is invoiced.
    again = client.post(f"/V1/order/{oid}/invoice", {"items": [{"order_item_id": ids["SKU-1"], "qty": 1}]})
    assert again.status_code == 400 and "does not allow an invoice" in again.json()["message"]

    ship1 = client.post(
        f"/V1/order/{oid}/ship",
        {
            "items": [{"order_item_id": ids["SKU-1"], "qty": 2}],
            "tracks": [{"track_number": "1Z1", "title": "UPS", "carrier_code": "ups"}],
        },
    )
    assert ship1.status_code == 200
    assert client.get(f"/V1/orders/{oid}").json()["state"] == "processing"
    over = client.post(f"/V1/order/{oid}/ship", {"items": [{"order_item_id": ids["SKU-2"], "qty": 2}]})
    assert over.status_code == 400
    assert over.json()["message"] == (
        "Shipment Document Validation Error(s):\nThe order does not allow a shipment to be created."
    )
    assert client.post(f"/V1/order/{oid}/ship", {"items": [{"order_item_id": ids["SKU-2"], "qty": 1}]}).ok
    order = client.get(f"/V1/orders/{oid}").json()
    assert (order["state"], order["status"]) == ("complete", "complete")
    shipment = client.get(f"/V1/shipment/{ship1.json()}").json()
    assert shipment["tracks"][0]["track_number"] == "1Z1" and shipment["items"][0]["qty"] == 2

    # Cancel is impossible now.
    assert client.post(f"/V1/orders/{oid}/cancel").json() is False

    # Partial refund: 1 × SKU-1, no shipping → 10.00 + 0.80 tax.
    memo_id = client.post(
        f"/V1/order/{oid}/refund",
        {"items": [{"order_item_id": ids["SKU-1"], "qty": 1}], "arguments": {"shipping_amount": 0}},
    ).json()
    memo = client.get(f"/V1/creditmemo/{memo_id}").json()
    assert memo["subtotal"] == 10.00 and memo["tax_amount"] == 0.80 and memo["grand_total"] == 10.80
    assert client.get(f"/V1/orders/{oid}").json()["state"] == "complete"
    # Too much shipping (Creditmemo\Total\Shipping::collect, the base amount formatted in the base currency).
    too_much = client.post(
        f"/V1/order/{oid}/refund",
        {"items": [{"order_item_id": ids["SKU-2"], "qty": 1}], "arguments": {"shipping_amount": 10}},
    )
    assert too_much.status_code == 400
    assert too_much.json() == {"message": "Maximum shipping amount allowed to refund is: %1", "parameters": ["$4.99"]}
    # Over-refund of qty.
    over_qty = client.post(f"/V1/order/{oid}/refund", {"items": [{"order_item_id": ids["SKU-1"], "qty": 2}]})
    assert over_qty.status_code == 400 and "unrefunded quantity" in over_qty.json()["message"]
    # The rest (items omitted = everything left, with the remaining shipping) closes the order.
    rest_id = client.post(f"/V1/order/{oid}/refund", {"arguments": {"adjustment_negative": 1}}).json()
    rest = client.get(f"/V1/creditmemo/{rest_id}").json(parse_float=Decimal)
    assert rest["grand_total"] == Decimal("32.26") - Decimal("10.80") - 1
    assert rest["adjustment_negative"] == Decimal("1.00") and rest["shipping_amount"] == Decimal("4.99")
    order = client.get(f"/V1/orders/{oid}").json()
    assert order["state"] == "closed"
    assert order["total_refunded"] == 31.26
    refunded_again = client.post(f"/V1/order/{oid}/refund", {"arguments": {"adjustment_positive": 1}})
    assert refunded_again.status_code == 400


def test_refund_only_what_was_invoiced_and_return_to_stock(client):
    order = client.create_order()
    oid, ids = order["entity_id"], {i["sku"]: i["item_id"] for i in order["items"]}
    not_paid = client.post(f"/V1/order/{oid}/refund", {"items": [{"order_item_id": ids["SKU-1"], "qty": 1}]})
    assert not_paid.status_code == 400 and "does not allow a creditmemo" in not_paid.json()["message"]
    client.post(f"/V1/order/{oid}/invoice", {"items": [{"order_item_id": ids["SKU-1"], "qty": 1}]})
    order = client.get(f"/V1/orders/{oid}").json(parse_float=Decimal)
    assert order["state"] == "processing" and order["total_invoiced"] == Decimal("15.79")
    over = client.post(f"/V1/order/{oid}/refund", {"items": [{"order_item_id": ids["SKU-1"], "qty": 2}]})
    assert over.status_code == 400
    resp = client.post(
        f"/V1/order/{oid}/refund",
        {
            "items": [{"order_item_id": ids["SKU-1"], "qty": 1}],
            "arguments": {"shipping_amount": 0, "extension_attributes": {"return_to_stock_items": [ids["SKU-1"]]}},
        },
    )
    assert resp.status_code == 200, resp.text
    assert client.get("/V1/inventory/get-product-salable-quantity/SKU-1/1").json() == 51


def test_ship_before_invoice_moves_to_processing_then_invoice_completes(client):
    order = client.create_order()
    oid = order["entity_id"]
    assert client.post(f"/V1/order/{oid}/ship", {}).status_code == 200
    assert client.get(f"/V1/orders/{oid}").json()["state"] == "processing"
    assert client.post(f"/V1/order/{oid}/ship", {}).status_code == 400  # nothing left to ship
    assert client.post(f"/V1/order/{oid}/invoice", {}).status_code == 200
    assert client.get(f"/V1/orders/{oid}").json()["state"] == "complete"


def test_cancel_rules(client):
    order = client.create_order()
    oid = order["entity_id"]
    assert client.post(f"/V1/orders/{oid}/cancel").json() is True
    order = client.get(f"/V1/orders/{oid}").json()
    assert (order["state"], order["status"]) == ("canceled", "canceled")
    assert [i["qty_canceled"] for i in order["items"]] == [2, 1]
    assert client.post(f"/V1/orders/{oid}/cancel").json() is False  # already canceled
    assert client.post(f"/V1/order/{oid}/invoice", {}).status_code == 400
    ship = client.post(f"/V1/order/{oid}/ship", {})
    assert ship.status_code == 400 and "does not allow a shipment" in ship.json()["message"]

    invoiced = client.create_order()
    client.post(f"/V1/order/{invoiced['entity_id']}/invoice", {})
    assert client.post(f"/V1/orders/{invoiced['entity_id']}/cancel").json() is False  # fully invoiced

    partly = client.create_order()
    first_item = partly["items"][0]["item_id"]
    client.post(f"/V1/order/{partly['entity_id']}/invoice", {"items": [{"order_item_id": first_item, "qty": 2}]})
    assert client.post(f"/V1/orders/{partly['entity_id']}/cancel").json() is True
    partly = client.get(f"/V1/orders/{partly['entity_id']}").json()
    assert partly["state"] == "processing"  # invoiced items remain to ship/refund
    assert [i["qty_canceled"] for i in partly["items"]] == [0, 1]


def test_hold_and_unhold(client):
    oid = client.create_order()["entity_id"]
    assert client.post(f"/V1/orders/{oid}/hold").json() is True
    held = client.get(f"/V1/orders/{oid}").json()
    assert (held["state"], held["status"]) == ("holded", "holded") and held["hold_before_state"] == "new"
    assert client.post(f"/V1/orders/{oid}/hold").status_code == 400
    assert client.post(f"/V1/order/{oid}/invoice", {}).status_code == 400
    assert client.post(f"/V1/order/{oid}/ship", {}).status_code == 400
    assert client.post(f"/V1/orders/{oid}/cancel").json() is False
    assert client.post(f"/V1/orders/{oid}/unhold").json() is True
    back = client.get(f"/V1/orders/{oid}").json()
    assert (back["state"], back["status"]) == ("new", "pending")
    assert client.post(f"/V1/orders/{oid}/unhold").status_code == 400


def test_comments(client):
    oid = client.create_order()["entity_id"]
    resp = client.post(
        f"/V1/orders/{oid}/comments",
        {
            "statusHistory": {
                "comment": "Shipped via Amazon",
                "is_customer_notified": 0,
                "is_visible_on_front": 0,
                "parent_id": oid,
            }
        },
    )
    assert resp.json() is True
    comments = client.get(f"/V1/orders/{oid}/comments").json()
    assert comments["total_count"] == 2 and comments["items"][0]["comment"] == "Shipped via Amazon"
    assert (
        client.post(
            f"/V1/orders/{oid}/comments",
            {
                "statusHistory": {
                    "comment": "x",
                    "is_customer_notified": 0,
                    "is_visible_on_front": 0,
                    "parent_id": oid,
                    "status": "fraud",
                }
            },
        ).json()
        is True
    )
    assert client.get(f"/V1/orders/{oid}").json()["status"] == "fraud"


def test_order_address_repository_updates_an_address_of_the_order(client):
    """PUT /V1/orders/{parent_id}: OrderAddressRepositoryInterface::save, as the official schema has it."""
    order = client.create_order()
    other = client.create_order()
    billing = client.get(f"/V1/orders/{order['entity_id']}").json()["billing_address"]
    changed = {**billing, "firstname": "Erased", "lastname": "Erased", "street": ["Erased"], "telephone": "0"}
    saved = client.put(f"/V1/orders/{order['entity_id']}", {"entity": changed})
    assert saved.status_code == 200, saved.text
    validate("sales-data-order-address-interface", saved.json())
    again = client.get(f"/V1/orders/{order['entity_id']}").json()
    assert again["billing_address"]["firstname"] == "Erased" and again["billing_address"]["street"] == ["Erased"]
    assert again["billing_address"]["city"] == billing["city"]
    # idempotent; the path's order wins over a parent_id in the body; another order's address is not found
    assert client.put(f"/V1/orders/{order['entity_id']}", {"entity": changed}).status_code == 200
    assert client.put(f"/V1/orders/{other['entity_id']}", {"entity": changed}).status_code == 404
    # Magento's order address validator checks presence (hasData), not emptiness; a refused address is wrapped
    without_lastname = {k: v for k, v in changed.items() if k != "lastname"}
    refused = client.put(f"/V1/orders/{order['entity_id']}", {"entity": without_lastname})
    assert refused.status_code == 400 and refused.json() == {"message": "The order address couldn't be saved."}
    assert client.put(f"/V1/orders/{order['entity_id']}", {"entity": {**changed, "lastname": ""}}).status_code == 200
    assert client.put(f"/V1/orders/{order['entity_id']}", {"entity": {**changed, "nickname": "x"}}).status_code == 400
    assert client.put("/V1/orders/999999", {"entity": changed}).status_code == 404
