"""Orders in another currency than the store's base: amounts and rates kept as given, documents' base amounts
taken from the order items' base amounts (Magento's invoice and credit memo items), never converted."""

from __future__ import annotations

from decimal import Decimal

from commerce_helpers import order_entity, to_wire, validate

D = Decimal


def _eur_order(client, **over) -> dict:
    """The issue's example: 3 x EUR 8.30 + EUR 4.73 tax on a USD store at USD->EUR 0.92 (base grand total 32.21)."""
    item = {
        "sku": "SKU-1",
        "name": "Widget",
        "qty_ordered": 3,
        "price": D("8.30"),
        "base_price": D("9.02"),
        "row_total": D("24.90"),
        "base_row_total": D("27.07"),
        "tax_amount": D("4.73"),
        "base_tax_amount": D("5.14"),
        "price_incl_tax": D("9.88"),
        "base_price_incl_tax": D("10.74"),
        "row_total_incl_tax": D("29.63"),
        "base_row_total_incl_tax": D("32.21"),
        "product_type": "simple",
    }
    entity = order_entity(
        items=[item],
        base_currency_code="USD",
        order_currency_code="EUR",
        global_currency_code="USD",
        store_currency_code="USD",
        base_to_order_rate=D("0.92"),
        base_to_global_rate=1,
        store_id=3,
        subtotal=D("24.90"),
        base_subtotal=D("27.07"),
        tax_amount=D("4.73"),
        base_tax_amount=D("5.14"),
        **{
            "shipping_amount": 0,
            "base_shipping_amount": 0,
            "grand_total": D("29.63"),
            "base_grand_total": D("32.21"),
            **over,
        },
    )
    response = client.session.post(client.url("/V1/orders", store="multi"), json=to_wire({"entity": entity}), timeout=5)
    assert response.status_code == 200, response.text
    return response.json(parse_float=Decimal)


def _get(client, path: str) -> dict:
    return client.get(path).json(parse_float=Decimal)


def test_order_keeps_currencies_rates_and_base_amounts_as_given(client):
    order = _eur_order(client, store_to_order_rate=D("0.91999"))
    validate("sales-data-order-interface", client.get(f"/V1/orders/{order['entity_id']}").json())
    assert (order["base_currency_code"], order["order_currency_code"], order["base_to_order_rate"]) == (
        "USD",
        "EUR",
        D("0.92"),
    )
    assert order["store_to_order_rate"] == D("0.92")  # sales_order keeps rates to 4 places
    assert (order["grand_total"], order["base_grand_total"], order["base_total_due"]) == (
        D("29.63"),
        D("32.21"),
        D("32.21"),
    )
    assert order["items"][0]["base_row_total"] == D("27.07") and "store_to_base_rate" not in order
    plain = client.create_order()  # codes and rates not sent stay unset: nothing comes from the store's currency
    assert not {"global_currency_code", "store_currency_code", "base_to_order_rate", "base_to_global_rate"} & set(plain)


def test_invoice_and_refund_take_base_amounts_from_the_order_items(client):
    order = _eur_order(client)
    oid, item_id = order["entity_id"], order["items"][0]["item_id"]
    invoice_id = client.post(f"/V1/order/{oid}/invoice", {"capture": True}).json()
    invoice = _get(client, f"/V1/invoice/{invoice_id}")
    assert (invoice["grand_total"], invoice["base_grand_total"]) == (D("29.63"), D("32.21"))
    assert (invoice["order_currency_code"], invoice["base_to_order_rate"]) == ("EUR", D("0.92"))
    memo_id = client.post(
        f"/V1/order/{oid}/refund",
        {"items": [{"order_item_id": item_id, "qty": 2}], "arguments": {"shipping_amount": 0}},
    ).json()
    memo = _get(client, f"/V1/creditmemo/{memo_id}")
    line = memo["items"][0]
    # two thirds of the item's base amounts (27.07 x 2/3 = 18.047 -> 18.05), not the EUR row converted
    # (16.60 / 0.92 = 18.04)
    assert (line["row_total"], line["tax_amount"], line["base_row_total"], line["base_tax_amount"]) == (
        D("16.60"),
        D("3.15"),
        D("18.05"),
        D("3.42"),
    )
    assert (memo["grand_total"], memo["base_grand_total"]) == (D("19.75"), D("21.47"))
    rest = client.post(f"/V1/order/{oid}/refund", {"arguments": {"shipping_amount": 0}}).json()
    final = _get(client, f"/V1/creditmemo/{rest}")
    assert (final["grand_total"], final["base_grand_total"]) == (D("9.88"), D("10.74"))  # what is left
    closed = _get(client, f"/V1/orders/{oid}")
    assert (closed["state"], closed["base_total_refunded"], closed["total_refunded"]) == (
        "closed",
        D("32.21"),
        D("29.63"),
    )


