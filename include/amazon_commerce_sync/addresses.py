"""Amazon delivery addresses and names as Magento wants them: names split, street kept, region resolved.

Amazon's ``CustomerAddress`` (Orders API 2026-01-01) carries free text: ``stateOrRegion`` may be a code (``WA``),
a name in any case or accent (``californiA``, ``Québec``, ``Nordrhein-Westfalen``) or missing. Magento keeps a
region as ``region_id`` / ``region_code`` / ``region`` from its directory (``GET /V1/directory/countries/{id}``,
``available_regions``), and its customer-address validator (``Magento\\Customer\\Model\\Address\\Validator\\
Country``) refuses an address without a ``region_id`` of the country where ``general/region/state_required``
names the country. Tax reports and shipping-label tools read ``region_id`` / ``region_code``.

``general/region/state_required`` is not in Magento's REST API. Its value on every store is what the
directory's data patches store: every country with regions except ``Country\\Collection``'s
``countriesWithNotRequiredStates`` (``Directory/etc/di.xml``: FR, DE, AT, FI, BE). The rule here follows it:
a country whose directory has regions and is not one of those needs a resolved region; elsewhere an
unresolved text is kept as the ``region`` text.

Puerto Rico: Magento's ``directory_country`` has no PR row (``InitializeDirectoryData``,
``AddMissingCountries``); its directory has Puerto Rico as a region of the US (code PR), as it has Guam, the
US Virgin Islands and the other US territories. A country Commerce does not know (``GET
/V1/directory/countries/PR`` answers 404) whose code is a US region code is therefore created as country US with
that region; a store whose directory does have the country keeps it.

Pure functions; the Loader fetches the directory once per run and country.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

MAX_TEXT = 255
# Country\Collection::$countriesWithNotRequiredStates (Magento/Directory/etc/di.xml).
COUNTRIES_WITH_NOT_REQUIRED_STATES = frozenset({"FR", "DE", "AT", "FI", "BE"})
FALLBACK_COUNTRY = "US"
# Official abbreviations buyers write that are neither a code nor a name in Magento's directory (folded text →
# Magento's code): Mexico City is "CDMX" (its government's abbreviation; "DF" before 2016), CMX in Magento
# (AddDataForMexico, ISO 3166-2:MX).
REGION_ALIASES: dict[str, dict[str, str]] = {"MX": {"cdmx": "cmx", "df": "cmx", "d.f.": "cmx"}}


class MalformedAddress(ValueError):
    """The address cannot be given to Commerce as it is; the message says why (no personal data in it)."""


@dataclasses.dataclass(frozen=True)
class Region:
    """One of Magento's ``available_regions``: ``region_id``, ``region_code``, ``region`` (the name)."""

    id: int
    code: str
    name: str


@dataclasses.dataclass(frozen=True)
class CountryRegions:
    """A country as the store's directory has it: its regions and whether a state is required."""

    country_id: str
    regions: tuple[Region, ...]
    state_required: bool

    @classmethod
    def from_rest(cls, info: Mapping[str, Any]) -> CountryRegions:
        """From ``GET /V1/directory/countries/{id}`` (``directoryDataCountryInformationInterface``)."""
        country_id = str(info.get("id") or info.get("two_letter_abbreviation") or "").upper()
        regions = tuple(
            sorted(
                (
                    Region(int(r["id"]), str(r.get("code") or ""), str(r.get("name") or ""))
                    for r in info.get("available_regions") or []
                ),
                key=lambda r: r.id,
            )
        )
        return cls(country_id, regions, bool(regions) and country_id not in COUNTRIES_WITH_NOT_REQUIRED_STATES)

    def find(self, text: str) -> Region | None:
        """The region ``text`` names, ignoring case, accents and spacing, lowest id first (as
        ``Region::loadByCode`` takes the first row). Tried in turn: the code; the name; the code without its
        ISO 3166-2 country prefix (``ES-MD`` for ``MD``); the name before an ISO-style qualifier (``Madrid,
        Comunidad de`` for ``Madrid``, the names of Magento's ``UpdateRegionCodesForSpainV1``); then
        ``REGION_ALIASES``."""
        wanted = fold(text)
        prefix = f"{self.country_id.casefold()}-"
        keys: tuple[Callable[[Region], str], ...] = (
            lambda r: fold(r.code),
            lambda r: fold(r.name),
            lambda r: fold(r.code).removeprefix(prefix),
            lambda r: fold(r.name.split(",")[0]),
        )
        for key in keys:
            found = next((r for r in self.regions if key(r) == wanted), None)
            if found is not None:
                return found
        alias = REGION_ALIASES.get(self.country_id, {}).get(wanted)
        return next((r for r in self.regions if fold(r.code) == alias), None) if alias else None


def fold(text: str) -> str:
    """Text compared the way MySQL's ``utf8mb4_general_ci`` does, and with spacing collapsed."""
    decomposed = unicodedata.normalize("NFKD", " ".join(text.split()))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def clean(value: Any, field: str, limit: int = MAX_TEXT) -> str | None:
    """Text with whitespace collapsed (None when empty); apostrophes, accents and scripts kept.

    :raises MalformedAddress: longer than ``limit`` characters.
    """
    if value is None:
        return None
    text = " ".join(str(value).split())
    if len(text) > limit:
        raise MalformedAddress(f"{field} is {len(text)} characters long (at most {limit})")
    return text or None


