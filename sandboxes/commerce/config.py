"""Configuration of the Commerce sandbox (all defaults are sandbox values, not secrets)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

# Stores > Currency Rates: Magento keeps one global table of (currency_from, currency_to) rates
# (directory_currency_rate); a store reads the rates from its base currency. No USD->JPY rate on purpose:
# the ``multi`` store view accepts JPY without one, as a merchant who forgot the rate has it.
DEFAULT_CURRENCY_RATES = {
    "USD": {"CAD": "1.3500", "EUR": "0.9200", "GBP": "0.7900"},
    "CAD": {"USD": "0.7407"},
}


def _default_integration() -> dict[str, str]:
    return {
        "consumer_key": "sandbox-consumer-key",
        "consumer_secret": "sandbox-consumer-secret",
        "access_token": "sandbox-access-token",
        "access_token_secret": "sandbox-access-token-secret",
    }


def _default_stores() -> dict[str, dict[str, Any]]:
    return {
        "default": {
            "store_id": 1,
            "website_id": 1,
            "name": "Default Store View",
            "base_currency": "USD",
            "allowed_currencies": ["USD", "CAD", "EUR"],
        },
        "ca_en": {
            "store_id": 2,
            "website_id": 2,
            "name": "Canada Store View",
            "base_currency": "CAD",
            "allowed_currencies": ["CAD", "USD"],
        },
        "multi": {
            "store_id": 3,
            "website_id": 3,
            "name": "Multi-currency Store View",
            "base_currency": "USD",
            "allowed_currencies": ["USD", "EUR", "GBP", "JPY"],
        },
    }


def _default_currency_rates() -> dict[str, dict[str, str]]:
    return {base: dict(rates) for base, rates in DEFAULT_CURRENCY_RATES.items()}


@dataclass
class CommerceSandboxConfig:
    """Everything that shapes one sandbox instance."""

    state_file: str | None = None
    admin_username: str = "admin"
    admin_password: str = "sandbox-admin-password"
    admin_token_ttl_seconds: int = 4 * 3600
    integration: dict[str, str] = field(default_factory=_default_integration)
    allow_oauth_tokens_as_bearer: bool = False
    stores: dict[str, dict[str, Any]] = field(default_factory=_default_stores)
    latency_ms: float = 0.0
    # OAuth 1.0a: accepted clock skew of oauth_timestamp, seconds.
    oauth_timestamp_window_seconds: int = 600
    # Magento 2.4.7+ "webapi/validation/maximum_page_size" (default 300); 0 disables the check.
    max_page_size: int = 300
    # Seed for the random fault injector (error_rate, drop_rate...).
    fault_seed: int | None = None
    # Initial Stores > Currency Rates {from: {to: rate}} (kept in the state afterwards; /_sandbox/currency-rates).
    currency_rates: dict[str, dict[str, str]] = field(default_factory=_default_currency_rates)
    # general/region/state_required: countries whose addresses need a state; None = Magento's default (every
    # country Magento ships regions for, except those of Country\Collection's countriesWithNotRequiredStates).
    state_required: list[str] | None = None
    # general/region/display_all ("Display not required State"): storefront forms only; no REST effect.
    display_all_states: bool = True
    # general/country/allow and general/country/optional_zip_countries; None = Magento's config.xml defaults.
    allowed_countries: list[str] | None = None
    optional_zip_countries: list[str] | None = None
    # Customer address attributes telephone/company/fax "is_required" (Stores > Configuration > Customers >
    # Name and Address Options); Magento's defaults: telephone required, company and fax optional.
    telephone_required: bool = True
    company_required: bool = False
    fax_required: bool = False
    # The UpdateRegionCodesFor{France,Germany,India,Spain}V1 data patches (ISO 3166-2 region codes, 2026):
    # True = a store that has them, False = region codes as older 2.4 stores have them (DE "NRW", ES "Barcelona").
    region_code_updates: bool = True

    def store_by_id(self, store_id: int) -> tuple[str, dict[str, Any]] | None:
        for code, store in self.stores.items():
            if int(store["store_id"]) == int(store_id):
                return code, store
        return None


_ENV_PREFIX = "COMMERCE_SANDBOX_"


def config_from_env(environ: dict[str, str] | None = None) -> CommerceSandboxConfig:
    """Build a config from ``COMMERCE_SANDBOX_*`` environment variables (unset ones keep defaults)."""
    env = os.environ if environ is None else environ
    cfg = CommerceSandboxConfig()
    for f in dataclasses.fields(cfg):
        raw = env.get(_ENV_PREFIX + f.name.upper())
        if raw is None:
            continue
        current = getattr(cfg, f.name)
        if f.name == "fault_seed":
            cfg.fault_seed = int(raw)
        elif isinstance(current, bool):
            setattr(cfg, f.name, raw.strip().lower() in ("1", "true", "yes", "on"))
        elif isinstance(current, int):
            setattr(cfg, f.name, int(raw))
        elif isinstance(current, float):
            setattr(cfg, f.name, float(raw))
        elif f.name in (
            "integration",
            "stores",
            "currency_rates",
            "state_required",
            "allowed_countries",
            "optional_zip_countries",
        ):
            import json

            setattr(cfg, f.name, json.loads(raw))
        else:
            setattr(cfg, f.name, raw)
    for key in ("consumer_key", "consumer_secret", "access_token", "access_token_secret"):
        raw = env.get(f"{_ENV_PREFIX}OAUTH_{key.upper()}")
        if raw is not None:
            cfg.integration[key] = raw
    return cfg
