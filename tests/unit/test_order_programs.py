"""Amazon programs on the Commerce order (``order_programs``), table-driven: business buyers, marketplace
facilitator tax, Prime and deadlines, replacements, gift options. No Airflow, no HTTP."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from amazon_commerce_sync import buyer_data, order_programs, transform
from amazon_commerce_sync.settings import AccountSettings

ACCOUNT = AccountSettings(
    account_id="us", marketplace_ids=("ATVPDKIKX0DER",), import_orders_after=datetime(2026, 1, 1, tzinfo=UTC)
)
EXCLUDE = dataclasses.replace(ACCOUNT, marketplace_facilitator_tax="exclude")
PRODUCTS = {"SKU-A": {"id": 1, "name": "Product A"}, "SKU-B": {"id": 2, "name": "Product B"}}
D = Decimal


def m(amount: str, currency: str = "USD") -> dict:
    return {"amount": amount, "currencyCode": currency}


def item(
    item_id="1", sku="SKU-A", price="20.00", shipping="5.00", item_tax="2.00", ship_tax="0.50", wrap=None, **extra
):
    """One item of quantity 1; ``wrap`` = (gift wrap charge, its tax); ``extra``: more item fields (``tax``)."""
    breakdowns = [{"type": "ITEM", "subtotal": m(price)}, {"type": "SHIPPING", "subtotal": m(shipping)}]
    details = [{"subtype": "ITEM", "value": m(item_tax)}, {"subtype": "SHIPPING", "value": m(ship_tax)}]
    total_tax = D(item_tax) + D(ship_tax)
    if wrap:
        breakdowns.append({"type": "GIFT_WRAP", "subtotal": m(wrap[0])})
        details.append({"subtype": "GIFT_WRAP", "value": m(wrap[1])})
        total_tax += D(wrap[1])
    breakdowns.append({"type": "TAX", "subtotal": m(str(total_tax)), "detailedBreakdowns": details})
    return {
        "orderItemId": item_id,
        "quantityOrdered": 1,
        "product": {"sellerSku": sku, "title": sku, "price": {"unitPrice": m(price)}},
        "proceeds": {"breakdowns": breakdowns},
        **extra,
    }


def order(*items, **extra):
    items = list(items) or [item()]
    total = sum((D(b["subtotal"]["amount"]) for i in items for b in i["proceeds"]["breakdowns"]), D(0))
    return {
        "orderId": "113-1234567-7654321",
        "salesChannel": {"marketplaceId": "ATVPDKIKX0DER"},
        "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"},
        "proceeds": {"grandTotal": m(str(total))},
        "buyer": {"buyerName": "Ann Lee", "buyerEmail": "ann@marketplace.amazon.com"},
        "recipient": {"deliveryAddress": {"name": "Ann Lee", "addressLine1": "1 Main St", "countryCode": "US"}},
        "orderItems": items,
        **extra,
    }


def build(o, account=ACCOUNT, **kw):
    amounts = transform.order_amounts(o)
    return amounts, transform.build_order(o, amounts, account, products=PRODUCTS, **kw)


def comments(entity) -> list[str]:
    return [h["comment"] for h in entity.get("status_histories") or []]


def assert_adds_up(entity):
    """Magento's totals: grand = subtotal + shipping + tax - discount (+ adjustment); tax = items' + shipping's."""
    grand = (
        D(entity["subtotal"])
        + D(entity["shipping_amount"])
        + D(entity["tax_amount"])
        + D(entity["discount_amount"])
        + D(entity.get("adjustment_positive", 0))
    )
    assert grand == D(entity["grand_total"]) == D(entity["payment"]["amount_ordered"])
    assert sum(D(i["tax_amount"]) for i in entity["items"]) + D(entity["shipping_tax_amount"]) == D(
        entity["tax_amount"]
    )
    assert D(entity["shipping_incl_tax"]) == D(entity["shipping_amount"]) + D(entity["shipping_tax_amount"])


# -- Amazon Business ------------------------------------------------------------------------------
VAT = {"entityType": "BUYER", "taxRegistrationType": "VAT", "taxRegistrationNumber": "DE123456789", "legalName": "X"}


