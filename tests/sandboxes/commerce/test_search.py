"""searchCriteria: OR inside a group, AND across groups, every condition type, sorting, paging."""

from __future__ import annotations

from commerce_helpers import order_entity, sc


def _seed(client):
    data = [
        ("A-1", "2024-01-01 10:00:00", "10.00", "alpha@example.com"),
        ("A-2", "2024-01-02 10:00:00", "20.00", "beta@example.com"),
        ("B-3", "2024-01-03 10:00:00", "30.00", "gamma@example.com"),
        ("B-4", "2024-01-04 10:00:00", "40.00", None),
    ]
    for ext, created, total, note in data:
        client.create_order(
            ext_order_id=ext,
            created_at=created,
            grand_total=total,
            base_grand_total=total,
            **({"customer_note": note} if note else {}),
        )
    client.post(f"/V1/orders/{4}/hold")


def _ext(client, *groups, **kw):
    resp = client.get("/V1/orders", params=sc(*groups, **kw))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return [o["ext_order_id"] for o in body["items"]], body["total_count"]


def test_or_within_group_and_across_groups(client):
    _seed(client)
    assert _ext(client, [("ext_order_id", "A-1", "eq"), ("ext_order_id", "B-3", "eq")]) == (["A-1", "B-3"], 2)
    assert _ext(client, [("ext_order_id", "A-%", "like")], [("grand_total", "15", "gt")]) == (["A-2"], 1)


def test_condition_types(client):
    _seed(client)
    cases = {
        ("grand_total", "20", "eq"): ["A-2"],
        ("grand_total", "20", "neq"): ["A-1", "B-3", "B-4"],
        ("grand_total", "20", "gt"): ["B-3", "B-4"],
        ("grand_total", "20", "gteq"): ["A-2", "B-3", "B-4"],
        ("grand_total", "20", "lt"): ["A-1"],
        ("grand_total", "20", "lteq"): ["A-1", "A-2"],
        ("grand_total", "9.5", "gt"): ["A-1", "A-2", "B-3", "B-4"],  # numeric, not string, comparison
        ("ext_order_id", "b-%", "like"): ["B-3", "B-4"],  # case-insensitive like MySQL
        ("ext_order_id", "B-%", "nlike"): ["A-1", "A-2"],
        ("ext_order_id", "A-1,B-4", "in"): ["A-1", "B-4"],
        ("ext_order_id", "A-1,B-4", "nin"): ["A-2", "B-3"],
        ("customer_note", "", "null"): ["B-4"],
        ("customer_note", "", "notnull"): ["A-1", "A-2", "B-3"],
        ("created_at", "2024-01-02 10:00:00", "from"): ["A-2", "B-3", "B-4"],
        ("created_at", "2024-01-02T10:00:00Z", "to"): ["A-1", "A-2"],
        ("created_at", "2024-01-03", "gteq"): ["B-3", "B-4"],
        ("state", "holded", "eq"): ["B-4"],
        ("customer_note", "beta@example.com", "finset"): ["A-2"],
    }
    for (field, value, cond), expected in cases.items():
        assert _ext(client, [(field, value, cond)])[0] == expected, (field, value, cond)


def test_sort_and_paging_with_last_page_clamp(client):
    _seed(client)
    assert _ext(client, sort=[("grand_total", "DESC")])[0] == ["B-4", "B-3", "A-2", "A-1"]
    assert _ext(client, sort=[("state", "ASC"), ("grand_total", "DESC")])[0] == ["B-4", "B-3", "A-2", "A-1"]
    assert _ext(client, sort=[("grand_total", "ASC")], page_size=3, current_page=1) == (["A-1", "A-2", "B-3"], 4)
    assert _ext(client, sort=[("grand_total", "ASC")], page_size=3, current_page=2) == (["B-4"], 4)
    # Magento quirk: beyond the last page the last page comes back again.
    assert _ext(client, sort=[("grand_total", "ASC")], page_size=3, current_page=9) == (["B-4"], 4)
    body = client.get("/V1/orders", params=sc(page_size=2, current_page=5)).json()
    assert body["search_criteria"] == {"filter_groups": [], "page_size": 2, "current_page": 5}


def test_search_errors(client):
    assert client.get("/V1/orders").json() == {
        "message": '"%fieldName" is required. Enter and try again.',
        "parameters": {"fieldName": "searchCriteria"},
    }
    unknown = client.get("/V1/orders", params=sc([("no_such_field", "1", "eq")]))
    assert unknown.status_code == 400
    assert unknown.json()["parameters"] == {"value": "no_such_field", "fieldName": "field"}
    assert client.get("/V1/orders", params=sc([("state", "new", "bogus")])).status_code == 400
    assert client.get("/V1/orders", params=sc(page_size=301)).status_code == 400


def test_camel_case_keys_and_other_collections(client):
    client.create_order(ext_order_id="X-1")
    params = {
        "searchCriteria[filterGroups][0][filters][0][field]": "ext_order_id",
        "searchCriteria[filterGroups][0][filters][0][value]": "X-1",
        "searchCriteria[filterGroups][0][filters][0][conditionType]": "eq",
    }
    assert client.get("/V1/orders", params=params).json()["total_count"] == 1
    products = client.get("/V1/products", params=sc([("sku", "SKU-1,SKU-3", "in")])).json()
    assert sorted(p["sku"] for p in products["items"]) == ["SKU-1", "SKU-3"]
    enabled = client.get("/V1/products", params=sc([("status", "1", "eq")], sort=[("sku", "DESC")])).json()
    assert [p["sku"] for p in enabled["items"]] == ["SKU-2", "SKU-1"]
    assert client.post("/V1/orders", {"entity": order_entity()}).ok
