"""Import fidelity end to end (dag.test()): base currency and rate of multi-currency stores, regions through
Magento's directory, names and address lines, against both sandboxes over HTTP.

The Commerce sandbox's ``multi`` store view (id 3) has base currency USD and accepts EUR, GBP and JPY; Stores ▸
Currency Rates has USD→EUR 0.92 and no USD→JPY rate (``sandboxes/commerce/config.py``).
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from tests.store_queries import open_quarantine

pytestmark = pytest.mark.e2e

D = Decimal
US, DE, JP = "ATVPDKIKX0DER", "A1PA6795UKMFR9", "A1VC38T7YXB528"
ENDPOINT = {US: "", DE: "/eu", JP: "/fe"}  # the sandbox serves Amazon's EU and Far East endpoints under a path


@pytest.fixture
def amazon_sandbox():
    """The Amazon sandbox with one seller on Amazon.com, Amazon.de and Amazon.co.jp."""
    from sandboxes.amazon.app import create_app
    from sandboxes.amazon.config import DEFAULT_REFRESH_TOKEN, DEFAULT_SELLER_ID, AmazonSandboxConfig, Seller
    from sandboxes.server import serve_in_thread

    sellers = [Seller(DEFAULT_SELLER_ID, DEFAULT_REFRESH_TOKEN, [US, DE, JP])]
    app = create_app(AmazonSandboxConfig(speed=100.0, seed=7, initial_orders=0, sellers=sellers))
    with serve_in_thread(app) as base_url:
        yield base_url, app


def configure(channel, monkeypatch, marketplace: str, **account) -> None:
    """One account on ``marketplace`` (through its Amazon endpoint) feeding the store view of ``store_id``."""
    from airflow.sdk import BaseHook

    amazon = json.loads(BaseHook.get_connection("amazon_sp_api").as_json())
    region = {**amazon, "host": amazon["host"] + ENDPOINT[marketplace]}
    monkeypatch.setenv("AIRFLOW_CONN_AMAZON_SP_API_REGION", json.dumps(region))
    channel.configure(marketplace_ids=[marketplace], amazon_conn_id="amazon_sp_api_region", **account)


def assert_success(states):
    failed = {k: v for k, v in states.items() if v not in ("success", "skipped")}
    assert not failed, failed


def money(amount: str, currency: str) -> dict:
    return {"amount": amount, "currencyCode": currency}


def fixed_order(channel, marketplace: str, seed: int, lines: dict[str, str], address: dict | None = None) -> dict:
    """A generated merchant order of ``marketplace`` with one item of exactly ``lines`` (ITEM, TAX, SHIPPING...
    amounts in the marketplace's currency, quantity 3) and, when given, ``address`` as the delivery address."""
    [order] = channel.generated_orders(
        1, seed=seed, status="UNSHIPPED", fulfilled_by="MERCHANT", marketplace_ids=[marketplace]
    )
    currency = order["proceeds"]["grandTotal"]["currencyCode"]
    item = copy.deepcopy(order["orderItems"][0])
    item["quantityOrdered"] = 3
    item["product"]["price"]["unitPrice"] = money(str(D(lines["ITEM"]) / 3), currency)
    breakdowns = [{"type": kind, "subtotal": money(amount, currency)} for kind, amount in lines.items()]
    total = str(sum((D(a) for a in lines.values()), D(0)))
    item["proceeds"] = {"breakdowns": breakdowns, "proceedsTotal": money(total, currency)}
    item["fulfillment"] = {"quantityFulfilled": 0, "quantityUnfulfilled": 3}
    order["orderItems"] = [item]
    order["proceeds"] = {"grandTotal": money(total, currency), "breakdowns": breakdowns}
    if address is not None:
        order["recipient"] = {"deliveryAddress": address}
    return order


def test_eur_order_on_a_usd_store_carries_base_amounts_at_commerce_rate(channel, monkeypatch):
    """The issue's example: EUR 24.90 + EUR 4.73 tax on a USD store at USD→EUR 0.92 → base_grand_total 32.21."""
    configure(channel, monkeypatch, DE, store_id=3)
    address = {
        "name": "  Frau  Anna  Groß ",
        "addressLine1": "",
        "addressLine2": "Königsallee 1",
        "city": "Düsseldorf",
        "stateOrRegion": "nordrhein-westfalen",
        "postalCode": "40212",
        "countryCode": "DE",
    }
    order = fixed_order(channel, DE, 51, {"ITEM": "24.90", "TAX": "4.73"}, address)
    channel.load_amazon_orders([order])
    assert_success(channel.run_dag("amazon_order_import"))

    placed = channel.commerce_orders_by_amazon_id()[order["orderId"]]
    assert len(placed) == 1
    got = placed[0]
    assert (got["store_id"], got["order_currency_code"], got["base_currency_code"]) == (3, "EUR", "USD")
    assert D(str(got["base_to_order_rate"])) == D("0.92")
    amounts = {k: D(str(got[k])) for k in ("grand_total", "base_grand_total", "base_subtotal", "base_tax_amount")}
    assert amounts == {
        "grand_total": D("29.63"),
        "base_grand_total": D("32.21"),
        "base_subtotal": D("27.07"),
        "base_tax_amount": D("5.14"),
    }
    [line] = got["items"]
    assert (D(str(line["base_row_total"])), D(str(line["base_tax_amount"]))) == (D("27.07"), D("5.14"))
    billing = got["billing_address"]
    assert (billing["firstname"], billing["lastname"]) == ("Frau Anna", "Groß")
    assert billing["street"] == ["Königsallee 1"]
    assert (billing["region"], billing["country_id"]) == ("Nordrhein-Westfalen", "DE") and billing["region_id"]


def test_order_waits_for_a_missing_rate_and_is_created_once_the_rate_exists(channel, monkeypatch):
    configure(channel, monkeypatch, JP, store_id=3)
    address = {
        "name": "山田 太郎",
        "addressLine1": "恵比寿1-2-3",
        "addressLine2": "ハイツ201",
        "districtOrCounty": "渋谷区",
        "stateOrRegion": "東京都",
        "postalCode": "150-0013",
        "countryCode": "JP",
    }
    order = fixed_order(channel, JP, 52, {"ITEM": "4500", "SHIPPING": "750"}, address)
    channel.load_amazon_orders([order])
    assert_success(channel.run_dag("amazon_order_import"))

    assert order["orderId"] not in channel.commerce_orders_by_amazon_id()
    row = channel.store.orders.get(order["orderId"])
    assert row["sync_status"] == "waiting_product"
    assert "no USD→JPY rate in Commerce: Stores ▸ Currency Rates" in row["sync_reason"]
    assert order["orderId"] not in {q["entity_id"] for q in open_quarantine(channel.store)}

    channel.commerce("POST", "/_sandbox/currency-rates", json={"rates": {"USD": {"JPY": "150"}}})
    assert_success(channel.run_dag("amazon_order_import"))
    [got] = channel.commerce_orders_by_amazon_id()[order["orderId"]]
    assert (got["order_currency_code"], got["base_currency_code"], D(str(got["base_to_order_rate"]))) == (
        "JPY",
        "USD",
        D("150"),
    )
    assert (D(str(got["base_subtotal"])), D(str(got["base_shipping_amount"])), D(str(got["base_grand_total"]))) == (
        D("30.00"),
        D("5.00"),
        D("35.00"),
    )
    assert channel.store.orders.get(order["orderId"])["sync_status"] == "imported"
    billing = got["billing_address"]
    assert billing["street"] == ["恵比寿1-2-3", "ハイツ201"] and billing["city"] == "渋谷区"
    assert billing["region"] == "東京都" and not billing.get("region_id")  # Magento has no Japanese regions


def _us_address(state: str | None, country: str = "US") -> dict:
    address = {
        "name": "Seán O’Brien",
        "addressLine1": "1 Main St",
        "city": "Springfield",
        "postalCode": "00901",
        "countryCode": country,
    }
    return {**address, "stateOrRegion": state} if state is not None else address


@pytest.mark.parametrize("customer_creation", ["guest", "create_account"])
def test_regions_resolved_through_the_directory_or_quarantined(channel, monkeypatch, customer_creation):
    configure(channel, monkeypatch, US, customer_creation=customer_creation)
    orders = {
        name: fixed_order(channel, US, 60 + i, {"ITEM": "30.00", "TAX": "2.10"}, _us_address(*args))
        for i, (name, args) in enumerate(
            {
                "WA": ("WA",),
                "californiA": ("californiA",),
                "missing": (None,),
                "Atlantis": ("Atlantis",),
                "PR": ("San Juan", "PR"),
            }.items()
        )
    }
    channel.load_amazon_orders(list(orders.values()))
    assert_success(channel.run_dag("amazon_order_import"))

    from sandboxes.commerce.directory import load_directory

    region_ids = {r.code: r.id for r in load_directory().country_regions("US")}
    by_id = channel.commerce_orders_by_amazon_id()
    for name, code, region in (
        ("WA", "WA", "Washington"),
        ("californiA", "CA", "California"),
        ("PR", "PR", "Puerto Rico"),
    ):
        [got] = by_id[orders[name]["orderId"]]
        billing = got["billing_address"]
        assert (billing["country_id"], billing["region_code"], billing["region"]) == ("US", code, region), name
        assert int(billing["region_id"]) == region_ids[code]
        assert (billing["firstname"], billing["lastname"]) == ("Seán", "O’Brien")
    quarantined = {q["entity_id"]: q["reason"] for q in open_quarantine(channel.store)}
    for name, shown in (("missing", "no state or region"), ("Atlantis", "'Atlantis'")):
        order_id = orders[name]["orderId"]
        assert order_id not in by_id
        assert shown in quarantined[order_id] and "of US, which requires one" in quarantined[order_id]
    if customer_creation == "create_account":
        # Magento's customer address validator took the resolved region (it refuses one without region_id).
        customers = channel.commerce("GET", "/_sandbox/state")["customers"]
        customers = list(customers.values()) if isinstance(customers, dict) else customers
        assert len(customers) == 3
        regions = sorted(int(c["addresses"][0]["region_id"]) for c in customers)
        assert regions == sorted(region_ids[code] for code in ("WA", "CA", "PR"))
