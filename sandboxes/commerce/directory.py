"""Magento_Directory: countries, regions, the region settings of the store, currency information and rates.

Routes (``directory/etc/webapi.xml``): ``GET /V1/directory/countries``, ``GET /V1/directory/countries/{countryId}``
(``CountryInformationAcquirer``) and ``GET /V1/directory/currency`` (``CurrencyInformationAcquirer``).

The data (``directory.json``) is transcribed from Magento's directory data patches
(``app/code/Magento/Directory/Setup/Patch/Data/*.php``; paths and commits in the file). A region's id is its row
number in the order the patches are listed there, the order a fresh install applies them, so ids 1-511
(``InitializeDirectoryData``) are the ids of every Magento store; later ones are the sandbox's (see the file).
"""

from __future__ import annotations

import functools
import json
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import Response

from sandboxes.commerce.config import CommerceSandboxConfig
from sandboxes.commerce.context import Ctx, rest_context
from sandboxes.commerce.errors import not_found
from sandboxes.commerce.wire import ok

router = APIRouter()
DATA_FILE = Path(__file__).with_name("directory.json")
MSG_COUNTRY_NOT_AVAILABLE = "The country isn't available."


@dataclass(frozen=True)
class Region:
    """One ``directory_country_region`` row: ``id`` (region_id), ``country_id``, ``code``, ``name`` (en_US)."""

    id: int
    country_id: str
    code: str
    name: str


def collation_key(text: str) -> str:
    """Text as MySQL's ``utf8mb4_general_ci`` compares it: case and accents ignored, trailing spaces too."""
    decomposed = unicodedata.normalize("NFKD", text.rstrip(" "))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class Directory:
    """Magento's directory tables: ``directory_country`` and ``directory_country_region`` (+ en_US names).

    ``region_code_updates`` applies the ``UpdateRegionCodesFor*`` patches (codes and names) to the rows.
    """

    def __init__(self, data: dict[str, Any], *, region_code_updates: bool) -> None:
        self.data = data
        self.countries: dict[str, tuple[str, str]] = {cid: (iso3, name) for cid, iso3, name in data["countries"]}
        updates = {u["country"]: u for u in data["region_code_updates"]} if region_code_updates else {}
        self.regions: dict[int, Region] = {}
        self.by_country: dict[str, list[Region]] = {}
        next_id = 1
        for patch in data["region_patches"]:
            for country_id, code, name in patch["rows"]:
                update = updates.get(country_id, {"codes": {}, "names": {}})
                region = Region(next_id, country_id, update["codes"].get(code, code), update["names"].get(code, name))
                self.regions[region.id] = region
                self.by_country.setdefault(country_id, []).append(region)
                next_id += 1

    def country_regions(self, country_id: str) -> list[Region]:
        """The country's regions in id order (empty when Magento has none for it)."""
        return self.by_country.get(country_id, [])

    def region_by_code(self, country_id: str, code: str) -> Region | None:
        """``Region::loadByCode``: the first row (lowest id) whose code equals ``code`` in MySQL's collation."""
        wanted = collation_key(code)
        return next((r for r in self.country_regions(country_id) if collation_key(r.code) == wanted), None)

    def default_state_required(self) -> list[str]:
        """``Country\\Collection::getCountriesWithRequiredStates()`` as the data patches store it."""
        not_required = set(self.data["countries_with_not_required_states"])
        return sorted(c for c in self.data["countries_with_regions"] if c not in not_required)


@functools.cache
def _raw_data() -> dict[str, Any]:
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


@functools.cache
def load_directory(region_code_updates: bool = True) -> Directory:
    """The directory (cached per variant; read-only)."""
    return Directory(_raw_data(), region_code_updates=region_code_updates)


def directory_of(config: CommerceSandboxConfig) -> Directory:
    return load_directory(config.region_code_updates)


def state_required(config: CommerceSandboxConfig) -> set[str]:
    """``general/region/state_required`` of the sandbox."""
    if config.state_required is not None:
        return set(config.state_required)
    return set(directory_of(config).default_state_required())


def is_region_required(config: CommerceSandboxConfig, country_id: str | None) -> bool:
    """``Directory\\Helper\\Data::isRegionRequired``: the country is in ``general/region/state_required``."""
    return bool(country_id) and country_id in state_required(config)


def allowed_countries(config: CommerceSandboxConfig, store: dict[str, Any]) -> list[str]:
    """``general/country/allow`` of the store view (``AllowedCountries``; config values, not the table)."""
    if store.get("allowed_countries") is not None:
        return list(store["allowed_countries"])
    if config.allowed_countries is not None:
        return list(config.allowed_countries)
    return list(_raw_data()["allowed_countries"])


