"""The shapes real Amazon orders come in, at configurable rates (``Realism``), and the addresses of
every marketplace country.

Where each shape comes from:

- Amazon-fulfilled (FBA) orders have no ``packages`` (the 2026-01-01 model: packages are "only available
  for merchant-fulfilled (FBM) orders"; Amazon's FBA example 250-1234567-8901234 has none), no
  ``buyerEmail`` ("only available for merchant-fulfilled (FBM) orders"), no phone ("suppressed ... for all
  FBA orders"), and often only state, postcode and country in the address; ``buyer`` itself needs a
  restricted role for FBA orders and is often missing.
- Merchant-fulfilled orders confirmed in Seller Central may carry no package data (Amazon's Turkish example
  028-1234567-8901234 is SHIPPED without ``packages``).
- ``programs``: PRIME, AMAZON_BUSINESS (``buyerCompanyName``, ``buyerPurchaseOrderNumber``, business
  price), INVOICE_BY_AMAZON (EU/UK business orders; the buyer is then Amazon's invoicing entity: name
  "Amazon Business EU SARL", e-mail ``no-reply-amazon-iba-buyer@marketplace.<store domain>``, shared by all
  such buyers, as reported in amzn/selling-partner-api-models issue #5030), PREMIUM, PREORDER (pending
  availability until released).
- ``associatedOrders`` REPLACEMENT_ORIGINAL_ID: a replacement at zero price pointing to an earlier order.
- Item ``tax.taxCollections`` MARKETPLACE_FACILITATOR (US/CA sales tax Amazon collects; ``responsibleParty``
  sometimes empty) and EU ``taxCalculationBreakdowns[].reportingScheme`` UOSS/IOSS (the TR example).
- ``fulfillment.packing.giftOption`` (message, wrap level; the US and BR examples) and a paid gift wrap.
- Buyer tax registrations: VAT for EU/UK business buyers, CPF/CNPJ in Brazil, Turkey's invoice preference
  and BUSINESS registration with a tax office (the TR example).
- Addresses as they come: US states as codes (``WA``) or oddly cased names (``californiA``), Puerto Rico,
  Canada's ``Québec``, Germany's ``Nordrhein-Westfalen``, Japanese addresses without ``city``, the UAE
  without a postcode, Brazil with ``extendedFields``.

Prices outside the US and Canada include VAT/GST, so those orders have no TAX breakdown (Amazon's GB, BR,
TR and JP examples); US and Canadian orders add tax on top.  Shape decisions use their own random stream
(seeded from the order id), so a preset's rates never change the base orders a seed gives.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sandboxes.amazon.marketplaces import Marketplace
from sandboxes.amazon.util import money_obj

TAX_ON_TOP = {"US", "CA"}
EU_UK = {"IE", "ES", "GB", "FR", "BE", "NL", "DE", "IT", "SE", "PL"}
IBA_BUYER_NAME = "Amazon Business EU SARL"
GIFT_MESSAGES = [
    "Happy birthday! 🎂",
    "Alles Gute zum Geburtstag!",
    "Joyeux Noël",
    "お誕生日おめでとう",
    "Parabéns!",
    "For you — with love",
]
RESPONSIBLE_PARTY = {"US": "Amazon Services LLC", "CA": "Amazon.com.ca ULC"}
EU_RESPONSIBLE_PARTY = "Amazon Services Europe S.a.r.L."

# country -> [(addressLine1, addressLine2, city, stateOrRegion, postalCode)]; None = Amazon sends no value
ADDRESSES: dict[str, list[tuple[str, str | None, str | None, str | None, str | None]]] = {
    "US": [
        ("1600 Pennsylvania Ave NW", None, "Washington", "DC", "20500"),
        ("350 Fifth Avenue", "Floor 34", "New York", "NY", "10118"),
        ("1 Infinite Loop", None, "Cupertino", "CA", "95014"),
        ("742 Evergreen Terrace", "Apt. 2B", "Springfield", "OR", "97477"),
        ("12 Calle de la Señora", None, "San José", "CA", "95113"),
    ],
    "CA": [
        ("100 Queen St W", None, "Toronto", "ON", "M5H 2N2"),
        ("1000 Rue De La Gauchetière O", "Bureau 2500", "Montréal", "QC", "H3B 4W5"),
        ("800 Burrard St", None, "Vancouver", "BC", "V6Z 2V8"),
    ],
    "MX": [
        ("Av. Paseo de la Reforma 222", "Piso 5", "Ciudad de México", "CDMX", "06600"),
        ("Calle Morelos 45", None, "Guadalajara", "Jalisco", "44100"),
    ],
    "BR": [
        ("Avenida Paulista, 1578", "Conjunto 42", "São Paulo", "SP", "01310-200"),
        ("Rua Visconde de Pirajá, 330", None, "Rio de Janeiro", "RJ", "22410-002"),
    ],
    "IE": [("12 Grafton Street", None, "Dublin", "Co. Dublin", "D02 YX88")],
    "ES": [("Calle de Alcalá 48", "3º izq.", "Madrid", "Madrid", "28014")],
    "GB": [
        ("221B Baker Street", None, "London", "England", "NW1 6XE"),
        ("1 Princes Street", "Flat 3", "Edinburgh", "Scotland", "EH2 2EQ"),
    ],
    "FR": [("8 Rue de Rivoli", None, "Paris", "Île-de-France", "75004")],
    "BE": [("Rue de la Loi 16", None, "Bruxelles", "Bruxelles-Capitale", "1000")],
    "NL": [("Damrak 70", None, "Amsterdam", "Noord-Holland", "1012 LM")],
    "DE": [
        ("Königsallee 60", None, "Düsseldorf", "Nordrhein-Westfalen", "40212"),
        ("Unter den Linden 77", "3. OG", "Berlin", "Berlin", "10117"),
    ],
    "IT": [("Via del Corso 300", "Interno 4", "Roma", "RM", "00186")],
    "SE": [("Drottninggatan 53", None, "Stockholm", "Stockholms län", "111 21")],
    "ZA": [("15 Long Street", None, "Cape Town", "Western Cape", "8001")],
    "PL": [("ul. Marszałkowska 104", "m. 12", "Warszawa", "mazowieckie", "00-017")],
    "EG": [("26 July Street 15", None, "Cairo", "Cairo Governorate", "11511")],
    "TR": [("İstiklal Caddesi No:42", "Kat 3", "İstanbul", "İstanbul", "34430")],
    "SA": [("King Fahd Road 1200", None, "Riyadh", "Riyadh Province", "12211")],
    "AE": [("Sheikh Zayed Road, Tower 2", "Apt 1804", "Dubai", "Dubai", None)],
    "IN": [("14 MG Road", "Near Metro Station", "Bengaluru", "KARNATAKA", "560001")],
    "SG": [("1 Raffles Place", "#20-01", "Singapore", None, "048616")],
    "AU": [("1 Martin Place", None, "Sydney", "NSW", "2000")],
    "JP": [
        ("渋谷区神南1-2-3", "渋谷マンション101", None, "東京都", "150-0041"),
        ("大阪市北区梅田3-1-1", None, None, "大阪府", "530-0001"),
    ],
}
PHONE_PREFIX = {
    "US": "+1 555",
    "CA": "+1 555",
    "MX": "+52 55",
    "BR": "+55 11",
    "GB": "+44 20",
    "DE": "+49 211",
    "FR": "+33 1",
    "JP": "+81 3",
    "IN": "+91 80",
    "TR": "+90 212",
    "AE": "+971 4",
    "AU": "+61 2",
}
US_QUIRKS = [
    ("1 Microsoft Way", None, "Redmond", "WA", "98052"),
    ("151 Calle de San Francisco", None, "San Juan", "PR", "00901"),  # Puerto Rico
    ("1 Infinite Loop", None, "Cupertino", "californiA", "95014"),
    ("350 Fifth Avenue", None, "New York", "New york", "10118"),
]
CA_QUIRKS = [("1000 Rue De La Gauchetière O", "Bureau 2500", "Montréal", "Québec", "H3B 4W5")]


@dataclass(frozen=True)
class Realism:
    """Rates (0–1) of the shapes real orders come in; see the module docstring for their sources."""

    fba_packages: float = 0.0  # shipped FBA orders that show packages (Amazon: none)
    fba_buyer: float = 0.5  # FBA orders with a ``buyer`` section
    fba_buyer_email: float = 0.0  # ... of which with ``buyerEmail`` (Amazon: FBM only)
    fba_phone: float = 0.0  # FBA addresses with a phone (Amazon suppresses it)
    fba_partial_address: float = 0.7  # FBA addresses with only state, postcode and country
    seller_central_no_package: float = 0.15  # shipped FBM orders without package data
    premium: float = 0.03
    preorder: float = 0.02
    invoice_by_amazon: float = 0.6  # EU/UK business orders invoiced by Amazon
    replacement: float = 0.02  # zero-priced replacements of an earlier order
    marketplace_facilitator: float = 1.0  # taxed US/CA items with a MARKETPLACE_FACILITATOR collection
    empty_responsible_party: float = 0.1
    eu_reporting_scheme: float = 0.3  # EU/UK/TR items with a UOSS/IOSS reporting scheme
    gift: float = 0.04
    gift_wrap_charge: float = 0.5  # gift options with a paid wrap
    tax_registration: float = 1.0  # BR CPF/CNPJ, EU/UK business VAT, TR invoice preference
    address_quirks: float = 0.15  # US odd states / Puerto Rico, Québec
    live_seller_central: float = 0.05  # live mode: unshipped FBM orders the seller ships in Seller Central

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if not 0 <= getattr(self, f.name) <= 1:
                raise ValueError(f"realism rate {f.name} must be between 0 and 1")

    @classmethod
    def resolve(cls, value: Realism | str | dict[str, float] | None) -> Realism:
        """A preset name (``realistic``, ``compat``), rates (``{"fba_packages": 1.0, ...}``, with
        ``"preset"`` as the base, default realistic) or a ``Realism``."""
        if isinstance(value, Realism):
            return value
        if value is None or isinstance(value, str):
            name = value or "compat"
            if name not in PRESETS:
                raise ValueError(f"unknown realism preset {name!r}; one of {sorted(PRESETS)}")
            return PRESETS[name]
        rates = dict(value)
        base = PRESETS.get(str(rates.pop("preset", "realistic")))
        if base is None:
            raise ValueError(f"unknown realism preset; one of {sorted(PRESETS)}")
        unknown = set(rates) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown realism rates {sorted(unknown)}")
        return dataclasses.replace(base, **{k: float(v) for k, v in rates.items()})


REALISTIC = Realism()
# "compat", the generator's default, was Amazon's shapes except those the integration did not handle yet; it
# handles them all now (FBA orders without packages end complete with one track-less shipment,
# tests/e2e/test_unpackaged_shipments.py; a paid gift wrap is refunded as far as Commerce collected it,
# tests/e2e/test_refund_sync.py::test_commit_then_fail_on_commerce_refund_mirrors_once), so it equals
# "realistic". Kept as a name so that a new shape can be introduced off first, then switched on.
COMPAT = REALISTIC
PRESETS = {"realistic": REALISTIC, "compat": COMPAT}


def shape_rng(order_id: str, salt: int = 0) -> random.Random:
    """The random stream of an order's shapes (independent of the base order's stream)."""
    return random.Random(f"shapes:{salt}:{order_id}")


def phone(rng: random.Random, country: str) -> str:
    """A made-up phone number with the country's calling code (``+1 555 0123456``)."""
    return f"{PHONE_PREFIX.get(country, '+1 555')} {rng.randrange(1000000):07d}"


