"""The directory (countries, regions) and currency information as Magento answers them, and the rates admin route.

Region ids asserted here are facts of Magento's source: InitializeDirectoryData inserts US (1-65), CA (66-78),
DE (79-94)... in that order, so Washington is 62, Puerto Rico 52, Quebec 76 and Nordrhein-Westfalen 88 on every
Magento store.
"""

from __future__ import annotations

import requests
from commerce_helpers import Client, validate

from sandboxes.commerce.config import CommerceSandboxConfig


def _regions(client: Client, country: str, store: str | None = None) -> dict[str, dict]:
    body = client.session.get(client.url(f"/V1/directory/countries/{country}", store=store), timeout=5).json()
    validate("directory-data-country-information-interface", body)
    return {r["name"]: r for r in body.get("available_regions", [])}


def test_countries_follow_the_allowed_list_and_the_schema(client):
    countries = client.get("/V1/directory/countries").json()
    for country in countries:
        validate("directory-data-country-information-interface", country)
    ids = [c["id"] for c in countries]
    assert ids == sorted(ids) and {"US", "CA", "DE", "JP", "GB"} <= set(ids)
    # Magento's directory has Puerto Rico as a US region, not as a country; FX is allowed but not in the table
    assert "PR" not in ids and "FX" not in ids
    us = next(c for c in countries if c["id"] == "US")
    assert (us["three_letter_abbreviation"], us["full_name_english"], us["full_name_locale"]) == (
        "USA",
        "United States",
        "United States",
    )


def test_known_region_ids_of_every_magento_store(client):
    us = _regions(client, "US")
    assert us["Washington"] == {"id": "62", "code": "WA", "name": "Washington"}
    assert us["Puerto Rico"] == {"id": "52", "code": "PR", "name": "Puerto Rico"}
    assert us["Alabama"]["id"] == "1" and us["Wyoming"]["id"] == "65" and len(us) == 65
    assert _regions(client, "CA")["Quebec"] == {"id": "76", "code": "QC", "name": "Quebec"}
    de = _regions(client, "DE")
    assert de["Nordrhein-Westfalen"] == {"id": "88", "code": "NW", "name": "Nordrhein-Westfalen"}
    assert _regions(client, "BR")["Distrito Federal"]["id"] == "511"


def test_regions_come_by_name_and_keep_magento_quirks(client):
    de = client.get("/V1/directory/countries/DE").json()["available_regions"]
    assert [r["name"] for r in de][:3] == ["Baden-Württemberg", "Bayern", "Berlin"]  # by name, not by id
    it = _regions(client, "IT")
    assert len(it) >= 100 and it["Roma"]["code"] == "RM"
    # AddDataForItalyV2 adds the regions, "Sud Sardegna" a second time under the same code
    assert [r["code"] for r in client.get("/V1/directory/countries/IT").json()["available_regions"]].count("SU") == 2
    india = _regions(client, "IN")
    assert india["Ladakh"]["code"] == "LA" and india["Odisha"]["code"] == "OD"
    assert len(_regions(client, "AU")) == 8 and len(_regions(client, "MX")) == 32
    es = _regions(client, "ES")
    assert es["Barcelona"]["code"] == "ES-B" and es["Vizcaya"]["code"] == "Vizcaya"  # no update for Vizcaya
    assert _regions(client, "FR")["Paris"]["code"] == "75C"


def test_countries_without_regions_and_unknown_countries(client):
    japan = client.get("/V1/directory/countries/JP").json()
    assert japan["id"] == "JP" and "available_regions" not in japan  # Magento ships no JP regions
    for country in ("PR", "us", "ZZ"):
        missing = client.get(f"/V1/directory/countries/{country}")
        assert missing.status_code == 404 and missing.json() == {"message": "The country isn't available."}
        validate("error-response", missing.json())


def test_region_codes_of_stores_without_the_2026_code_updates(custom_sandbox):
    legacy = custom_sandbox(region_code_updates=False)
    assert _regions(legacy, "DE")["Nordrhein-Westfalen"] == {"id": "88", "code": "NRW", "name": "Nordrhein-Westfalen"}
    assert _regions(legacy, "ES")["Barcelona"]["code"] == "Barcelona"
    assert _regions(legacy, "IN")["Odisha"]["code"] == "OR"


def test_country_names_in_the_store_locale_and_allowed_countries(custom_sandbox):
    stores = CommerceSandboxConfig().stores
    stores["default"]["locale"] = "de_DE"
    german = custom_sandbox(stores=stores, allowed_countries=["DE", "US", "FX"])
    countries = german.get("/V1/directory/countries").json()
    assert [(c["id"], c["full_name_locale"], c["full_name_english"]) for c in countries] == [
        ("DE", "Deutschland", "Germany"),
        ("US", "Vereinigte Staaten", "United States"),
    ]
    assert german.get("/V1/directory/countries/CA").status_code == 404


def test_currency_rates_per_base_currency(client):
    default = client.get("/V1/directory/currency").json()
    validate("directory-data-currency-information-interface", default)
    assert default["available_currency_codes"] == ["USD", "CAD", "EUR"]
    assert {r["currency_to"]: r["rate"] for r in default["exchange_rates"]} == {"USD": 1, "CAD": 1.35, "EUR": 0.92}
    assert (default["base_currency_symbol"], default["default_display_currency_code"]) == ("$", "USD")
    canada = client.session.get(client.url("/V1/directory/currency", store="ca_en"), timeout=5).json()
    assert canada["base_currency_code"] == "CAD" and canada["base_currency_symbol"] == "CA$"
    assert {r["currency_to"]: r["rate"] for r in canada["exchange_rates"]} == {"CAD": 1, "USD": 0.7407}


def test_missing_rate_is_zero_until_set_and_rates_persist(tmp_path, custom_sandbox):
    state_file = tmp_path / "commerce.json"
    shop = custom_sandbox(state_file=str(state_file))

    def rates() -> dict:
        body = shop.session.get(shop.url("/V1/directory/currency", store="multi"), timeout=5).json()
        validate("directory-data-currency-information-interface", body)
        return {r["currency_to"]: r["rate"] for r in body["exchange_rates"]}

    # CurrencyInformationAcquirer lists every allowed currency; no USD->JPY row: getRate() is false, cast to 0
    assert rates() == {"USD": 1, "EUR": 0.92, "GBP": 0.79, "JPY": 0}
    saved = requests.post(
        f"{shop.base}/_sandbox/currency-rates", json={"rates": {"USD": {"JPY": "151.2345"}}}, timeout=5
    )
    assert saved.status_code == 200 and saved.json()["rates"]["USD"]["JPY"] == 151.2345
    assert rates()["JPY"] == 151.2345
    for bad in ("0", "-1", "abc"):
        refused = requests.post(
            f"{shop.base}/_sandbox/currency-rates", json={"rates": {"USD": {"JPY": bad}}}, timeout=5
        )
        assert refused.status_code == 400 and refused.json()["parameters"] == ["USD", "JPY"]
    restarted = custom_sandbox(state_file=str(state_file))
    body = restarted.session.get(restarted.url("/V1/directory/currency", store="multi"), timeout=5).json()
    assert {r["currency_to"]: r["rate"] for r in body["exchange_rates"]}["JPY"] == 151.2345
    requests.post(f"{shop.base}/_sandbox/currency-rates", json={"rates": {"USD": {"JPY": None}}}, timeout=5)
    assert rates()["JPY"] == 0
