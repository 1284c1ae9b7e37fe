"""Every Amazon marketplace the SP-API serves, with its selling region and currency.

Source: Amazon's "Marketplace IDs" page of the SP-API documentation
(developer-docs.amazon.com/sp-api/docs/marketplace-ids, read 2026-11-30): 23 marketplaces in three
selling regions, each region served by its own endpoint (``sellingpartnerapi-na``, ``-eu``, ``-fe``).
Amazon's table gives the country code ``UK`` for the United Kingdom; addresses on orders use the
ISO 3166-1 code ``GB`` (as Amazon's own example order 202-7654321-1098765 does), so ``country_code``
here is ISO and ``amazon_country_code`` is Amazon's.  Marketplace names (``Amazon.co.uk``, ...) are the
``salesChannel.marketplaceName`` values of the Orders API examples; currencies are the ISO 4217 currency of
each country, and their minor units (decimals) are ISO 4217's: Amazon's JPY example amounts carry none
(``"19940"``), every other marketplace currency has two.
"""

from __future__ import annotations

from typing import NamedTuple


class Marketplace(NamedTuple):
    """One Amazon marketplace.

    ``region`` is the selling region (``NA``, ``EU``, ``FE``) whose endpoint serves it; ``domain`` is the
    store's web domain (``amazon.com.br``), used for Amazon's anonymised buyer e-mail addresses.
    """

    marketplace_id: str
    country_code: str
    amazon_country_code: str
    country: str
    currency: str
    name: str
    region: str
    domain: str


REGIONS: dict[str, str] = {  # region -> production endpoint host
    "NA": "sellingpartnerapi-na.amazon.com",
    "EU": "sellingpartnerapi-eu.amazon.com",
    "FE": "sellingpartnerapi-fe.amazon.com",
}

_TABLE = [
    # North America (Brazil is served by the NA endpoint)
    ("A2EUQ1WTGCTBG2", "CA", "CA", "Canada", "CAD", "Amazon.ca", "NA", "amazon.ca"),
    ("ATVPDKIKX0DER", "US", "US", "United States of America", "USD", "Amazon.com", "NA", "amazon.com"),
    ("A1AM78C64UM0Y8", "MX", "MX", "Mexico", "MXN", "Amazon.com.mx", "NA", "amazon.com.mx"),
    ("A2Q3Y263D00KWC", "BR", "BR", "Brazil", "BRL", "Amazon.com.br", "NA", "amazon.com.br"),
    # Europe (with Turkey, the Middle East, India and South Africa)
    ("A28R8C7NBKEWEA", "IE", "IE", "Ireland", "EUR", "Amazon.ie", "EU", "amazon.ie"),
    ("A1RKKUPIHCS9HS", "ES", "ES", "Spain", "EUR", "Amazon.es", "EU", "amazon.es"),
    ("A1F83G8C2ARO7P", "GB", "UK", "United Kingdom", "GBP", "Amazon.co.uk", "EU", "amazon.co.uk"),
    ("A13V1IB3VIYZZH", "FR", "FR", "France", "EUR", "Amazon.fr", "EU", "amazon.fr"),
    ("AMEN7PMS3EDWL", "BE", "BE", "Belgium", "EUR", "Amazon.com.be", "EU", "amazon.com.be"),
    ("A1805IZSGTT6HS", "NL", "NL", "Netherlands", "EUR", "Amazon.nl", "EU", "amazon.nl"),
    ("A1PA6795UKMFR9", "DE", "DE", "Germany", "EUR", "Amazon.de", "EU", "amazon.de"),
    ("APJ6JRA9NG5V4", "IT", "IT", "Italy", "EUR", "Amazon.it", "EU", "amazon.it"),
    ("A2NODRKZP88ZB9", "SE", "SE", "Sweden", "SEK", "Amazon.se", "EU", "amazon.se"),
    ("AE08WJ6YKNBMC", "ZA", "ZA", "South Africa", "ZAR", "Amazon.co.za", "EU", "amazon.co.za"),
    ("A1C3SOZRARQ6R3", "PL", "PL", "Poland", "PLN", "Amazon.pl", "EU", "amazon.pl"),
    ("ARBP9OOSHTCHU", "EG", "EG", "Egypt", "EGP", "Amazon.eg", "EU", "amazon.eg"),
    ("A33AVAJ2PDY3EV", "TR", "TR", "Turkey", "TRY", "Amazon.com.tr", "EU", "amazon.com.tr"),
    ("A17E79C6D8DWNP", "SA", "SA", "Saudi Arabia", "SAR", "Amazon.sa", "EU", "amazon.sa"),
    ("A2VIGQ35RCS4UG", "AE", "AE", "United Arab Emirates", "AED", "Amazon.ae", "EU", "amazon.ae"),
    ("A21TJRUUN4KGV", "IN", "IN", "India", "INR", "Amazon.in", "EU", "amazon.in"),
    # Far East
    ("A19VAU5U5O7RUS", "SG", "SG", "Singapore", "SGD", "Amazon.sg", "FE", "amazon.sg"),
    ("A39IBJ37TRP1C6", "AU", "AU", "Australia", "AUD", "Amazon.com.au", "FE", "amazon.com.au"),
    ("A1VC38T7YXB528", "JP", "JP", "Japan", "JPY", "Amazon.co.jp", "FE", "amazon.co.jp"),
]

MARKETPLACES: dict[str, Marketplace] = {row[0]: Marketplace(*row) for row in _TABLE}

# ISO 4217 minor units of the marketplace currencies that are not 2.
_MINOR_UNITS = {"JPY": 0}


def minor_units(currency: str) -> int:
    """Decimals of ``currency`` in Amazon's amounts (ISO 4217: JPY 0, every other marketplace currency 2)."""
    return _MINOR_UNITS.get(currency, 2)


def marketplace(marketplace_id: str) -> Marketplace:
    """The marketplace with this id; ``KeyError`` for an id Amazon does not have."""
    return MARKETPLACES[marketplace_id]


def region_of(marketplace_id: str) -> str | None:
    """The selling region (``NA``/``EU``/``FE``) of a marketplace, None for an unknown id."""
    entry = MARKETPLACES.get(marketplace_id)
    return entry.region if entry else None


def in_region(region: str) -> list[str]:
    """The marketplace ids the endpoint of ``region`` serves, in Amazon's table order."""
    return [m.marketplace_id for m in MARKETPLACES.values() if m.region == region]