def optional_zip_countries(config: CommerceSandboxConfig) -> set[str]:
    """``general/country/optional_zip_countries`` (``Directory\\Helper\\Data::getCountriesWithOptionalZip``)."""
    if config.optional_zip_countries is not None:
        return set(config.optional_zip_countries)
    return set(_raw_data()["optional_zip_countries"])


def _locale_name(country_id: str, english: str, locale: str) -> str:
    """``Country::getName($locale)``: the CLDR name in the store's locale (English when unknown)."""
    if locale == "en_US":
        return english
    try:
        from babel import Locale, UnknownLocaleError

        return Locale.parse(locale).territories.get(country_id, english)
    except (ImportError, ValueError, UnknownLocaleError):
        return english


def country_information(config: CommerceSandboxConfig, store: dict[str, Any], country_id: str) -> dict[str, Any]:
    """``directoryDataCountryInformationInterface`` of one country of the store's country collection.

    Regions come in the region collection's order (by name); ``id`` is a string, as ``RegionInformation::getId``
    declares. A country without regions has no ``available_regions`` (null is left out of REST output).
    """
    directory = directory_of(config)
    iso3, english = directory.countries[country_id]
    info: dict[str, Any] = {
        "id": country_id,
        "two_letter_abbreviation": country_id,
        "three_letter_abbreviation": iso3,
        "full_name_locale": _locale_name(country_id, english, store.get("locale", "en_US")),
        "full_name_english": english,
    }
    regions = directory.country_regions(country_id)
    if regions:
        ordered = sorted(regions, key=lambda r: (collation_key(r.name), r.id))
        info["available_regions"] = [{"id": str(r.id), "code": r.code, "name": r.name} for r in ordered]
    return info


def store_countries(config: CommerceSandboxConfig, store: dict[str, Any]) -> list[str]:
    """``Directory\\Helper\\Data::getCountryCollection($store)``: table rows among the allowed countries, by id."""
    allowed = set(allowed_countries(config, store))
    return sorted(c for c in directory_of(config).countries if c in allowed)


# --- currency ---------------------------------------------------------------------------------


def currency_rate(rates: dict[str, dict[str, Decimal]], base: str, to: str) -> Decimal | None:
    """``ResourceModel\\Currency::getRate``: 1 for the same currency, the stored rate, or None (no row)."""
    if base == to:
        return Decimal("1")
    return rates.get(base, {}).get(to)


def currency_symbol(code: str, locale: str) -> str:
    """``Currency::getCurrencySymbol``: the CLDR symbol in the store's locale."""
    try:
        from babel.numbers import get_currency_symbol

        return get_currency_symbol(code, locale=locale)
    except (ImportError, ValueError):
        return code


def available_currency_codes(store: dict[str, Any]) -> list[str]:
    """``Store::getAvailableCurrencyCodes(true)``: the allowed currencies (a base currency not allowed is skipped)."""
    return list(store.get("allowed_currencies") or [store["base_currency"]])


def currency_information(rates: dict[str, dict[str, Decimal]], store: dict[str, Any]) -> dict[str, Any]:
    """``CurrencyInformationAcquirer::getCurrencyInfo`` for the store view.

    Every available currency gets an exchange rate entry; a currency without a configured rate from the base
    currency gets rate 0 (``getRate`` returns false, which the REST layer casts to float).
    """
    base = store["base_currency"]
    display = store.get("display_currency", base)
    locale = store.get("locale", "en_US")
    codes = available_currency_codes(store)
    exchange_rates = []
    for code in codes:
        rate = currency_rate(rates, base, code)
        exchange_rates.append({"currency_to": code, "rate": float(rate) if rate is not None else 0.0})
    return {
        "base_currency_code": base,
        "base_currency_symbol": currency_symbol(base, locale),
        "default_display_currency_code": display,
        "default_display_currency_symbol": currency_symbol(display, locale),
        "available_currency_codes": codes,
        "exchange_rates": exchange_rates,
    }


# --- routes -----------------------------------------------------------------------------------


@router.get("/V1/directory/countries")
async def read_countries(ctx: Ctx = Depends(rest_context)) -> Response:
    config = ctx.state.config
    return ok([country_information(config, ctx.store, c) for c in store_countries(config, ctx.store)])


@router.get("/V1/directory/countries/{country_id}")
async def read_country(country_id: str, ctx: Ctx = Depends(rest_context)) -> Response:
    config = ctx.state.config
    if country_id not in store_countries(config, ctx.store):
        raise not_found(MSG_COUNTRY_NOT_AVAILABLE)
    return ok(country_information(config, ctx.store, country_id))


@router.get("/V1/directory/currency")
async def read_currency(ctx: Ctx = Depends(rest_context)) -> Response:
    with ctx.state.lock:
        return ok(currency_information(ctx.state.currency_rates, ctx.store))
