"""The Sales Channel settings: which Amazon accounts go to which Commerce store, and how.

They live in the Airflow Variable ``sales_channel_settings`` (JSON), or in a
JSON file named by the environment variable ``SALES_CHANNEL_SETTINGS_FILE``.
They are read and validated when a task starts (never at DAG parse time); an
invalid setting fails the task with a message naming the field and the fix.
Every setting is documented in README.md ("Settings").
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from amazon_commerce_sync.constants import ACCOUNT_ID_PATTERN, AMAZON_CONN_ID, COMMERCE_CONN_ID, SETTINGS_VARIABLE

MARKETPLACE_ID = re.compile(r"^[A-Z0-9]{10,14}$")
CUSTOMER_CREATION = ("guest", "create_account")
ORDER_NUMBER_SOURCE = ("commerce", "amazon")
MARKETPLACE_FACILITATOR_TAX = ("include", "exclude")
ADJUSTMENT_REASONS = (
    "NoInventory",
    "CustomerReturn",
    "GeneralAdjustment",
    "CouldNotShip",
    "DifferentItem",
    "Abandoned",
    "CustomerCancel",
    "PriceError",
    "ProductOutofStock",
    "CustomerAddressIncorrect",
    "Exchange",
    "Other",
    "CarrierCreditDecision",
    "RiskAssessmentInformationNotValid",
    "CarrierCoverageFailure",
    "TransactionRecord",
    "Undeliverable",
    "RefusedDelivery",
)

DEFAULT_SHIPPING_METHODS = {
    "Standard": "amazon_standard",
    "Expedited": "amazon_expedited",
    "SecondDay": "amazon_secondday",
    "NextDay": "amazon_nextday",
    "Scheduled": "amazon_scheduled",
    "FreeEconomy": "amazon_standard",
}

# Commerce carrier code (or title, lower-case) -> Amazon carrierCode, before Amazon's list (carriers.py), which
# matches the rest by code and title ("DHL Express" is on Amazon's list in its own right).
DEFAULT_CARRIER_MAP = {
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "FedEx",
    "dhl": "DHL",
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
    # Amazon programs (README "How the import behaves"): tax Amazon collects, replacement and exchange orders.
    marketplace_facilitator_tax: str = "include"
    import_replacement_orders: bool = True
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
    # Alert (once per order) when an unshipped merchant-fulfilled order is this close to its ship-by deadline.
    alert_ship_by_hours: int = 12
    # The healthcheck warns this many days before Amazon removes an operation the hooks call (hooks/operations.py).
    deprecation_warning_days: int = 90

    def commerce_sku(self, seller_sku: str) -> str:
        return self.sku_map.get(seller_sku, seller_sku)

    def shipping_method(self, service_level: str | None) -> str:
        return self.shipping_method_map.get(service_level or "", self.default_shipping_method)

    @property
    def merchant_identifier(self) -> str:
        return self.merchant_id or self.account_id

    def orders_cursor(self, region: str) -> str:
        """The extraction cursor of the account's orders in an Amazon region (``NA``, ``EU``, ``FE``): one
        ``searchOrders`` window covers all of the account's marketplaces there (``marketplaces.py``)."""
        return f"orders:{self.account_id}:{region}"

    def marketplace_cursor(self, marketplace_id: str) -> str:
        """The per-marketplace cursor earlier releases kept; read once to start the region's cursor, then removed."""
        return f"orders:{self.account_id}:{marketplace_id}"


@dataclasses.dataclass(frozen=True)
class Settings:
    """The accounts, and the settings of the deployment as a whole."""

    accounts: tuple[AccountSettings, ...]
    # The healthcheck warns when the buyer-data key that encrypts (store/pii_crypto.py) was first seen longer ago
    # than this (README "Amazon Data Protection Policy": keys are rotated).
    pii_key_max_age_days: int = 90

    def account(self, account_id: str) -> AccountSettings:
        for account in self.accounts:
            if account.account_id == account_id:
                return account
        raise SettingsError(f"accounts: no account {account_id!r}; known: {[a.account_id for a in self.accounts]}")


