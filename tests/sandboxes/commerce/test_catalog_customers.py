"""Catalog reads, stock reads and writes (MSI and legacy), currency, stores, customers."""

from __future__ import annotations

from decimal import Decimal

from commerce_helpers import sc


def test_product_read_and_404(client):
    product = client.get("/V1/products/SKU-1").json(parse_float=Decimal)
    assert product["sku"] == "SKU-1" and product["price"] == Decimal("10.00") and product["status"] == 1
    assert product["type_id"] == "simple" and product["extension_attributes"]["stock_item"]["qty"] == 50
    missing = client.get("/V1/products/NOPE")
    assert missing.status_code == 404
    assert missing.json() == {
        "message": "The product that was requested doesn't exist. Verify the product and try again."
    }


def test_source_items_set_absolute_quantities(client):
    assert client.get("/V1/inventory/get-product-salable-quantity/SKU-2/1").json() == 7
    resp = client.post(
        "/V1/inventory/source-items",
        {
            "sourceItems": [
                {"sku": "SKU-2", "source_code": "default", "quantity": 3, "status": 1},
                {"sku": "SKU-1", "source_code": "default", "quantity": 0, "status": 0},
            ]
        },
    )
    assert resp.status_code == 200 and resp.json() == []
    assert client.get("/V1/inventory/get-product-salable-quantity/SKU-2/1").json() == 3
    assert client.get("/V1/inventory/get-product-salable-quantity/SKU-1/1").json() == 0
    items = client.get("/V1/inventory/source-items", params=sc([("sku", "SKU-2", "eq")])).json()
    assert items["total_count"] == 1 and items["items"][0]["quantity"] == 3
    assert client.get("/V1/inventory/get-product-salable-quantity/SKU-1/2").status_code == 404
    bad = client.post(
        "/V1/inventory/source-items",
        {"sourceItems": [{"sku": "NOPE", "source_code": "default", "quantity": 1, "status": 1}]},
    )
    assert bad.status_code == 400


def test_legacy_stock_items(client):
    stock = client.get("/V1/stockItems/SKU-2").json()
    assert stock["qty"] == 7 and stock["is_in_stock"] is True
    item_id = client.put(
        f"/V1/products/SKU-2/stockItems/{stock['item_id']}", {"stockItem": {"qty": 12, "is_in_stock": True}}
    ).json()
    assert item_id == stock["item_id"]
    assert client.get("/V1/inventory/get-product-salable-quantity/SKU-2/1").json() == 12
    client.put(f"/V1/products/SKU-2/stockItems/{item_id}", {"stockItem": {"qty": 12, "is_in_stock": False}})
    assert client.get("/V1/inventory/get-product-salable-quantity/SKU-2/1").json() == 0


def test_currency_and_store_views(client):
    currency = client.get("/V1/directory/currency").json()
    assert currency["base_currency_code"] == "USD"
    assert currency["available_currency_codes"] == ["USD", "CAD", "EUR"]
    ca = client.session.get(client.url("/V1/directory/currency", store="ca_en"), timeout=5).json()
    assert ca["base_currency_code"] == "CAD"
    views = client.get("/V1/store/storeViews").json()
    assert {v["code"] for v in views} == {"admin", "default", "ca_en", "multi"}
    configs = client.get("/V1/store/storeConfigs").json()
    assert {c["code"]: c["base_currency_code"] for c in configs} == {"default": "USD", "ca_en": "CAD", "multi": "USD"}
    unknown = client.session.get(client.url("/V1/directory/currency", store="nope"), timeout=5)
    assert unknown.status_code == 400


def test_customers_create_and_search(client):
    body = {"customer": {"email": "Jane@Example.com", "firstname": "Jane", "lastname": "Doe"}}
    created = client.post("/V1/customers", body)
    assert created.status_code == 200, created.text
    customer = created.json()
    assert customer["id"] == 1 and customer["website_id"] == 1 and customer["group_id"] == 1
    dup = client.post("/V1/customers", {"customer": {**body["customer"], "email": "jane@example.com"}})
    assert dup.status_code == 400
    assert dup.json() == {"message": "A customer with the same email address already exists in an associated website."}
    other_site = client.post("/V1/customers", {"customer": {**body["customer"], "website_id": 2}})
    assert other_site.status_code == 200
    found = client.get(
        "/V1/customers/search", params=sc([("email", "jane@example.com", "eq")], [("website_id", "1", "eq")])
    ).json()
    assert [c["id"] for c in found["items"]] == [1]
    missing = client.post("/V1/customers", {"customer": {"email": "x@example.com", "firstname": "X"}})
    assert missing.status_code == 400 and missing.json()["parameters"] == {"fieldName": "lastname"}
