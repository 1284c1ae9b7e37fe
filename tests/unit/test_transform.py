"""The pure transform, table-driven: Amazon order in, Commerce order out (no Airflow, no HTTP)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from amazon_commerce_sync import buyer_data, shipments, transform
from amazon_commerce_sync.settings import AccountSettings

ACCOUNT = AccountSettings(
    account_id="us", marketplace_ids=("ATVPDKIKX0DER",), import_orders_after=datetime(2026, 1, 1, tzinfo=UTC)
)
PRODUCTS = {"SKU-A": {"id": 1, "name": "Product A"}, "SKU-B": {"id": 2, "name": "Product B"}}


def m(amount: str, currency: str = "USD") -> dict:
    return {"amount": amount, "currencyCode": currency}


def item(
    item_id="1001",
    sku="SKU-A",
    qty=2,
    unit="10.00",
    shipping=None,
    item_tax=None,
    ship_tax=None,
    discount=None,
    currency="USD",
):
    breakdowns = [{"type": "ITEM", "subtotal": m(str(Decimal(unit) * qty), currency)}]
    if shipping:
        breakdowns.append({"type": "SHIPPING", "subtotal": m(shipping, currency)})
    if item_tax or ship_tax:
        details = [{"subtype": "ITEM", "value": m(item_tax or "0.00", currency)}]
        if ship_tax:
            details.append({"subtype": "SHIPPING", "value": m(ship_tax, currency)})
        total_tax = Decimal(item_tax or "0") + Decimal(ship_tax or "0")
        breakdowns.append({"type": "TAX", "subtotal": m(str(total_tax), currency), "detailedBreakdowns": details})
    if discount:
        breakdowns.append({"type": "DISCOUNT", "subtotal": m(f"-{discount}", currency)})
    return {
        "orderItemId": item_id,
        "quantityOrdered": qty,
        "product": {"sellerSku": sku, "title": f"Title {sku}", "price": {"unitPrice": m(unit, currency)}},
        "proceeds": {"breakdowns": breakdowns},
    }


def order(*items, total=None, status="UNSHIPPED", fulfilled_by="MERCHANT", buyer=None, address=None, currency="USD"):
    items = list(items) or [item()]
    if total is None:
        total = str(
            sum(
                (Decimal(b["subtotal"]["amount"]) for i in items for b in i["proceeds"]["breakdowns"]),
                Decimal(0),
            )
        )
    return {
        "orderId": "113-1234567-7654321",
        "createdTime": "2026-11-01T10:00:00Z",
        "lastUpdatedTime": "2026-11-01T10:05:00Z",
        "salesChannel": {"channelName": "AMAZON", "marketplaceId": "ATVPDKIKX0DER"},
        "fulfillment": {
            "fulfillmentStatus": status,
            "fulfilledBy": fulfilled_by,
            "fulfillmentServiceLevel": "Expedited",
        },
        "proceeds": {"grandTotal": m(total, currency)},
        "buyer": buyer
        if buyer is not None
        else {"buyerName": "José Müller", "buyerEmail": "abc@marketplace.amazon.com"},
        "recipient": {
            "deliveryAddress": address
            if address is not None
            else {
                "name": "José Müller",
                "addressLine1": "Hauptstraße 5",
                "city": "Köln",
                "postalCode": "50667",
                "countryCode": "US",
                "stateOrRegion": "NY",
                "phone": "+1 555 0100",
            }
        },
        "orderItems": items,
    }


def build(o, account=ACCOUNT, customer=None):
    amounts = transform.order_amounts(o)
    return amounts, transform.build_order(o, amounts, account, products=PRODUCTS, customer=customer)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([item()], {"subtotal": "20.00", "shipping_amount": "0", "tax_amount": "0", "grand_total": "20.00"}),
        (
            [item(shipping="4.99", item_tax="1.60", ship_tax="0.40")],
            {
                "subtotal": "20.00",
                "shipping_amount": "4.99",
                "tax_amount": "2.00",
                "grand_total": "26.99",
                "shipping_tax_amount": "0.40",
            },
        ),
        (
            [item(discount="5.00", item_tax="1.20"), item("1002", "SKU-B", 1, "3.33", shipping="1.00")],
            {"subtotal": "23.33", "discount_amount": "-5.00", "tax_amount": "1.20", "grand_total": "20.53"},
        ),
        # many cents: exact, no float drift
        ([item(qty=3, unit="0.10"), item("1002", "SKU-B", 7, "0.20")], {"subtotal": "1.70", "grand_total": "1.70"}),
    ],
)
def test_amounts_match_amazon_to_the_cent(items, expected):
    amounts, entity = build(order(*items))
    for field, value in expected.items():
        assert Decimal(str(entity[field])) == Decimal(value), field
    assert entity["grand_total"] == amounts.grand_total
    assert (
        entity["subtotal"] + entity["shipping_amount"] + entity["tax_amount"] + entity["discount_amount"]
        == entity["grand_total"]
    )
    assert all(isinstance(entity[k], Decimal) for k in ("subtotal", "grand_total", "tax_amount"))


def test_keys_for_later_sync():
    o = order(item("A1"), item("A2", "SKU-B", 1, "5.00"))
    _, entity = build(o)
    assert entity["ext_order_id"] == "113-1234567-7654321"
    assert [i["ext_order_item_id"] for i in entity["items"]] == ["A1", "A2"]
    assert "Amazon order 113-1234567-7654321" in entity["payment"]["additional_information"]
    assert entity["extension_attributes"]["shipping_assignments"][0]["shipping"]["method"] == "amazon_expedited"
    assert "increment_id" not in entity  # Commerce numbers it by default
    amazon_numbers = AccountSettings(**{**ACCOUNT.__dict__, "order_number_source": "amazon"})
    assert build(o, amazon_numbers)[1]["increment_id"] == "113-1234567-7654321"


def test_sku_mapping_and_customer_account():
    account = AccountSettings(**{**ACCOUNT.__dict__, "sku_map": {"SKU-A": "SKU-B"}})
    _, entity = build(order(), account, customer={"id": 9, "email": "c@example.test", "group_id": 1})
    assert entity["items"][0]["sku"] == "SKU-B" and entity["items"][0]["product_id"] == 2
    assert (entity["customer_id"], entity["customer_is_guest"], entity["customer_email"]) == (9, 0, "c@example.test")
    _, guest = build(order())
    assert guest["customer_is_guest"] == 1 and "customer_id" not in guest


@pytest.mark.parametrize(
    ("buyer", "address", "first", "last", "company"),
    [
        ({"buyerName": "Zoë Ørsted-Ñuñez"}, {"name": "Zoë Ørsted-Ñuñez", "city": "Århus"}, "Zoë", "Ørsted-Ñuñez", None),
        ({"buyerName": "Cher"}, {"name": "Cher"}, "Cher", "-", None),
        ({}, {"companyName": "ACME Ltd", "addressLine1": "1 Road"}, "ACME", "Ltd", "ACME Ltd"),
        ({}, {"city": "Seattle", "countryCode": "US"}, "Amazon", "Customer", None),  # FBA: no name, no street
        ({"buyerName": "山田 太郎"}, {"name": "山田 太郎"}, "山田", "太郎", None),
    ],
)
def test_names_and_addresses_are_handled_not_quarantined(buyer, address, first, last, company):
    _, entity = build(order(buyer=buyer, address=address))
    billing = entity["billing_address"]
    assert (billing["firstname"], billing["lastname"]) == (first, last)
    assert billing.get("company") == company
    for field in ("street", "city", "postcode", "telephone", "country_id"):
        assert billing[field], field
    assert entity["customer_email"].endswith(("@marketplace.amazon.com", ".invalid"))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda o: o.update(orderItems=[]), "no items"),
        (lambda o: o["proceeds"]["grandTotal"].update(amount="99.99"), "do not add up"),
        (lambda o: o["orderItems"][0].update(quantityOrdered=0), "quantity"),
        (lambda o: o["orderItems"][0].update(quantityOrdered=10**6), "quantity"),
        (lambda o: o["orderItems"][0]["product"].update(sellerSku=None), "SKU"),
        (lambda o: o["orderItems"][0]["proceeds"]["breakdowns"][0]["subtotal"].update(amount="abc"), "decimal"),
        (lambda o: o["orderItems"][0]["proceeds"]["breakdowns"][0]["subtotal"].update(currencyCode="EUR"), "currency"),
        (lambda o: o["orderItems"][0]["proceeds"]["breakdowns"][0]["subtotal"].update(amount="1e12"), "out of range"),
        (lambda o: o["orderItems"].append(copy.deepcopy(o["orderItems"][0])), "repeated orderItemId"),
        (lambda o: o["recipient"]["deliveryAddress"].update(name="x" * 300), "characters long"),
        (lambda o: o["proceeds"]["grandTotal"].update(currencyCode="usd"), "currency"),
    ],
)
def test_malformed_orders_get_a_clear_reason(mutate, reason):
    o = order()
    mutate(o)
    with pytest.raises(transform.MalformedOrder, match=reason):
        build(o)


def test_pii_split_and_cancel_request():
    o = order()
    o["orderItems"][0]["cancellation"] = {"cancellationRequest": {"requester": "BUYER", "cancelReason": "x"}}
    stripped = buyer_data.strip_pii(o)
    assert "buyer" not in stripped and "recipient" not in stripped
    assert "Müller" not in str(stripped)
    assert buyer_data.extract_pii(o)["buyer_name"] == "José Müller"
    assert transform.buyer_cancel_requested(o)
    assert not transform.buyer_cancel_requested(order())


def test_packages_map_to_commerce_items():
    o = order(item("A1"), item("A2", "SKU-B", 1, "5.00"))
    o["packages"] = [
        {
            "packageReferenceId": "1",
            "carrier": "UPS",
            "trackingNumber": "1Z1",
            "packageStatus": {"status": "SHIPPED"},
            "packageItems": [{"orderItemId": "A1", "quantity": 2}],
        },
        {
            "packageReferenceId": "2",
            "packageStatus": {"status": "CANCELLED"},
            "packageItems": [{"orderItemId": "A2", "quantity": 1}],
        },
    ]
    [(package, items)] = shipments.ship_items_from_packages(shipments.amazon_packages(o), {"A1": 11, "A2": 12})
    assert (package.carrier, package.tracking_number, items) == ("UPS", "1Z1", [{"order_item_id": 11, "qty": 2}])


def test_every_generated_sandbox_order_adds_up():
    """Cross-check with an independent producer: the Amazon sandbox's generator."""
    from sandboxes.amazon.generator import generate_orders

    orders = generate_orders(seed=3, count=300, now=datetime(2026, 11, 1, tzinfo=UTC).timestamp())
    for o in orders:
        if not o.get("proceeds"):
            continue
        amounts = transform.order_amounts(o)
        assert amounts.grand_total == Decimal(o["proceeds"]["grandTotal"]["amount"]), o["orderId"]
        products = {i["product"]["sellerSku"]: {"id": 1} for i in o["orderItems"]}
        entity = transform.build_order(o, amounts, ACCOUNT, products=products)
        assert entity["grand_total"] == amounts.grand_total