def test_partial_documents_round_with_magento_delta_rounding(client):
    three = {
        "sku": "SKU-1",
        "name": "Widget",
        "qty_ordered": 3,
        "price": D("3.3333"),
        "base_price": D("3.3333"),
        "row_total": D("10.00"),
        "base_row_total": D("10.00"),
        "tax_amount": 0,
        "base_tax_amount": 0,
    }
    order = client.create_order(
        items=[three, {**three, "sku": "SKU-2"}],
        subtotal=D("20.00"),
        base_subtotal=D("20.00"),
        tax_amount=0,
        base_tax_amount=0,
        shipping_amount=0,
        base_shipping_amount=0,
        grand_total=D("20.00"),
        base_grand_total=D("20.00"),
    )
    oid, ids = order["entity_id"], [i["item_id"] for i in order["items"]]
    rows = []
    for _ in range(3):
        invoice_id = client.post(
            f"/V1/order/{oid}/invoice", {"items": [{"order_item_id": i, "qty": 1} for i in ids]}
        ).json()
        invoice = _get(client, f"/V1/invoice/{invoice_id}")
        rows.append([line["row_total"] for line in invoice["items"]])
        assert [line["base_row_total"] for line in invoice["items"]] == rows[-1]
    # 10 / 3 = 3.333 -> 3.33, the second item carries the remainder -> 3.34; the next invoice divides what is
    # left (6.67 / 2 = 3.335); the last takes the rest
    assert rows == [[D("3.33"), D("3.34")], [D("3.34"), D("3.33")], [D("3.33"), D("3.33")]]
    assert [sum(col) for col in zip(*rows, strict=True)] == [D("10.00"), D("10.00")]


def _eur_order_with_shipping(client) -> dict:
    """The EUR order plus EUR 4.60 shipping (USD 5.00 at 0.92): grand total EUR 34.23, USD 37.21; invoiced."""
    order = _eur_order(
        client,
        **{
            "shipping_amount": D("4.60"),
            "base_shipping_amount": D("5.00"),
            "shipping_incl_tax": D("4.60"),
            "base_shipping_incl_tax": D("5.00"),
            "grand_total": D("34.23"),
            "base_grand_total": D("37.21"),
        },
    )
    assert client.post(f"/V1/order/{order['entity_id']}/invoice", {"capture": True}).status_code == 200
    return order


def test_refund_arguments_are_base_currency_amounts(client):
    """``shipping_amount`` and the adjustments are read in the base currency (CreditmemoFactory::initData,
    Creditmemo::setAdjustmentPositive/Negative): base = the argument, order currency = round(base x rate)."""
    order = _eur_order_with_shipping(client)
    oid, item_id = order["entity_id"], order["items"][0]["item_id"]
    # USD 4.60 of USD 5.00 shipping is a share (0.92) of each currency's shipping, not all of the EUR 4.60
    memo_id = client.post(
        f"/V1/order/{oid}/refund",
        {
            "items": [{"order_item_id": item_id, "qty": 1}],
            "arguments": {"shipping_amount": D("4.60"), "adjustment_positive": D("1.00"), "adjustment_negative": 2},
        },
    ).json()
    memo = _get(client, f"/V1/creditmemo/{memo_id}")
    assert (memo["shipping_amount"], memo["base_shipping_amount"]) == (D("4.23"), D("4.60"))
    assert (memo["adjustment_positive"], memo["base_adjustment_positive"]) == (D("0.92"), D("1.00"))
    assert (memo["adjustment_negative"], memo["base_adjustment_negative"]) == (D("1.84"), D("2.00"))
    # one of three: EUR 8.30 + 1.58 tax, USD 9.02 + 1.72 tax (delta rounding carries 9.0233's remainder)
    assert (memo["grand_total"], memo["base_grand_total"]) == (
        D("8.30") + D("1.58") + D("4.23") + D("0.92") - D("1.84"),
        D("9.02") + D("1.72") + D("4.60") + D("1.00") - D("2.00"),
    )
    refunded = _get(client, f"/V1/orders/{oid}")
    assert (refunded["shipping_refunded"], refunded["base_shipping_refunded"]) == (D("4.23"), D("4.60"))


def test_refund_of_all_base_shipping_left_takes_the_order_currency_shipping_left_exactly(client):
    order = _eur_order_with_shipping(client)
    oid = order["entity_id"]
    too_much = client.post(f"/V1/order/{oid}/refund", {"arguments": {"shipping_amount": D("5.01")}})
    assert too_much.status_code == 400
    assert too_much.json() == {"message": "Maximum shipping amount allowed to refund is: %1", "parameters": ["$5.00"]}
    memo_id = client.post(f"/V1/order/{oid}/refund", {"arguments": {"shipping_amount": D("5.00")}}).json()
    memo = _get(client, f"/V1/creditmemo/{memo_id}")
    assert (memo["shipping_amount"], memo["base_shipping_amount"]) == (D("4.60"), D("5.00"))
    assert (memo["grand_total"], memo["base_grand_total"]) == (D("34.23"), D("37.21"))
    assert _get(client, f"/V1/orders/{oid}")["state"] == "closed"


def test_most_money_available_is_checked_in_the_base_currency(client):
    order = _eur_order_with_shipping(client)
    oid = order["entity_id"]
    # USD 0.01 more than paid: refused with what is left in USD
    over = client.post(f"/V1/order/{oid}/refund", {"arguments": {"adjustment_positive": D("0.01")}})
    assert over.status_code == 400
    assert over.json() == {"message": "The most money available to refund is %1.", "parameters": ["37.21"]}
    # the order-currency shipping as if it were base: only a share of the shipping is refunded
    memo_id = client.post(f"/V1/order/{oid}/refund", {"arguments": {"shipping_amount": D("4.60")}}).json()
    memo = _get(client, f"/V1/creditmemo/{memo_id}")
    assert (memo["base_grand_total"], memo["grand_total"]) == (D("36.81"), D("33.86"))
    assert _get(client, f"/V1/orders/{oid}")["state"] != "closed"  # USD 0.40 of shipping left to refund
