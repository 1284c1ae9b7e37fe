"""Two Amazon accounts in two marketplaces and currencies, each feeding its own Commerce store view.

A US seller (Amazon.com, USD) goes to the default store view (USD); a German seller (Amazon.de, EUR),
authorised with its own refresh token, goes to a German store view whose base currency is EUR. One
import run maps one task group per account: two extracts and two loads, named by account (the earlier
cross product gave four loads), and each account's orders land once, in their own store, in their currency.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

pytestmark = pytest.mark.e2e

US, DE = "ATVPDKIKX0DER", "A1PA6795UKMFR9"
DE_SELLER, DE_REFRESH_TOKEN = "A1DESANDBOXSELLER", "sandbox-refresh-token-de"
DE_STORE = {
    "store_id": 3,
    "website_id": 3,
    "name": "Germany Store View",
    "base_currency": "EUR",
    "allowed_currencies": ["EUR"],
}


@pytest.fixture
def amazon_sandbox():
    """The Amazon sandbox with two sellers: the default one on Amazon.com only, and one on Amazon.de."""
    from sandboxes.amazon.app import create_app
    from sandboxes.amazon.config import DEFAULT_REFRESH_TOKEN, DEFAULT_SELLER_ID, AmazonSandboxConfig, Seller
    from sandboxes.server import serve_in_thread

    sellers = [Seller(DEFAULT_SELLER_ID, DEFAULT_REFRESH_TOKEN, [US]), Seller(DE_SELLER, DE_REFRESH_TOKEN, [DE])]
    app = create_app(
        AmazonSandboxConfig(speed=100.0, seed=7, initial_orders=0, finances_v0_removed=True, sellers=sellers)
    )
    with serve_in_thread(app) as base_url:
        yield base_url, app


@pytest.fixture
def commerce_sandbox():
    """The Commerce sandbox with a USD default store view (USD only) and a German store view in EUR."""
    from sandboxes.commerce.app import create_app
    from sandboxes.commerce.config import CommerceSandboxConfig
    from sandboxes.server import serve_in_thread

    config = CommerceSandboxConfig()
    config.stores["default"]["allowed_currencies"] = ["USD"]
    config.stores.pop("multi")  # store view ids are unique: the German store view takes id 3
    config.stores["de"] = DE_STORE
    app = create_app(config)
    with serve_in_thread(app) as base_url:
        yield base_url, app


@pytest.fixture
def two_accounts(channel, monkeypatch):
    from airflow.sdk import BaseHook

    amazon = json.loads(BaseHook.get_connection("amazon_sp_api").as_json())
    # Amazon.de is served by the EU endpoint (the sandbox: the /eu path), a connection of its own
    amazon_de = {
        **amazon,
        "host": amazon["host"] + "/eu",
        "extra": {**amazon["extra"], "refresh_token": DE_REFRESH_TOKEN},
    }
    commerce = json.loads(BaseHook.get_connection("commerce").as_json())
    commerce_de = {**commerce, "extra": {**commerce["extra"], "store_code": "de"}}
    monkeypatch.setenv("AIRFLOW_CONN_AMAZON_SP_API_DE", json.dumps(amazon_de))
    monkeypatch.setenv("AIRFLOW_CONN_COMMERCE_DE", json.dumps(commerce_de))
    base = {"import_orders_after": "2026-01-01T00:00:00Z", "concurrency": 2}
    accounts = [
        {**base, "account_id": "us-main", "marketplace_ids": [US]},
        {
            **base,
            "account_id": "de-main",
            "merchant_id": DE_SELLER,
            "marketplace_ids": [DE],
            "store_id": 3,
            "amazon_conn_id": "amazon_sp_api_de",
            "commerce_conn_id": "commerce_de",
        },
    ]
    channel.settings_path.write_text(json.dumps({"accounts": accounts}))
    return channel


def test_each_account_is_mapped_once_and_its_orders_land_once_in_its_store(two_accounts):
    channel = two_accounts
    us_orders = channel.generated_orders(3, seed=41, status="UNSHIPPED", fulfilled_by="MERCHANT", marketplace_ids=[US])
    de_orders = channel.generated_orders(3, seed=42, status="UNSHIPPED", fulfilled_by="MERCHANT", marketplace_ids=[DE])
    channel.load_amazon_orders(us_orders)
    channel.amazon("POST", "/_sandbox/orders", json={"orders": de_orders, "sellerId": DE_SELLER})

    states = channel.run_dag("amazon_order_import")

    assert states == {
        "accounts": "success",
        "account.extract[0]": "success",
        "account.extract[1]": "success",
        "account.load[0]": "success",
        "account.load[1]": "success",
        "anything_changed": "success",
        "announce": "success",
        "decision_requests": "success",  # no buyer asked to cancel: no decision run to open
        "request_decision": "skipped",
    }
    named = {(ti.task_id, ti.rendered_map_index) for ti in channel.last_run.get_task_instances() if ti.map_index >= 0}
    assert named == {(f"account.{step}", account) for step in ("extract", "load") for account in ("us-main", "de-main")}

    def landed() -> dict[str, list[dict]]:
        return channel.commerce_orders_by_amazon_id()

    for orders, store_id, currency in ((us_orders, 1, "USD"), (de_orders, 3, "EUR")):
        for order in orders:
            [commerce] = landed()[order["orderId"]]
            assert (commerce["store_id"], commerce["order_currency_code"]) == (store_id, currency)
            assert (commerce["base_currency_code"], commerce["base_to_order_rate"]) == (currency, 1)
            assert commerce["base_grand_total"] == commerce["grand_total"]
            assert order["proceeds"]["grandTotal"]["currencyCode"] == currency
            assert Decimal(str(commerce["grand_total"])) == Decimal(order["proceeds"]["grandTotal"]["amount"])
    assert len(landed()) == len(us_orders) + len(de_orders)

    assert set(channel.run_dag("amazon_order_import").values()) <= {"success", "skipped"}  # a rerun adds nothing
    assert {k: len(v) for k, v in landed().items()} == {o["orderId"]: 1 for o in us_orders + de_orders}
