"""Settings are validated (JSON Schema, ``jsonschema``) with messages that name the field and the fix."""

from __future__ import annotations

import dataclasses
import json

import pytest

from amazon_commerce_sync.settings import (
    ACCOUNT_SCHEMA,
    SETTINGS_SCHEMA,
    AccountSettings,
    SettingsError,
    load_settings,
    parse_settings,
)

VALID = {"account_id": "us-main", "marketplace_ids": ["ATVPDKIKX0DER"], "import_orders_after": "2026-01-01T00:00:00Z"}


def test_defaults_follow_the_sales_channel():
    account = parse_settings({"accounts": [VALID]}).account("us-main")
    assert account.customer_creation == "guest"
    assert account.order_number_source == "commerce"
    assert account.import_enabled and account.invoice_on_import and account.manage_stock
    assert account.marketplace_facilitator_tax == "include" and account.import_replacement_orders
    assert account.shipping_method("NextDay") == "amazon_nextday"
    assert account.shipping_method("Unknown") == account.default_shipping_method
    assert account.commerce_sku("X") == "X"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"marketplace_ids": []}, r"accounts\[0\]\.marketplace_ids"),
        (
            {"marketplace_ids": ["ATVPDKIKX0DER", "nope"]},
            r"marketplace_ids\[1\]: 'nope' is not an Amazon marketplace id",
        ),
        ({"import_orders_after": "yesterday"}, "import_orders_after.*ISO 8601"),
        ({"import_orders_after": "2026-01-01T00:00:00"}, "no time zone"),
        ({"customer_creation": "always"}, "customer_creation.*guest, create_account"),
        ({"order_number_source": "x"}, "order_number_source"),
        ({"marketplace_facilitator_tax": "drop"}, "marketplace_facilitator_tax: 'drop' is not one of include, exclude"),
        ({"import_replacement_orders": "no"}, "import_replacement_orders: 'no' must be true or false"),
        ({"page_size": 500}, r"accounts\[0\]\.page_size: 500 must be a whole number from 1 to 100"),
        ({"page_size": 50.0}, "page_size: 50.0 must be a whole number"),  # a count is written as one
        ({"concurrency": True}, "concurrency: True must be a whole number from 1 to 32"),
        ({"overlap_minutes": 1}, "overlap_minutes"),
        ({"invoice_on_import": "yes"}, "invoice_on_import.*true or false"),
        ({"sku_map": {"A": 1}}, r"accounts\[0\]\.sku_map: must be an object mapping strings to non-empty strings"),
        ({"carrier_map": "ups"}, "carrier_map: must be an object mapping"),
        ({"merchant_id": "  "}, "merchant_id: must be a non-empty string"),
        ({"refund_reason": "Because"}, "refund_reason"),
        ({"colour": "red"}, r"unknown setting\(s\) \['colour'\]; known settings are \['account_id', "),
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
    with pytest.raises(SettingsError, match=r"^accounts\[1\]: must be an object$"):
        parse_settings({"accounts": [VALID, "us-main"]})


def test_every_problem_is_named_at_once_in_order():
    with pytest.raises(SettingsError) as raised:
        parse_settings({"accounts": [{"account_id": "x"}, {**VALID, "account_id": "eu", "page_size": 0}]})
    assert str(raised.value) == (
        "accounts[0].marketplace_ids: required; see README 'Settings' | "
        "accounts[0].import_orders_after: required; see README 'Settings' | "
        "accounts[1].page_size: 0 must be a whole number from 1 to 100"
    )


def test_the_schema_is_valid_2020_12_and_covers_exactly_the_account_fields():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(SETTINGS_SCHEMA)
    assert set(ACCOUNT_SCHEMA["properties"]) == {f.name for f in dataclasses.fields(AccountSettings)}


def test_maps_extend_the_defaults():
    account = parse_settings(
        {"accounts": [{**VALID, "carrier_map": {"Speedy": "Other"}, "shipping_method_map": {"NextDay": "express"}}]}
    ).accounts[0]
    assert account.carrier_map["speedy"] == "Other" and account.carrier_map["ups"] == "UPS"
    assert account.shipping_method("NextDay") == "express" and account.shipping_method("Standard") == "amazon_standard"


def test_load_from_file(tmp_path, monkeypatch):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"accounts": [VALID]}))
    monkeypatch.setenv("SALES_CHANNEL_SETTINGS_FILE", str(path))
    assert load_settings().accounts[0].account_id == "us-main"
    monkeypatch.setenv("SALES_CHANNEL_SETTINGS_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings()


def test_the_deployment_wide_key_age_setting():
    assert parse_settings({"accounts": [VALID]}).pii_key_max_age_days == 90
    assert parse_settings({"accounts": [VALID], "pii_key_max_age_days": 30}).pii_key_max_age_days == 30
    for bad in (0, 3651, "90", 90.0):
        with pytest.raises(SettingsError, match=rf"^pii_key_max_age_days: {bad!r} must be a whole number from 1 to"):
            parse_settings({"accounts": [VALID], "pii_key_max_age_days": bad})
