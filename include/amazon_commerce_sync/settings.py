"""The Sales Channel settings: which Amazon accounts go to which Commerce store, and how.

They live in the Airflow Variable ``sales_channel_settings`` (JSON), or in a
JSON file named by the environment variable ``SALES_CHANNEL_SETTINGS_FILE``.
They are read and validated when a task starts (never at DAG parse time); an
invalid setting fails the task with a message naming the field and the fix.
Every setting is documented in README.md ("Settings").
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from amazon_commerce_sync.constants import AMAZON_CONN_ID, COMMERCE_CONN_ID, SETTINGS_VARIABLE

MARKETPLACE_ID = re.compile(r"^[A-Z0-9]{10,14}$")
CUSTOMER_CREATION = ("guest", "create_account")
ORDER_NUMBER_SOURCE = ("commerce", "amazon")
ADJUSTMENT_REASONS = (
    "NoInventory", "CustomerReturn", "GeneralAdjustment", "CouldNotShip", "DifferentItem", "Abandoned",
    "CustomerCancel", "PriceError", "ProductOutofStock", "CustomerAddressIncorrect", "Exchange", "Other",
    "CarrierCreditDecision", "RiskAssessmentInformationNotValid", "CarrierCoverageFailure", "TransactionRecord",
    "Undeliverable", "RefusedDelivery",
)  # fmt: skip

DEFAULT_SHIPPING_METHODS = {
    "Standard": "amazon_standard",
    "Expedited": "amazon_expedited",
    "SecondDay": "amazon_secondday",
    "NextDay": "amazon_nextday",
    "Scheduled": "amazon_scheduled",
    "FreeEconomy": "amazon_standard",
}

# Commerce carrier code (or title, lower-case) -> Amazon carrierCode.
DEFAULT_CARRIER_MAP = {
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "FedEx",
    "dhl": "DHL",
    "dhl express": "DHL",
    "canada post": "Canada Post",
    "canadapost": "Canada Post",
    "royal mail": "Royal Mail",
    "amazon shipping": "Amazon Shipping",
    "ontrac": "OnTrac",
}


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the field and the fix."""


@dataclasses.dataclass(frozen=True)
class AccountSettings:
    """One Amazon seller account and the Commerce store view it feeds."""

    account_id: str
    marketplace_ids: tuple[str, ...]
    import_orders_after: datetime
    merchant_id: str = ""  # the seller id (MerchantIdentifier in feeds); defaults to account_id
    amazon_conn_id: str = AMAZON_CONN_ID
    commerce_conn_id: str = COMMERCE_CONN_ID
    store_id: int = 1
    import_enabled: bool = True
    customer_creation: str = "guest"
    order_number_source: str = "commerce"
    new_order_status: str = "pending"
    invoice_on_import: bool = True
    manage_stock: bool = True
    source_code: str = "default"
    payment_method: str = "checkmo"
    shipping_method_map: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_SHIPPING_METHODS))
    default_shipping_method: str = "amazon_standard"
    sku_map: Mapping[str, str] = dataclasses.field(default_factory=dict)
    carrier_map: Mapping[str, str] = dataclasses.field(default_factory=lambda: dict(DEFAULT_CARRIER_MAP))
    refund_reason: str = "CustomerReturn"
    overlap_minutes: int = 10
    max_window_days: int = 30
    page_size: int = 100
    concurrency: int = 4
    # Personal data and monitoring (README "Personal data" and "Alerts").
    pii_retention_days: int = 30
    anonymise_commerce_orders: bool = False  # also overwrite names, streets, phones on the Commerce order
    alert_import_lag_minutes: int = 60
    alert_stuck_hours: int = 24
    alert_repeat_minutes: int = 60

    def commerce_sku(self, seller_sku: str) -> str:
        return self.sku_map.get(seller_sku, seller_sku)

    def shipping_method(self, service_level: str | None) -> str:
        return self.shipping_method_map.get(service_level or "", self.default_shipping_method)

    @property
    def merchant_identifier(self) -> str:
        return self.merchant_id or self.account_id

    def cursor_stream(self, marketplace_id: str) -> str:
        return f"orders:{self.account_id}:{marketplace_id}"


@dataclasses.dataclass(frozen=True)
class Settings:
    accounts: tuple[AccountSettings, ...]

    def account(self, account_id: str) -> AccountSettings:
        for account in self.accounts:
            if account.account_id == account_id:
                return account
        raise SettingsError(f"accounts: no account {account_id!r}; known: {[a.account_id for a in self.accounts]}")


