"""Settings are validated with messages that name the field and the fix."""

from __future__ import annotations

import json

import pytest

from amazon_commerce_sync.settings import SettingsError, load_settings, parse_settings

VALID = {"account_id": "us-main", "marketplace_ids": ["ATVPDKIKX0DER"], "import_orders_after": "2026-01-01T00:00:00Z"}


def test_defaults_follow_the_sales_channel():
    account = parse_settings({"accounts": [VALID]}).account("us-main")
    assert account.customer_creation == "guest"
    assert account.order_number_source == "commerce"
    assert account.import_enabled and account.invoice_on_import and account.manage_stock
    assert account.shipping_method("NextDay") == "amazon_nextday"
    assert account.shipping_method("Unknown") == account.default_shipping_method
    assert account.commerce_sku("X") == "X"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"marketplace_ids": []}, r"accounts\[0\]\.marketplace_ids"),
        ({"marketplace_ids": ["nope"]}, "not an Amazon marketplace id"),
        ({"import_orders_after": "yesterday"}, "import_orders_after.*ISO 8601"),
        ({"import_orders_after": "2026-01-01T00:00:00"}, "no time zone"),
        ({"customer_creation": "always"}, "customer_creation.*guest, create_account"),
        ({"order_number_source": "x"}, "order_number_source"),
        ({"page_size": 500}, "page_size.*1 to 100"),
        ({"overlap_minutes": 1}, "overlap_minutes"),
        ({"invoice_on_import": "yes"}, "invoice_on_import.*true or false"),
        ({"sku_map": {"A": 1}}, "sku_map"),
        ({"refund_reason": "Because"}, "refund_reason"),
        ({"colour": "red"}, "unknown setting"),
        ({"account_id": "bad id!"}, "account_id"),
    ],
)
def test_invalid_settings_name_the_field(change, message):
    with pytest.raises(SettingsError, match=message):
        parse_settings({"accounts": [{**VALID, **change}]})


def test_structure_errors():
    with pytest.raises(SettingsError, match="not valid JSON"):
        parse_settings("{")
    with pytest.raises(SettingsError, match="at least one account"):
        parse_settings({"accounts": []})
    with pytest.raises(SettingsError, match="unique"):
        parse_settings({"accounts": [VALID, VALID]})
    with pytest.raises(SettingsError, match="required"):
        parse_settings({"accounts": [{"account_id": "x"}]})


def test_load_from_file(tmp_path, monkeypatch):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"accounts": [VALID]}))
    monkeypatch.setenv("SALES_CHANNEL_SETTINGS_FILE", str(path))
    assert load_settings().accounts[0].account_id == "us-main"
    monkeypatch.setenv("SALES_CHANNEL_SETTINGS_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings()
