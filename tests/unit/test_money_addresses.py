"""Base-currency amounts, names and addresses of the Commerce order, table-driven (no Airflow, no HTTP).

The directory entries are Magento's own region data (the Commerce sandbox's transcription of the directory data
patches) as ``GET /V1/directory/countries/{id}`` answers them.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from amazon_commerce_sync import addresses, currency, transform
from sandboxes.commerce.config import CommerceSandboxConfig
from sandboxes.commerce.directory import country_information
from tests.unit.test_transform import ACCOUNT, PRODUCTS, item, order

D = Decimal


def store(base: str = "USD", **rates: str) -> currency.StoreCurrency:
    return currency.StoreCurrency(
        store_id=3, base_currency_code=base, rates={k: D(v) for k, v in rates.items()}, available=frozenset(rates)
    )


def build_in(o: dict, store_currency: currency.StoreCurrency | None, directory=None) -> dict:
    amounts = transform.order_amounts(o)
    return transform.build_order(
        o, amounts, ACCOUNT, products=PRODUCTS, store_currency=store_currency, directory=directory
    )


# -- base currency -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency_code", "items", "rate", "expected"),
    [
        # The issue's example: EUR 3 x 8.30 + 4.73 tax on a USD store at USD→EUR 0.92.
        (
            "EUR",
            [item(qty=3, unit="8.30", item_tax="4.73", currency="EUR")],
            "0.92",
            {
                "base_subtotal": "27.07",
                "base_tax_amount": "5.14",
                "base_grand_total": "32.21",
                "base_subtotal_incl_tax": "32.21",
                "items": [{"base_price": "9.02", "base_row_total": "27.07", "base_row_total_incl_tax": "32.21"}],
            },
        ),
        # Shipping, shipping tax and a discount: the base total is the sum of rounded base parts (31.65), not the
        # converted order total (24.99 / 0.79 = 31.63).
        (
            "GBP",
            [
                item(
                    qty=2,
                    unit="10.00",
                    shipping="4.99",
                    item_tax="1.60",
                    ship_tax="0.40",
                    discount="2.00",
                    currency="GBP",
                )
            ],
            "0.79",
            {
                "base_subtotal": "25.32",
                "base_shipping_amount": "6.32",
                "base_shipping_tax_amount": "0.51",
                "base_shipping_incl_tax": "6.83",
                "base_tax_amount": "2.54",
                "base_discount_amount": "-2.53",
                "base_grand_total": "31.65",
                "base_total_due": "31.65",
                "items": [{"base_tax_amount": "2.03", "base_discount_amount": "2.53"}],
            },
        ),
        # Half a cent rounds up, as PHP's round() does (0.05 / 2 = 0.025 → 0.03).
        ("CAD", [item(qty=1, unit="0.05", currency="CAD")], "2", {"base_subtotal": "0.03", "base_grand_total": "0.03"}),
        # A yen order on a dollar store: 1 USD = 150 JPY.
        ("JPY", [item(qty=1, unit="1500", currency="JPY")], "150", {"base_grand_total": "10.00"}),
        # The base currency itself: rate 1, base amounts equal the order's.
        ("USD", [item(qty=2, unit="10.00", item_tax="1.65")], None, {"base_grand_total": "21.65"}),
    ],
)
def test_base_amounts_are_converted_and_add_up_the_magento_way(currency_code, items, rate, expected):
    o = order(*items, currency=currency_code)
    entity = build_in(o, store(**({currency_code: rate} if rate else {})))
    assert entity["base_currency_code"] == "USD" == entity["global_currency_code"] == entity["store_currency_code"]
    assert entity["order_currency_code"] == currency_code
    assert entity["base_to_order_rate"] == D(rate or 1) == entity["store_to_order_rate"]
    assert entity["base_to_global_rate"] == 1
    for name, value in expected.items():
        if name == "items":
            for got, want in zip(entity["items"], value, strict=True):
                assert {k: got[k] for k in want} == {k: D(v) for k, v in want.items()}
        else:
            assert entity[name] == D(value), name
    assert entity["payment"]["base_amount_ordered"] == entity["base_grand_total"]
    base_parts = (
        entity["base_subtotal"]
        + entity["base_shipping_amount"]
        + entity["base_tax_amount"]
        + entity["base_discount_amount"]
    )
    assert entity["base_grand_total"] == base_parts
    total = entity["extension_attributes"]["shipping_assignments"][0]["shipping"]["total"]
    assert total["base_shipping_amount"] == entity["base_shipping_amount"]


def test_no_rate_for_the_pair_names_the_fix():
    o = order(item(qty=1, unit="1500", currency="JPY"), currency="JPY")
    for rates in ({}, {"JPY": "0"}):
        with pytest.raises(currency.NoExchangeRate, match="no USD→JPY rate in Commerce: Stores ▸ Currency Rates"):
            build_in(o, store(**rates))


def test_without_store_currency_the_order_currency_is_the_base():
    entity = build_in(order(item(qty=3, unit="8.30", item_tax="4.73", currency="EUR"), currency="EUR"), None)
    assert entity["base_currency_code"] == "EUR" and entity["base_grand_total"] == D("29.63")


# -- regions -------------------------------------------------------------------------------------------------

CONFIG = CommerceSandboxConfig()


def entry(country_id: str) -> addresses.CountryRegions:
    return addresses.CountryRegions.from_rest(country_information(CONFIG, {}, country_id))


def directory_for(*countries: str, missing: tuple[str, ...] = ()) -> dict:
    return {**{c: entry(c) for c in countries}, **dict.fromkeys(missing)}


def region_id(country_id: str, name: str) -> int:
    return next(r.id for r in entry(country_id).regions if r.name == name)


@pytest.mark.parametrize(
    ("country", "text", "directory", "expected"),
    [
        ("US", "WA", ("US",), ("US", "Washington", "WA")),
        ("US", "californiA", ("US",), ("US", "California", "CA")),
        ("US", " new   york ", ("US",), ("US", "New York", "NY")),
        ("CA", "Québec", ("CA",), ("CA", "Quebec", "QC")),
        ("DE", "Nordrhein-Westfalen", ("DE",), ("DE", "Nordrhein-Westfalen", None)),
        ("ES", "barcelona", ("ES",), ("ES", "Barcelona", "ES-B")),  # UpdateRegionCodesForSpainV1
        ("MX", "Baja California Sur", ("MX",), ("MX", "Baja California Sur", "BCS")),
        ("IN", "Maharashtra", ("IN",), ("IN", "Maharashtra", "MH")),
        ("ES", "Madrid", ("ES",), ("ES", "Madrid, Comunidad de", "ES-MD")),  # ISO name since the 2.4.8 patch
        ("ES", "md", ("ES",), ("ES", "Madrid, Comunidad de", "ES-MD")),  # code without the country prefix
        ("MX", "CDMX", ("MX",), ("MX", "Ciudad de México", "CMX")),  # alias
        ("MX", "ciudad de mexico", ("MX",), ("MX", "Ciudad de México", "CMX")),
    ],
)
def test_region_text_resolves_to_magento_region(country, text, directory, expected):
    fields = addresses.region_fields({"countryCode": country, "stateOrRegion": text}, directory_for(*directory))
    want_country, name, code = expected
    assert fields["country_id"] == want_country and fields["region"] == name
    assert fields["region_id"] == region_id(want_country, name)
    if code:
        assert fields["region_code"] == code
    else:
        assert fields["region_code"] == next(r.code for r in entry(country).regions if r.name == name)


@pytest.mark.parametrize(
    ("country", "text", "directory", "expected"),
    [
        ("DE", "Bavaria", ("DE",), {"country_id": "DE", "region": "Bavaria"}),  # optional in DE: text kept
        ("DE", "nordrhein westfalen", ("DE",), {"country_id": "DE", "region": "nordrhein westfalen"}),
        ("GB", "Greater London", ("GB",), {"country_id": "GB", "region": "Greater London"}),  # no regions
        ("JP", "東京都", ("JP",), {"country_id": "JP", "region": "東京都"}),  # Magento has no JP regions
        ("FR", None, ("FR",), {"country_id": "FR"}),
        ("GB", "London", None, {"country_id": "GB", "region": "London"}),  # no directory given: text kept
    ],
)
def test_region_text_kept_where_a_state_is_optional(country, text, directory, expected):
    address = {"countryCode": country, **({"stateOrRegion": text} if text else {})}
    got = addresses.region_fields(address, directory_for(*directory) if directory else None)
    assert got == expected


@pytest.mark.parametrize(
    ("country", "text", "reason"),
    [
        ("US", None, "no state or region"),
        ("US", "Atlantis", "'Atlantis'"),
        ("CA", "Kebek", "'Kebek'"),
        ("IN", "  ", "no state or region"),
    ],
)
def test_unresolved_region_where_required_quarantines_with_text_and_country(country, text, reason):
    address = {"name": "A B", "countryCode": country, "postalCode": "1", **({"stateOrRegion": text} if text else {})}
    with pytest.raises(transform.MalformedOrder, match=f"{reason}.*of {country}, which requires one"):
        build_in(order(address=address), None, directory_for(country))


def test_puerto_rico_is_a_us_region_as_in_magento_directory():
    address = {"name": "Ana Ruiz", "addressLine1": "1 Calle Sol", "city": "San Juan", "stateOrRegion": "San Juan"}
    pr = {**address, "countryCode": "PR", "postalCode": "00901"}
    entity = build_in(order(address=pr), None, directory_for("US", missing=("PR",)))
    billing = entity["billing_address"]
    assert (billing["country_id"], billing["region_code"], billing["region"]) == ("US", "PR", "Puerto Rico")
    assert billing["region_id"] == region_id("US", "Puerto Rico") and billing["city"] == "San Juan"
    us = {**address, "countryCode": "US", "stateOrRegion": "PR", "postalCode": "00901"}
    assert (
        build_in(order(address=us), None, directory_for("US"))["billing_address"]["region_id"] == billing["region_id"]
    )
    # A store whose directory has PR as a country keeps it.
    own = addresses.CountryRegions("PR", (), state_required=False)
    kept = addresses.region_fields(pr, {"PR": own, "US": entry("US")})
    assert kept == {"country_id": "PR", "region": "San Juan"}


# -- names and address lines ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "company", "expected"),
    [
        ("  Mr  J  Hartley ", None, ("Mr J", "Hartley")),
        ("Seán O’Brien", None, ("Seán", "O’Brien")),
        ("Zoë  d’Arcy-Ñuñez", None, ("Zoë", "d’Arcy-Ñuñez")),
        ("  Cher ", None, ("Cher", "-")),
        ("   ", "ACME Ltd", ("ACME", "Ltd")),
        ("\u00a0\t", None, ("Amazon", "Customer")),
        (None, None, ("Amazon", "Customer")),
    ],
)
def test_names_never_empty_and_keep_apostrophes_and_accents(name, company, expected):
    first, last = transform.split_name(name, company)
    assert (first, last) == expected and first.strip() and last.strip()


@pytest.mark.parametrize(
    ("address", "street", "city"),
    [
        ({"addressLine1": "", "addressLine2": "12 Elm St", "city": "Austin"}, ["12 Elm St"], "Austin"),
        (
            {"addressLine1": "  ", "addressLine2": "Apt 4", "addressLine3": "12 Elm St", "city": "X"},
            ["Apt 4", "12 Elm St"],
            "X",
        ),
        (
            {
                "addressLine1": "1-2-3 Shibuya",
                "addressLine2": "Room 201",
                "municipality": "Shibuya-ku",
                "districtOrCounty": "Ebisu",
            },
            ["1-2-3 Shibuya", "Room 201"],
            "Shibuya-ku",
        ),
        (
            {"addressLine1": "千代田1-1", "addressLine2": "皇居", "districtOrCounty": "千代田区"},
            ["千代田1-1", "皇居"],
            "千代田区",
        ),
        ({"postalCode": "98101"}, ["-"], "-"),  # FBA: only state, postcode and country
    ],
)
def test_street_lines_and_city(address, street, city):
    o = order(address={"name": "A B", "countryCode": "JP", "stateOrRegion": "東京都", **address})
    billing = build_in(o, None, directory_for("JP"))["billing_address"]
    assert (billing["street"], billing["city"]) == (street, city)
    assert billing["region"] == "東京都" and "region_id" not in billing
