"""Customer addresses on POST/PUT /V1/customers: Magento's General and Country address validators."""

from __future__ import annotations

import requests
from commerce_helpers import ADDRESS, sc, validate


def _customer(client, *addresses: dict, email: str = "c@example.com") -> requests.Response:
    customer = {"email": email, "firstname": "C", "lastname": "D", "addresses": list(addresses)}
    validate("customer-data-customer-interface", customer)
    return client.post("/V1/customers", {"customer": customer})


def _customer_address(**over) -> dict:
    address = {k: v for k, v in ADDRESS.items() if k != "email"}
    address.update(over)
    return address


def _customers_named(client, email: str) -> int:
    return client.get("/V1/customers/search", params=sc([("email", email, "eq")])).json()["total_count"]


def test_customer_address_needs_a_region_id_where_the_country_requires_a_state(client):
    refused = _customer(client, _customer_address())
    assert refused.status_code == 400
    assert refused.json() == {
        "message": '"%fieldName" is required. Enter and try again.',
        "parameters": {"fieldName": "regionId"},
    }
    assert _customers_named(client, "c@example.com") == 0  # createAccount deletes the customer again
    created = _customer(client, _customer_address(region_id=62))
    assert created.status_code == 200, created.text
    body = created.json()
    validate("customer-data-customer-interface", body)
    assert body["addresses"][0]["region"] == {"region_code": "WA", "region": "Washington", "region_id": 62}
    assert body["addresses"][0]["region_id"] == 62 and body["id"] == 2  # the refused customer used id 1


def test_region_found_by_code_but_not_by_name(client):
    by_code = _customer(client, _customer_address(region={"region_code": "wa", "region": "", "region_id": 0}))
    assert by_code.status_code == 200 and by_code.json()["addresses"][0]["region_id"] == 62
    # AbstractAddress::getRegionCode() returns the region text when there is no id, so the code is not used
    by_name = _customer(
        client,
        _customer_address(region={"region_code": "WA", "region": "Washington", "region_id": 0}),
        email="e@example.com",
    )
    assert by_name.status_code == 400 and by_name.json()["parameters"] == {"fieldName": "regionId"}


def test_region_of_another_country_and_countries_without_required_state(client):
    quebec_in_us = _customer(client, _customer_address(region_id=76))
    assert quebec_in_us.json() == {
        "message": 'Invalid value of "%value" provided for the %fieldName field.',
        "parameters": {"fieldName": "regionId", "value": "76"},
    }
    japan = _customer(
        client,
        _customer_address(
            country_id="JP", region={"region_code": "", "region": "Tokyo", "region_id": 0}, postcode="100-0001"
        ),
    )
    assert japan.status_code == 200 and japan.json()["addresses"][0]["region"]["region"] == "Tokyo"
    germany = _customer(client, _customer_address(country_id="DE", postcode="50667"), email="de@example.com")
    assert germany.status_code == 200  # DE is one of Magento's countriesWithNotRequiredStates
    britain = _customer(client, _customer_address(country_id="GB", postcode=""), email="gb@example.com")
    assert britain.status_code == 200  # GB is in optional_zip_countries


def test_several_errors_and_configured_state_required(custom_sandbox):
    shop = custom_sandbox(state_required=["DE"])
    several = _customer(shop, _customer_address(country_id="DE", city=" ", postcode=""))
    assert several.status_code == 400
    assert several.json() == {
        "message": "One or more input exceptions have occurred.",
        "errors": [
            {"message": '"%fieldName" is required. Enter and try again.', "parameters": {"fieldName": "city"}},
            {"message": '"%fieldName" is required. Enter and try again.', "parameters": {"fieldName": "postcode"}},
            {"message": '"%fieldName" is required. Enter and try again.', "parameters": {"fieldName": "regionId"}},
        ],
    }
    assert _customer(shop, _customer_address()).status_code == 200  # US no longer requires a state here


def test_update_customer_validates_its_addresses(client):
    created = _customer(client).json()
    path = f"/V1/customers/{created['id']}"
    customer = {k: created[k] for k in ("email", "firstname", "lastname")}
    refused = client.put(path, {"customer": {**customer, "addresses": [_customer_address(region_id=500)]}})
    assert refused.status_code == 400 and refused.json()["parameters"]["fieldName"] == "regionId"
    assert client.get(path).json()["addresses"] == []
    saved = client.put(
        path, {"customer": {**customer, "addresses": [_customer_address(region_id=12, default_billing=True)]}}
    )
    assert saved.status_code == 200, saved.text
    validate("customer-data-customer-interface", saved.json())
    again = client.get(path).json()
    assert again["addresses"][0]["region"]["region_code"] == "CA"
    assert again["default_billing"] == str(again["addresses"][0]["id"])
    missing = client.get("/V1/customers/999")
    assert missing.status_code == 404 and missing.json()["parameters"] == {
        "fieldName": "customerId",
        "fieldValue": "999",
    }


def test_store_config_changed_at_run_time(client):
    assert client.admin("/settings", {"state_required": ["us"], "telephone_required": False}).json()[
        "state_required"
    ] == ["US"]
    no_phone = {k: v for k, v in _customer_address().items() if k != "telephone"}
    assert _customer(client, {**no_phone, "country_id": "CA", "postcode": "H2X 1Y4"}).status_code == 200
    assert _customer(client, no_phone, email="us@example.com").json()["parameters"] == {"fieldName": "regionId"}
    assert client.admin("/settings", {"state_required": None}).json()["state_required"] is None  # Magento's default
    assert client.admin("/settings", {"nickname": 1}).status_code == 400