# -- the schema ------------------------------------------------------------------------------------------
# JSON Schema draft 2020-12, validated with ``jsonschema``. ``message`` is this module's own keyword (unknown
# keywords are annotations in 2020-12): the text after "<field>: " when the value under it is invalid, with
# ``{value!r}`` standing for the value. The account's fields are those of :class:`AccountSettings` (tested).
def _whole(low: int, high: int) -> dict[str, Any]:
    return {
        "type": "integer",
        "minimum": low,
        "maximum": high,
        "message": f"{{value!r}} must be a whole number from {low} to {high}",
    }


def _choice(values: tuple[str, ...]) -> dict[str, Any]:
    return {"enum": list(values), "message": "{value!r} is not one of " + ", ".join(values)}


_NOT_ISO_8601 = "{value!r} is not an ISO 8601 date-time; write e.g. '2026-01-01T00:00:00Z'"
_TEXT = {"type": "string", "pattern": r"\S", "message": "must be a non-empty string"}
_FLAG = {"type": "boolean", "message": "{value!r} must be true or false"}
_MAP = {
    "type": "object",
    "additionalProperties": {"type": "string", "minLength": 1},
    "message": "must be an object mapping strings to non-empty strings",
}

ACCOUNT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["account_id", "marketplace_ids", "import_orders_after"],
    "additionalProperties": False,
    "properties": {
        "account_id": {
            "type": "string",
            "pattern": ACCOUNT_ID_PATTERN,
            "message": "use 1-64 letters, digits, '.', '_' or '-'",
        },
        "marketplace_ids": {
            "type": "array",
            "minItems": 1,
            "message": 'give a non-empty list, e.g. ["ATVPDKIKX0DER"]',
            "items": {
                "type": "string",
                "pattern": MARKETPLACE_ID.pattern,
                "message": "{value!r} is not an Amazon marketplace id",
            },
        },
        # ISO 8601 with a time zone: checked when parsed (the messages tell the two mistakes apart).
        "import_orders_after": {"type": "string", "message": _NOT_ISO_8601},
        **dict.fromkeys(
            (
                "merchant_id",
                "amazon_conn_id",
                "commerce_conn_id",
                "new_order_status",
                "payment_method",
                "default_shipping_method",
                "source_code",
            ),
            _TEXT,
        ),
        **dict.fromkeys(
            (
                "import_enabled",
                "invoice_on_import",
                "manage_stock",
                "anonymise_commerce_orders",
                "import_replacement_orders",
            ),
            _FLAG,
        ),
        "customer_creation": _choice(CUSTOMER_CREATION),
        "order_number_source": _choice(ORDER_NUMBER_SOURCE),
        "marketplace_facilitator_tax": _choice(MARKETPLACE_FACILITATOR_TAX),
        "refund_reason": _choice(ADJUSTMENT_REASONS),
        "store_id": _whole(0, 10**6),
        "overlap_minutes": _whole(2, 24 * 60),
        "max_window_days": _whole(1, 365),
        "page_size": _whole(1, 100),  # searchOrders maxResultsPerPage
        "concurrency": _whole(1, 32),
        "pii_retention_days": _whole(1, 3650),
        "alert_import_lag_minutes": _whole(5, 7 * 24 * 60),
        "alert_stuck_hours": _whole(1, 24 * 90),
        "alert_repeat_minutes": _whole(0, 7 * 24 * 60),
        "alert_ship_by_hours": _whole(1, 7 * 24),
        "deprecation_warning_days": _whole(0, 3650),
        **dict.fromkeys(("shipping_method_map", "sku_map", "carrier_map"), _MAP),
    },
}

SETTINGS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["accounts"],
    "properties": {
        "accounts": {"type": "array", "minItems": 1, "items": ACCOUNT_SCHEMA},
        "pii_key_max_age_days": _whole(1, 3650),
    },
}

_STRUCTURE = 'settings: expected {"accounts": [ {...}, ... ]} with at least one account'
_MAX_REPORTED = 10