@pytest.mark.parametrize(
    ("extra", "po", "taxvat"),
    [
        ({}, None, None),
        ({"programs": ["AMAZON_BUSINESS"]}, None, None),
        ({"programs": ["AMAZON_BUSINESS"], "tax": {"taxRegistrations": [VAT]}}, None, "DE123456789"),
        (
            {
                "programs": ["AMAZON_BUSINESS"],
                "tax": {
                    "taxRegistrations": [
                        {"entityType": "MARKETPLACE", "taxRegistrationNumber": "LU20260743"},
                        {
                            "entityType": "BUYER",
                            "taxRegistrationType": "CNPJ",
                            "taxRegistrationNumber": "12345678000199",
                        },
                    ]
                },
            },
            None,
            "12345678000199",
        ),
        (
            {"tax": {"taxRegistrations": [{**VAT, "taxRegistrationType": "CPF", "taxRegistrationNumber": "123"}]}},
            None,
            "123",
        ),
        ({"tax": {"taxRegistrations": [{**VAT, "entityType": "MERCHANT"}]}}, None, None),
        ({"programs": ["AMAZON_BUSINESS"], "po": "PO-4711"}, "PO-4711", None),
    ],
)
def test_business_purchase_order_and_tax_registration(extra, po, taxvat):
    extra = dict(extra)
    o = order(**{k: v for k, v in extra.items() if k != "po"})
    if extra.get("po"):
        o["buyer"]["buyerPurchaseOrderNumber"] = extra["po"]
    _, entity = build(o)
    assert entity["payment"].get("po_number") == po
    assert entity.get("customer_taxvat") == taxvat
    assert entity["billing_address"].get("vat_id") == taxvat
    shipping_address = entity["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"]
    assert "vat_id" not in shipping_address
    notes = " ".join(comments(entity))
    assert ("Amazon Business order." in notes) == ("AMAZON_BUSINESS" in extra.get("programs", []))
    if po:
        assert f"Purchase order number: {po}." in notes
        assert f"Purchase order {po}" in entity["payment"]["additional_information"]
    if taxvat and "AMAZON_BUSINESS" in extra.get("programs", []):
        assert taxvat in notes


def test_values_longer_than_magentos_columns_stay_in_the_comment_only():
    """customer_taxvat and po_number are varchar(32) in Magento: a longer value is not sent there."""
    o = order(
        programs=["AMAZON_BUSINESS"],
        tax={"taxRegistrations": [{**VAT, "taxRegistrationNumber": "X" * 33}]},
    )
    o["buyer"]["buyerPurchaseOrderNumber"] = "P" * 33
    _, entity = build(o)
    assert "po_number" not in entity["payment"] and "customer_taxvat" not in entity
    assert entity["billing_address"]["vat_id"] == "X" * 33  # a text column
    notes = " ".join(comments(entity))
    assert "P" * 33 in notes and "X" * 33 in notes
    assert f"Purchase order {'P' * 33}" in entity["payment"]["additional_information"]


@pytest.mark.parametrize(
    ("programs", "email", "placeholder"),
    [
        ([], "ann@marketplace.amazon.com", False),
        (["AMAZON_BUSINESS"], "buyer@marketplace.amazon.de", False),
        (["AMAZON_BUSINESS", "INVOICE_BY_AMAZON"], "no-reply-amazon-iba-buyer@marketplace.amazon.de", True),
        (["AMAZON_BUSINESS"], "No-Reply-Amazon-IBA-Buyer@marketplace.amazon.fr", True),
        (["INVOICE_BY_AMAZON"], None, True),
    ],
)
def test_placeholder_business_buyer(programs, email, placeholder):
    o = order(programs=programs)
    o["buyer"] = {"buyerName": "Amazon Business EU SARL", **({"buyerEmail": email} if email else {})}
    assert order_programs.placeholder_buyer(o) is placeholder


@pytest.mark.parametrize(
    ("address", "names"),
    [
        # the recipient's name: kept
        ({"name": "Erika Muster", "companyName": "Muster GmbH"}, ("Erika", "Muster")),
        # no recipient name: the company, never Amazon's stand-in name
        ({"companyName": "Muster GmbH"}, ("Muster", "GmbH")),
        ({}, ("Amazon", "Customer")),
    ],
)
def test_invoice_by_amazon_orders_never_carry_amazons_stand_in_name(address, names):
    o = order(programs=["AMAZON_BUSINESS", "INVOICE_BY_AMAZON"])
    o["buyer"] = {
        "buyerName": "Amazon Business EU SARL",
        "buyerEmail": "no-reply-amazon-iba-buyer@marketplace.amazon.de",
    }
    o["recipient"]["deliveryAddress"] = {"addressLine1": "Hauptstraße 1", "countryCode": "DE", **address}
    _, entity = build(o)
    shipping = entity["extension_attributes"]["shipping_assignments"][0]["shipping"]["address"]
    for first, last in (
        (entity["customer_firstname"], entity["customer_lastname"]),
        (entity["billing_address"]["firstname"], entity["billing_address"]["lastname"]),
        (shipping["firstname"], shipping["lastname"]),
    ):
        assert (first, last) == names


def test_the_purchase_order_number_is_kept_with_the_buyer_data():
    o = order(programs=["AMAZON_BUSINESS"])
    o["buyer"]["buyerPurchaseOrderNumber"] = "PO-1"
    assert "buyer" not in buyer_data.strip_pii(o)
    assert buyer_data.extract_pii(o)["buyer_purchase_order"] == "PO-1"
    assert buyer_data.extract_pii(order())["buyer_purchase_order"] is None