def test_payload_conforms_to_adobes_order_schema():
    """What we POST to /V1/orders is a valid sales-data-order-interface (Adobe's official OpenAPI)."""
    import json

    from sandboxes.swagger import validate

    for o in (
        order(item(shipping="4.99", item_tax="1.60", ship_tax="0.40", discount="2.00")),
        order(buyer={}, address={"city": "Seattle"}, fulfilled_by="AMAZON", status="SHIPPED"),
    ):
        _, entity = build(o, customer=None)
        wire = json.loads(json.dumps(entity, default=lambda d: float(d)))
        validate("commerce/adobe-commerce-admin-openapi-2.4.9.json", "sales-data-order-interface", wire)


def test_staged_payload_keeps_no_contact_details_from_the_buyers_cancel_reason():
    from amazon_commerce_sync.buyer_data import strip_pii

    request = {"requester": "BUYER", "cancelReason": "Wrong size, mail me at a.b@example.test or +44 20 7946 0958"}
    order = {
        "orderId": "111-0000001-0000001",
        "buyer": {"buyerEmail": "a.b@example.test"},
        "orderItems": [{"orderItemId": "1", "cancellation": {"cancellationRequest": request}}, {"orderItemId": "2"}],
    }
    staged = strip_pii(order)
    reason = staged["orderItems"][0]["cancellation"]["cancellationRequest"]["cancelReason"]
    assert reason == "Wrong size, mail me at <email> or <number>"
    assert "buyer" not in staged and staged["orderItems"][1] == {"orderItemId": "2"}
    assert order["orderItems"][0]["cancellation"]["cancellationRequest"]["cancelReason"].endswith("0958")  # untouched


def test_gift_messages_are_buyer_data_kept_apart_and_put_back():
    from amazon_commerce_sync.buyer_data import extract_pii, strip_pii, with_gift_messages

    gift = {"giftMessage": "Happy birthday, Anna", "giftWrapLevel": "Classic"}
    order = {
        "orderId": "111-0000001-0000001",
        "orderItems": [
            {"orderItemId": "11", "fulfillment": {"packing": {"giftOption": gift}}},
            {"orderItemId": "12", "fulfillment": {"packing": {}}},
        ],
    }
    staged = strip_pii(order)
    assert "Anna" not in repr(staged)
    assert staged["orderItems"][0]["fulfillment"]["packing"]["giftOption"] == {"giftWrapLevel": "Classic"}
    messages = extract_pii(order)["gift_messages"]
    assert messages == {"11": "Happy birthday, Anna"}
    assert with_gift_messages(staged, messages) == order
    assert extract_pii({"orderItems": [{"orderItemId": "1"}]})["gift_messages"] is None