@functools.cache
def _validator():
    import jsonschema

    base = jsonschema.Draft202012Validator
    base.check_schema(SETTINGS_SCHEMA)
    # JSON Schema counts 100.0 as an integer; a setting that is a count must be written as one.
    checker = base.TYPE_CHECKER.redefine("integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))
    return jsonschema.validators.extend(base, type_checker=checker)(SETTINGS_SCHEMA)


def _where(path: Any) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _messages(error: Any) -> list[str]:
    """The field-and-fix messages of one ``jsonschema`` error (a missing setting gives one per setting)."""
    path = list(error.absolute_path)
    if len(path) == 1 and path[0] != "accounts":  # a setting of the deployment as a whole
        own = SETTINGS_SCHEMA["properties"][path[0]]["message"]
        return [f"{path[0]}: {own.format(value=error.instance)}"]
    if len(path) < 2:  # the document or the accounts list itself
        return [_STRUCTURE]
    where = _where(path[:2])
    if len(path) == 2:  # an account as a whole
        if error.validator == "required":
            return [
                f"{where}.{name}: required; see README 'Settings'"
                for name in error.validator_value
                if name not in error.instance
            ]
        if error.validator == "additionalProperties":
            known = sorted(ACCOUNT_SCHEMA["properties"])
            unknown = sorted(set(error.instance) - set(known))
            return [f"{where}: unknown setting(s) {unknown}; known settings are {known}"]
        return [f"{where}: must be an object"]
    own = error.schema.get("message") if isinstance(error.schema, dict) else None
    if own is None:  # e.g. a value inside a map: the field's own message
        path, own = path[:3], ACCOUNT_SCHEMA["properties"][path[2]]["message"]
    value = error.instance if own and len(path) == len(error.absolute_path) else None
    return [f"{_where(path)}: {own.format(value=value)}"]


def _parse_time(field: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(f"{field}: {_NOT_ISO_8601.format(value=value)}") from None
    if parsed.tzinfo is None:
        raise SettingsError(f"{field}: {value!r} has no time zone; add 'Z' or an offset such as '+00:00'")
    return parsed.astimezone(UTC)


def _account(raw: Mapping[str, Any], index: int) -> AccountSettings:
    """An :class:`AccountSettings` from a valid account object; the maps extend the defaults."""
    kw = dict(raw)
    kw["marketplace_ids"] = tuple(raw["marketplace_ids"])
    kw["import_orders_after"] = _parse_time(f"accounts[{index}].import_orders_after", raw["import_orders_after"])
    if "shipping_method_map" in raw:
        kw["shipping_method_map"] = {**DEFAULT_SHIPPING_METHODS, **raw["shipping_method_map"]}
    if "carrier_map" in raw:
        from amazon_commerce_sync.carriers import normalise, unknown_codes

        unknown = unknown_codes(raw["carrier_map"])
        if unknown:
            raise SettingsError(
                f"accounts[{index}].carrier_map: {[raw['carrier_map'][k] for k in unknown]} not on Amazon's carrier "
                "list; use the exact listed carrierCode (README 'Shipments'), or 'Other' to send the track's title "
                "as carrierName"
            )
        kw["carrier_map"] = {**DEFAULT_CARRIER_MAP, **{normalise(k): v for k, v in raw["carrier_map"].items()}}
    return AccountSettings(**kw)


def parse_settings(raw: Any) -> Settings:
    """Validate the settings (a JSON text or its parsed value) against :data:`SETTINGS_SCHEMA`.

    :returns: the :class:`Settings`, every default filled in.
    :raises SettingsError: naming each invalid field (at most ten, by position) and how to fix it, e.g.
        ``accounts[0].page_size: 500 must be a whole number from 1 to 100``.
    """
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"settings: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    errors = sorted(_validator().iter_errors(raw), key=lambda e: [(isinstance(p, str), p) for p in e.absolute_path])
    messages = list(dict.fromkeys(m for e in errors for m in _messages(e)))
    if messages:
        more = f" (and {len(messages) - _MAX_REPORTED} more)" if len(messages) > _MAX_REPORTED else ""
        raise SettingsError(" | ".join(messages[:_MAX_REPORTED]) + more)
    accounts = tuple(_account(a, i) for i, a in enumerate(raw["accounts"]))
    ids = [a.account_id for a in accounts]
    if len(set(ids)) != len(ids):  # JSON Schema's uniqueItems compares whole objects, not one field
        raise SettingsError(f"accounts: account_id values must be unique, got {ids}")
    return Settings(accounts=accounts, **{k: raw[k] for k in ("pii_key_max_age_days",) if k in raw})


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
