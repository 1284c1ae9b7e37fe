"""Pure parts of the hooks: searchCriteria, Decimal JSON, timestamps, connection validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from amazon_commerce_sync.errors import AuthenticationError
from amazon_commerce_sync.hooks.amazon import RATE_SAFETY, AmazonSpApiHook, iso_utc
from amazon_commerce_sync.hooks.commerce import CommerceHook
from amazon_commerce_sync.hooks.rest import dumps, loads, parse_timeout
from amazon_commerce_sync.hooks.search_criteria import Filter, magento_datetime, search_criteria


def test_search_criteria_php_style_params():
    params = search_criteria(
        [[Filter("ext_order_id", ["A-1", "A-2"], "in"), Filter("increment_id", "100")], [Filter("store_id", 1)]],
        sort=[("updated_at", "asc"), ("entity_id", "DESC")],
        page_size=50,
        current_page=3,
    )
    assert params == [
        ("searchCriteria[filter_groups][0][filters][0][field]", "ext_order_id"),
        ("searchCriteria[filter_groups][0][filters][0][value]", "A-1,A-2"),
        ("searchCriteria[filter_groups][0][filters][0][condition_type]", "in"),
        ("searchCriteria[filter_groups][0][filters][1][field]", "increment_id"),
        ("searchCriteria[filter_groups][0][filters][1][value]", "100"),
        ("searchCriteria[filter_groups][0][filters][1][condition_type]", "eq"),
        ("searchCriteria[filter_groups][1][filters][0][field]", "store_id"),
        ("searchCriteria[filter_groups][1][filters][0][value]", "1"),
        ("searchCriteria[filter_groups][1][filters][0][condition_type]", "eq"),
        ("searchCriteria[sortOrders][0][field]", "updated_at"),
        ("searchCriteria[sortOrders][0][direction]", "ASC"),
        ("searchCriteria[sortOrders][1][field]", "entity_id"),
        ("searchCriteria[sortOrders][1][direction]", "DESC"),
        ("searchCriteria[pageSize]", "50"),
        ("searchCriteria[currentPage]", "3"),
    ]
    assert search_criteria([]) == []
    with pytest.raises(ValueError):
        search_criteria([], sort=[("x", "sideways")])


def test_datetime_filter_values_are_magento_utc():
    when = datetime(2026, 3, 1, 12, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert magento_datetime(when) == "2026-03-01 10:00:05"
    assert search_criteria([[Filter("updated_at", when, "gteq")]])[1][1] == "2026-03-01 10:00:05"
    with pytest.raises(ValueError):
        magento_datetime(datetime(2026, 1, 1))


def test_decimal_json_round_trip_without_float():
    body = {"grand_total": Decimal("19.99"), "qty": Decimal("1.0000"), "items": [{"price": Decimal("0.10")}], "n": 3}
    text = dumps(body)
    assert '"grand_total": 19.99' in text and '"qty": 1.0000' in text and '"price": 0.10' in text
    parsed = loads(text)
    assert parsed["grand_total"] == Decimal("19.99") and isinstance(parsed["items"][0]["price"], Decimal)
    assert json.loads(text)["n"] == 3
    assert loads('{"a": 0.1}')["a"] + loads('{"a": 0.2}')["a"] == Decimal("0.3")
    with pytest.raises(ValueError):
        dumps({"x": Decimal("NaN")})


def test_iso_utc_z():
    assert iso_utc(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    assert iso_utc(datetime(2026, 1, 2, 5, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2)))) == (
        "2026-01-02T03:04:05.123Z"
    )
    with pytest.raises(ValueError):
        iso_utc(datetime(2026, 1, 2))


def test_timeouts_default_and_from_extra():
    assert parse_timeout(None) == (10.0, 60.0)
    assert parse_timeout(30) == (10.0, 30.0)
    assert parse_timeout([3, 9]) == (3.0, 9.0)


def set_conn(monkeypatch, conn_id: str, **conn) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "http", **conn}))


def test_amazon_connection_missing_fields_named(monkeypatch):
    set_conn(monkeypatch, "amz_bad", host="https://sellingpartnerapi-na.amazon.com", login="client-id")
    with pytest.raises(AuthenticationError) as info:
        _ = AmazonSpApiHook("amz_bad").settings
    text = str(info.value)
    assert "amz_bad" in text and "password (the LWA client secret)" in text and "extra.refresh_token" in text


def test_amazon_connection_settings_hide_secrets(monkeypatch):
    set_conn(
        monkeypatch,
        "amz_ok",
        host="https://sellingpartnerapi-eu.amazon.com",
        login="cid",
        password="csecret",
        extra={"refresh_token": "Atzr|refresh-secret", "rate_scale": 2.5, "timeout": [1, 2]},
    )
    hook = AmazonSpApiHook("amz_ok")
    s = hook.settings
    assert (s.base_url, s.rate_scale, s.timeout) == ("https://sellingpartnerapi-eu.amazon.com", 2.5, (1.0, 2.0))
    assert s.lwa_endpoint == "https://api.amazon.com/auth/o2/token"
    assert "csecret" not in repr(s) and "refresh-secret" not in repr(s) and "refresh-secret" not in s.seller_key
    assert hook.rate_limit_headroom()["searchOrders"]["client_rate"] == pytest.approx(0.0056 * 2.5 * RATE_SAFETY)
    # the session must not carry the connection's extras or Basic auth
    session = hook.session
    assert session.auth is None and "refresh_token" not in session.headers


def test_commerce_connection_validation(monkeypatch):
    set_conn(monkeypatch, "shop_oauth", host="http://127.0.0.1:1", extra={"auth": "oauth1", "consumer_key": "k"})
    missing = "extra.consumer_secret; extra.access_token; extra.access_token_secret"
    with pytest.raises(AuthenticationError, match=missing):
        _ = CommerceHook("shop_oauth").settings
    set_conn(monkeypatch, "shop_weird", host="http://127.0.0.1:1", extra={"auth": "basic"})
    with pytest.raises(AuthenticationError, match="admin, bearer or oauth1"):
        _ = CommerceHook("shop_weird").settings
    set_conn(
        monkeypatch, "shop_ok", host="shop.example.com", login="admin", password="pw", extra={"store_code": "ca_en"}
    )
    hook = CommerceHook("shop_ok")
    assert hook.rest_url("/V1/orders") == "https://shop.example.com/rest/ca_en/V1/orders"
    assert "pw" not in repr(hook.settings)