def address(line: tuple[str, str | None, str | None, str | None, str | None], country: str) -> dict[str, Any]:
    """A ``CustomerAddress`` without name/phone from an address-pool line (absent parts left out)."""
    line1, line2, city, state, postal = line
    out: dict[str, Any] = {"addressLine1": line1}
    if line2:
        out["addressLine2"] = line2
    for key, value in (("city", city), ("stateOrRegion", state), ("postalCode", postal)):
        if value:
            out[key] = value
    out["countryCode"] = country
    return out


def _brazil_extended(line1: str, line2: str | None) -> dict[str, str]:
    street, _, number = line1.rpartition(", ")
    extended = {"streetName": street or line1, "streetNumber": number or "s/n", "neighborhood": "Centro"}
    if line2:
        extended["complement"] = line2
    return extended


def apply(
    order: dict[str, Any],
    realism: Realism,
    rng: random.Random,
    market: Marketplace,
    *,
    business: bool,
    gift_wrap_price: Decimal,
    earlier_ids: list[str] | None = None,
) -> bool:
    """Give a base order (from ``generator.generate_order``) the shapes ``realism`` asks for, in place.

    Returns True when item prices changed (gift wrap, replacement): the caller recomputes proceeds."""
    country = market.country_code
    fba = order["fulfillment"]["fulfilledBy"] == "AMAZON"
    status = order["fulfillment"]["fulfillmentStatus"]
    programs: list[str] = order.setdefault("programs", [])
    buyer = order.get("buyer") or {}
    delivery = order.get("recipient", {}).get("deliveryAddress", {})
    repriced = False

    if rng.random() < realism.premium:
        programs.append("PREMIUM")
    if rng.random() < realism.preorder:
        programs.append("PREORDER")
        if status == "PENDING":
            order["fulfillment"]["fulfillmentStatus"] = "PENDING_AVAILABILITY"
    if business and country in EU_UK and rng.random() < realism.invoice_by_amazon:
        programs.append("INVOICE_BY_AMAZON")
        buyer["buyerName"] = IBA_BUYER_NAME
        buyer["buyerEmail"] = f"no-reply-amazon-iba-buyer@marketplace.{market.domain}"

    if rng.random() < realism.address_quirks and not fba:
        quirk = rng.choice(US_QUIRKS if country == "US" else CA_QUIRKS if country == "CA" else [None])
        if quirk:
            keep = {k: delivery[k] for k in ("name", "companyName", "phone", "addressType") if k in delivery}
            delivery.clear()
            delivery.update({**keep, **address(quirk, country)})
    if country == "BR" and "addressLine1" in delivery:
        delivery["extendedFields"] = _brazil_extended(delivery["addressLine1"], delivery.get("addressLine2"))

    if rng.random() < realism.tax_registration:
        _tax_registrations(order, rng, country, business, buyer)
    for item in order["orderItems"]:
        _item_tax(item, rng, realism, country)
        if rng.random() < realism.gift:
            option = {"giftMessage": rng.choice(GIFT_MESSAGES), "giftWrapLevel": rng.choice(["STANDARD", "PREMIUM"])}
            item.setdefault("fulfillment", {})["packing"] = {"giftOption": option}
            if rng.random() < realism.gift_wrap_charge:
                item["proceeds"]["breakdowns"].append(
                    {"type": "GIFT_WRAP", "subtotal": money_obj(gift_wrap_price, market.currency)}
                )
                repriced = True

    if earlier_ids and rng.random() < realism.replacement:
        order["associatedOrders"] = [{"orderId": rng.choice(earlier_ids), "associationType": "REPLACEMENT_ORIGINAL_ID"}]
        for item in order["orderItems"]:
            item["product"]["price"]["unitPrice"] = money_obj(Decimal("0"), market.currency)
            item["proceeds"]["breakdowns"] = [{"type": "ITEM", "subtotal": money_obj(Decimal("0"), market.currency)}]
            item.pop("promotion", None)
        repriced = True

    if fba:
        _fba(order, rng, realism)
    elif status == "SHIPPED" and rng.random() < realism.seller_central_no_package:
        order.pop("packages", None)  # confirmed in Seller Central without package details
    return repriced