# -- marketplace facilitator tax ------------------------------------------------------------------
def facilitated(party="Amazon Services LLC", item_id="1", **kw):
    return item(
        item_id=item_id, tax={"taxCollections": [{"model": "MARKETPLACE_FACILITATOR", "responsibleParty": party}]}, **kw
    )


@pytest.mark.parametrize(
    ("items", "account", "grand", "tax", "excluded", "note"),
    [
        # include (default): what the buyer paid, with a comment
        (
            [facilitated()],
            ACCOUNT,
            "27.50",
            "2.50",
            None,
            "Tax of 2.50 USD on this order was collected by Amazon Services LLC",
        ),
        ([facilitated(party="")], ACCOUNT, "27.50", "2.50", None, "collected by Amazon as marketplace facilitator"),
        # exclude: no such tax on the order; the difference in a comment and the audit detail
        (
            [facilitated()],
            EXCLUDE,
            "25.00",
            "0.00",
            "2.50",
            "Tax of 2.50 USD collected and remitted by Amazon Services LLC",
        ),
        # only the facilitated item's tax is taken off
        ([facilitated(), item(item_id="2", sku="SKU-B")], EXCLUDE, "52.50", "2.50", "2.50", "the buyer paid 55.00 USD"),
        ([item()], EXCLUDE, "27.50", "2.50", None, None),
    ],
)
def test_marketplace_facilitator_tax(items, account, grand, tax, excluded, note):
    o = order(*items)
    amounts, entity = build(o, account)
    assert D(entity["grand_total"]) == D(grand) and D(entity["base_grand_total"]) == D(grand)
    assert D(entity["tax_amount"]) == D(tax)
    assert_adds_up(entity)
    programs = order_programs.read_programs(o, "USD")
    detail = order_programs.audit_detail(programs, amounts, account)
    assert detail.get("marketplace_facilitator_tax_excluded") == excluded
    notes = " ".join(comments(entity))
    if note:
        assert note in notes
    else:
        assert "facilitator" not in notes


@pytest.mark.parametrize("scheme", ["IOSS", "UOSS"])
def test_eu_reporting_scheme_is_recorded(scheme):
    o = order(item(tax={"taxCalculationBreakdowns": [{"reportingScheme": scheme}]}))
    _, entity = build(o)
    assert f"EU VAT reporting scheme: {scheme}." in comments(entity)


# -- Prime and deadlines --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("programs", "fulfillment", "info", "note"),
    [
        ([], {}, [], None),
        (
            ["PRIME"],
            {"shipByWindow": {"earliestDateTime": "2026-11-01T00:00:00Z", "latestDateTime": "2026-11-03T07:59:59Z"}},
            ["Programs PRIME", "Ship by 2026-11-03T07:59:59Z"],
            "Prime; Ship by 2026-11-03T07:59:59Z.",
        ),
        (
            ["PREMIUM"],
            {"deliverByWindow": {"earliestDateTime": "2026-11-04T00:00:00Z", "latestDateTime": "2026-11-06T23:59:59Z"}},
            ["Programs PREMIUM", "Deliver between 2026-11-04T00:00:00Z and 2026-11-06T23:59:59Z"],
            "Premium; Deliver between 2026-11-04T00:00:00Z and 2026-11-06T23:59:59Z.",
        ),
        (
            [],
            {"deliverByWindow": {"latestDateTime": "2026-11-06T23:59:59Z"}},
            ["Deliver by 2026-11-06T23:59:59Z"],
            None,
        ),
    ],
)
def test_prime_and_deadlines(programs, fulfillment, info, note):
    o = order(programs=programs)
    o["fulfillment"].update(fulfillment)
    _, entity = build(o)
    assert entity["payment"]["additional_information"][3:] == info
    if note:
        assert note in comments(entity)


# -- replacements and exchanges -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "original_commerce", "note"),
    [
        (
            "REPLACEMENT_ORIGINAL_ID",
            "000000042",
            "Amazon replacement order for Amazon order 111-0000000-0000001 (Commerce order #000000042).",
        ),
        ("EXCHANGE_ORIGINAL_ID", None, "Amazon exchange order for Amazon order 111-0000000-0000001 (not in Commerce)."),
    ],
)
def test_replacement_and_exchange_link_the_original(kind, original_commerce, note):
    o = order(associatedOrders=[{"orderId": "111-0000000-0000001", "associationType": kind}])
    assert order_programs.association(o) == (kind, "111-0000000-0000001")
    amounts, entity = build(o, original_commerce_order=original_commerce)
    assert note in comments(entity)
    assert order_programs.audit_detail(order_programs.read_programs(o, "USD"), amounts, ACCOUNT) == {
        f"{order_programs.ASSOCIATIONS[kind]}_of": "111-0000000-0000001"
    }


