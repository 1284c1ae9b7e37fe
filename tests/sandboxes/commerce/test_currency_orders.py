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
        shipping_amount=0,
        base_shipping_amount=0,
        grand_total=D("29.63"),
        base_grand_total=D("32.21"),
        **over,
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