def _fba(order: dict[str, Any], rng: random.Random, realism: Realism) -> None:
    if rng.random() >= realism.fba_packages:
        order.pop("packages", None)
    if rng.random() >= realism.fba_buyer:
        order.pop("buyer", None)
    elif rng.random() >= realism.fba_buyer_email:
        order["buyer"].pop("buyerEmail", None)
    delivery = order.get("recipient", {}).get("deliveryAddress")
    if not delivery:
        return
    if rng.random() >= realism.fba_phone:
        delivery.pop("phone", None)
    if rng.random() < realism.fba_partial_address:
        for key in list(delivery):
            if key not in ("stateOrRegion", "postalCode", "countryCode"):
                del delivery[key]


def _tax_registrations(
    order: dict[str, Any], rng: random.Random, country: str, business: bool, buyer: dict[str, Any]
) -> None:
    registrations: list[dict[str, Any]] = []
    company = buyer.get("buyerCompanyName")
    if country == "BR":
        kind, digits = ("CNPJ", 14) if business else ("CPF", 11)
        registrations.append(
            {
                "entityType": "BUYER",
                "taxRegistrationType": kind,
                "taxRegistrationNumber": f"{rng.randrange(10**digits):0{digits}d}",
            }
        )
        order["tax"] = {
            "taxRegistrations": registrations,
            "taxInvoicing": {"invoiceStatus": rng.choice(["NOT_FOUND", "PROCESSING", "ACCEPTED"])},
        }
    elif country == "TR":
        invoicing = {"buyerInvoicePreference": "BUSINESS" if business else "INDIVIDUAL"}
        if business:
            registrations.append(
                {
                    "entityType": "BUYER",
                    "taxRegistrationType": "BUSINESS",
                    "legalName": company or "",
                    "taxRegistrationNumber": f"{rng.randrange(10**10):010d}",
                    "taxRegistrationAttributes": [{"key": "TAX_OFFICE", "value": "Beyoğlu"}],
                }
            )
        order["tax"] = (
            {"taxRegistrations": registrations, "taxInvoicing": invoicing}
            if registrations
            else {"taxInvoicing": invoicing}
        )
    elif country in EU_UK and business:
        registrations.append(
            {
                "entityType": "BUYER",
                "taxRegistrationType": "VAT",
                "legalName": company or "",
                "taxRegistrationNumber": f"{country}{rng.randrange(10**9):09d}",
            }
        )
        order["tax"] = {"taxRegistrations": registrations}


def _item_tax(item: dict[str, Any], rng: random.Random, realism: Realism, country: str) -> None:
    taxed = any(b["type"] == "TAX" and Decimal(b["subtotal"]["amount"]) for b in item["proceeds"]["breakdowns"])
    tax: dict[str, Any] = {}
    if country in TAX_ON_TOP and taxed and rng.random() < realism.marketplace_facilitator:
        party = "" if rng.random() < realism.empty_responsible_party else RESPONSIBLE_PARTY[country]
        tax["taxCollections"] = [{"model": "MARKETPLACE_FACILITATOR", "responsibleParty": party}]
    elif (country in EU_UK or country == "TR") and rng.random() < realism.eu_reporting_scheme:
        scheme = rng.choice(["UOSS", "IOSS"])
        tax["taxCalculationBreakdowns"] = [{"reportingScheme": scheme}]
        if scheme == "IOSS":
            tax["taxCollections"] = [{"model": "MARKETPLACE_FACILITATOR", "responsibleParty": EU_RESPONSIBLE_PARTY}]
    if tax:
        item["tax"] = tax