def test_other_associations_are_not_replacements():
    assert order_programs.association(order(associatedOrders=[{"orderId": "1", "associationType": "OTHER"}])) is None


# -- gift options ---------------------------------------------------------------------------------
def gift(message="Happy birthday!", level="PREMIUM"):
    return {"fulfillment": {"packing": {"giftOption": {"giftMessage": message, "giftWrapLevel": level}}}}


@pytest.mark.parametrize(
    ("items", "shipping", "shipping_tax", "item_tax", "grand", "note"),
    [
        # a gift message alone changes no amount
        (
            [item(**gift())],
            "5.00",
            "0.50",
            "2.00",
            "27.50",
            "Gift options for SKU-A: gift wrap PREMIUM message: Happy birthday!",
        ),
        # a paid gift wrap is shipping & handling, its tax shipping tax; the item price is unchanged
        (
            [item(wrap=("3.99", "0.40"), **gift())],
            "8.99",
            "0.90",
            "2.00",
            "31.89",
            "Gift options for SKU-A: gift wrap PREMIUM (charged 4.39 USD, in shipping & handling) "
            "message: Happy birthday!",
        ),
        (
            [item(wrap=("2.00", "0.00"), **gift(message=None, level="STANDARD")), item(item_id="2", sku="SKU-B")],
            "12.00",
            "1.00",
            "4.00",
            "57.00",
            "Gift options for SKU-A: gift wrap STANDARD (charged 2.00 USD, in shipping & handling)",
        ),
    ],
)
def test_gift_options(items, shipping, shipping_tax, item_tax, grand, note):
    o = order(*items)
    _, entity = build(o)
    assert D(entity["shipping_amount"]) == D(shipping)
    assert D(entity["shipping_tax_amount"]) == D(shipping_tax)
    assert sum(D(i["tax_amount"]) for i in entity["items"]) == D(item_tax)
    assert D(entity["grand_total"]) == D(grand)
    assert D(entity["items"][0]["price"]) == D("20.00")  # not a changed item price
    assert "adjustment_positive" not in entity
    assert_adds_up(entity)
    assert note in comments(entity)
    wrapped = any(b["type"] == "GIFT_WRAP" for i in items for b in i["proceeds"]["breakdowns"])
    assert entity["shipping_description"].endswith("+ gift wrap") is wrapped


def test_gift_wrap_with_facilitator_tax_excluded_still_adds_up():
    o = order(facilitated(wrap=("3.99", "0.40"), **gift()))
    _, entity = build(o, EXCLUDE)
    assert D(entity["tax_amount"]) == 0 and D(entity["shipping_amount"]) == D("8.99")
    assert D(entity["grand_total"]) == D("28.99")
    assert_adds_up(entity)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: o["orderItems"][0].update(gift(message="x" * 1001)), "gift message is 1001 characters long"),
        (lambda o: o["buyer"].update(buyerPurchaseOrderNumber="P" * 256), "purchase order number is 256"),
        (lambda o: o["buyer"].update(buyerPurchaseOrderNumber=12), "purchase order number is not text"),
    ],
)
def test_bad_program_values_are_refused_with_a_reason(change, message):
    o = order()
    change(o)
    with pytest.raises(transform.MalformedOrder, match=message):
        build(o)


def test_comments_are_created_with_the_order_not_notified():
    o = order(programs=["AMAZON_BUSINESS", "PRIME"])
    _, entity = build(o)
    assert entity["status_histories"]
    for history in entity["status_histories"]:
        assert history["is_customer_notified"] == 0 and history["is_visible_on_front"] == 0
        assert history["status"] == entity["status"]


def test_buyer_tax_registrations_are_personal_data():
    """A CPF is a person's number: the buyer's registrations go to ``order_pii``; the others stay staged."""
    marketplace = {"entityType": "MARKETPLACE", "taxRegistrationNumber": "LU20260743"}
    cpf = {"entityType": "BUYER", "taxRegistrationType": "CPF", "taxRegistrationNumber": "12345678901"}
    o = order(tax={"taxRegistrations": [marketplace, cpf], "taxInvoicing": {"invoiceStatus": "ACCEPTED"}})
    assert buyer_data.strip_pii(o)["tax"] == {
        "taxRegistrations": [marketplace],
        "taxInvoicing": {"invoiceStatus": "ACCEPTED"},
    }
    assert buyer_data.extract_pii(o)["buyer_tax_registrations"] == [cpf]
    only_buyer = order(tax={"taxRegistrations": [cpf]})
    assert buyer_data.strip_pii(only_buyer)["tax"] == {}
    assert buyer_data.extract_pii(order())["buyer_tax_registrations"] is None