def _parse_time(field: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise SettingsError(
                f"{field}: {value!r} is not an ISO 8601 date-time; write e.g. '2026-01-01T00:00:00Z'"
            ) from None
    if parsed.tzinfo is None:
        raise SettingsError(f"{field}: {value!r} has no time zone; add 'Z' or an offset such as '+00:00'")
    return parsed.astimezone(UTC)


def _check_choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise SettingsError(f"{field}: {value!r} is not one of {', '.join(choices)}")
    return value


def _check_int(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SettingsError(f"{field}: {value!r} must be a whole number from {low} to {high}")
    return value


def _check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{field}: {value!r} must be true or false")
    return value


def _check_str(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{field}: must be a non-empty string")
    return value


def _check_map(field: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        raise SettingsError(f"{field}: must be an object mapping strings to non-empty strings")
    return dict(value)


def parse_account(raw: Mapping[str, Any], index: int) -> AccountSettings:
    where = f"accounts[{index}]"
    if not isinstance(raw, Mapping):
        raise SettingsError(f"{where}: must be an object")
    known = {f.name for f in dataclasses.fields(AccountSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SettingsError(f"{where}: unknown setting(s) {unknown}; known settings are {sorted(known)}")
    for required in ("account_id", "marketplace_ids", "import_orders_after"):
        if required not in raw:
            raise SettingsError(f"{where}.{required}: required; see README 'Settings'")
    kw: dict[str, Any] = {}
    kw["account_id"] = _check_str(f"{where}.account_id", raw["account_id"])
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", kw["account_id"]):
        raise SettingsError(f"{where}.account_id: use 1-64 letters, digits, '.', '_' or '-'")
    marketplaces = raw["marketplace_ids"]
    if not isinstance(marketplaces, list) or not marketplaces:
        raise SettingsError(f'{where}.marketplace_ids: give a non-empty list, e.g. ["ATVPDKIKX0DER"]')
    for m in marketplaces:
        if not isinstance(m, str) or not MARKETPLACE_ID.match(m):
            raise SettingsError(f"{where}.marketplace_ids: {m!r} is not an Amazon marketplace id")
    kw["marketplace_ids"] = tuple(marketplaces)
    kw["import_orders_after"] = _parse_time(f"{where}.import_orders_after", raw["import_orders_after"])
    for name in (
        "merchant_id",
        "amazon_conn_id",
        "commerce_conn_id",
        "new_order_status",
        "payment_method",
        "default_shipping_method",
        "source_code",
    ):
        if name in raw:
            kw[name] = _check_str(f"{where}.{name}", raw[name])
    for name in ("import_enabled", "invoice_on_import", "manage_stock", "anonymise_commerce_orders"):
        if name in raw:
            kw[name] = _check_bool(f"{where}.{name}", raw[name])
    if "customer_creation" in raw:
        kw["customer_creation"] = _check_choice(
            f"{where}.customer_creation", raw["customer_creation"], CUSTOMER_CREATION
        )
    if "order_number_source" in raw:
        kw["order_number_source"] = _check_choice(
            f"{where}.order_number_source", raw["order_number_source"], ORDER_NUMBER_SOURCE
        )
    if "refund_reason" in raw:
        kw["refund_reason"] = _check_choice(f"{where}.refund_reason", raw["refund_reason"], ADJUSTMENT_REASONS)
    limits = {"store_id": (0, 10**6), "overlap_minutes": (2, 24 * 60), "max_window_days": (1, 365),
              "page_size": (1, 100), "concurrency": (1, 32), "pii_retention_days": (1, 3650),
              "alert_import_lag_minutes": (5, 7 * 24 * 60), "alert_stuck_hours": (1, 24 * 90),
              "alert_repeat_minutes": (0, 7 * 24 * 60)}  # fmt: skip
    for name, (low, high) in limits.items():
        if name in raw:
            kw[name] = _check_int(f"{where}.{name}", raw[name], low, high)
    if "shipping_method_map" in raw:
        kw["shipping_method_map"] = {
            **DEFAULT_SHIPPING_METHODS,
            **_check_map(f"{where}.shipping_method_map", raw["shipping_method_map"]),
        }
    if "sku_map" in raw:
        kw["sku_map"] = _check_map(f"{where}.sku_map", raw["sku_map"])
    if "carrier_map" in raw:
        kw["carrier_map"] = {
            **DEFAULT_CARRIER_MAP,
            **{k.lower(): v for k, v in _check_map(f"{where}.carrier_map", raw["carrier_map"]).items()},
        }
    return AccountSettings(**kw)


def parse_settings(raw: Any) -> Settings:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"settings: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("accounts"), list) or not raw["accounts"]:
        raise SettingsError('settings: expected {"accounts": [ {...}, ... ]} with at least one account')
    accounts = tuple(parse_account(a, i) for i, a in enumerate(raw["accounts"]))
    ids = [a.account_id for a in accounts]
    if len(set(ids)) != len(ids):
        raise SettingsError(f"accounts: account_id values must be unique, got {ids}")
    return Settings(accounts=accounts)


def load_settings() -> Settings:
    """Read the settings (inside a task): the settings file if configured, else the Airflow Variable."""
    path = os.environ.get("SALES_CHANNEL_SETTINGS_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                return parse_settings(fh.read())
        except OSError as exc:
            raise SettingsError(f"SALES_CHANNEL_SETTINGS_FILE: cannot read {path!r}: {exc.strerror}") from None
    from airflow.sdk import Variable

    raw = Variable.get(SETTINGS_VARIABLE, default=None)
    if raw is None:
        raise SettingsError(
            f"settings: the Airflow Variable {SETTINGS_VARIABLE!r} is not set; "
            "create it with the JSON described in README 'Settings'"
        )
    return parse_settings(raw)