def split_name(name: str | None, company: str | None) -> tuple[str, str]:
    """First and last name for Commerce, which requires both (never empty).

    The last word is the last name, the words before it the first name (``"  Mr  J  Hartley "`` →
    ``("Mr J", "Hartley")``); a single-word name keeps the word as first name and '-' as last name; a
    company-only address uses the company; no name at all (FBA) gives 'Amazon' 'Customer'.
    """
    text = clean(name, "the buyer's name") or clean(company, "the company name")
    if not text:
        return "Amazon", "Customer"
    first, _, last = text.rpartition(" ")
    return (first, last) if first else (last, "-")


def amazon_country(address: Mapping[str, Any]) -> str:
    """The address's ISO country code as Amazon gives it (upper case; US when missing)."""
    return (str(address.get("countryCode") or "").strip().upper()[:2]) or FALLBACK_COUNTRY


def street_lines(address: Mapping[str, Any]) -> list[str]:
    """Amazon's address lines that carry text, in order (an empty line 1 does not lose line 2)."""
    lines = (clean(address.get(k), f"address {k}") for k in ("addressLine1", "addressLine2", "addressLine3"))
    return [line for line in lines if line]


def city(address: Mapping[str, Any]) -> str | None:
    """The city; without one (Japanese addresses), the municipality, else the district or county."""
    for key in ("city", "municipality", "districtOrCounty"):
        found = clean(address.get(key), "the city")
        if found:
            return found
    return None


def region_fields(address: Mapping[str, Any], directory: Mapping[str, CountryRegions | None] | None) -> dict[str, Any]:
    """``country_id`` and the region fields (``region_id``, ``region_code``, ``region``) of the address.

    ``directory`` maps country codes to the store's directory entry (None: the store has no such country);
    without it the text is kept as it is.

    :raises MalformedAddress: the country needs a state and the text names none of its regions (or is missing).
    """
    country_id = amazon_country(address)
    text = clean(address.get("stateOrRegion"), "the region")
    if directory is None:
        return {"country_id": country_id, **({"region": text} if text else {})}
    entry = directory.get(country_id)
    fallback = directory.get(FALLBACK_COUNTRY)
    if entry is None and fallback is not None and country_id != FALLBACK_COUNTRY:
        territory = fallback.find(country_id)
        if territory is not None:  # e.g. PR: a US region in Magento's directory, not a country
            return {
                "country_id": FALLBACK_COUNTRY,
                "region_id": territory.id,
                "region_code": territory.code,
                "region": territory.name,
            }
    if entry is None:
        return {"country_id": country_id, **({"region": text} if text else {})}
    region = entry.find(text) if text else None
    if region is not None:
        return {"country_id": country_id, "region_id": region.id, "region_code": region.code, "region": region.name}
    if entry.state_required:
        shown = f"{text!r}" if text else "no state or region"
        raise MalformedAddress(
            f"the delivery address's region {shown} is not one of Commerce's regions of {country_id}, "
            f"which requires one (Stores ▸ Configuration ▸ General ▸ State Options; or correct the address)"
        )
    return {"country_id": country_id, **({"region": text} if text else {})}


def commerce_address(
    order: Mapping[str, Any],
    address_type: str,
    email: str,
    directory: Mapping[str, CountryRegions | None] | None = None,
) -> dict[str, Any]:
    """A Commerce order address (``sales-data-order-address-interface``) from Amazon's delivery address.

    Missing lines are filled ('-') so Magento's order address validator, which requires them present, accepts
    the order; the region is resolved through ``directory`` (see ``region_fields``).

    :raises MalformedAddress: a text is too long, or a required region cannot be resolved.
    """
    address = (order.get("recipient") or {}).get("deliveryAddress") or {}
    buyer = order.get("buyer") or {}
    company = clean(address.get("companyName") or buyer.get("buyerCompanyName"), "the company name")
    first, last = split_name(address.get("name") or buyer.get("buyerName"), company)
    result: dict[str, Any] = {
        "address_type": address_type,
        "firstname": first,
        "lastname": last,
        "street": street_lines(address) or ["-"],
        "city": city(address) or "-",
        "postcode": clean(address.get("postalCode"), "the postal code", 32) or "-",
        "telephone": clean(address.get("phone"), "the phone number", 64) or "-",
        "email": email,
    }
    result.update(region_fields(address, directory))
    if company:
        result["company"] = company
    return result


def customer_address(order_address: Mapping[str, Any]) -> dict[str, Any]:
    """A customer address (``customer-data-address-interface``) from an order address of ``commerce_address``,
    the customer's default billing and shipping address.

    Magento's customer-address validator (``Address\\Validator\\Country``) needs the ``region_id`` where the
    country requires a state: the resolved region goes as ``region_id`` and the ``region`` object.
    """
    keys = ("firstname", "lastname", "company", "street", "city", "postcode", "country_id", "telephone")
    result: dict[str, Any] = {k: order_address[k] for k in keys if order_address.get(k) is not None}
    region = {k: order_address[k] for k in ("region", "region_code", "region_id") if order_address.get(k) is not None}
    if region:
        result["region"] = region
    if "region_id" in region:
        result["region_id"] = region["region_id"]
    result.update(default_billing=True, default_shipping=True)
    return result
