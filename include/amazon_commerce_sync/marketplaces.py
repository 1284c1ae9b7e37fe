"""Amazon marketplaces and the selling region whose endpoint serves each.

Source: Amazon's "Marketplace IDs" page of the SP-API documentation (23 marketplaces in three selling
regions). Each region has its own endpoint (``sellingpartnerapi-na``, ``-eu``, ``-fe``); a seller's
authorisation, its rate-limit buckets and its orders live in one region, and ``searchOrders`` takes up to
50 ``marketplaceIds`` of that region in one call (one rate-limit token per call, not per marketplace).
An endpoint refuses another region's marketplace with 403 "The marketplaces you provided are not valid
for region." So the extraction reads all of an account's marketplaces in one window per region.

Imports nothing but the settings error (no I/O): the alerts and the Sales Channel page use it too.
"""

from __future__ import annotations

from collections.abc import Iterable

from amazon_commerce_sync.settings import SettingsError

#: The selling regions, each served by its own SP-API endpoint.
REGIONS = ("NA", "EU", "FE")

#: Marketplace id -> selling region (Amazon's table order).
MARKETPLACE_REGIONS: dict[str, str] = {
    # North America (Brazil is served by the NA endpoint)
    "A2EUQ1WTGCTBG2": "NA",  # Amazon.ca
    "ATVPDKIKX0DER": "NA",  # Amazon.com
    "A1AM78C64UM0Y8": "NA",  # Amazon.com.mx
    "A2Q3Y263D00KWC": "NA",  # Amazon.com.br
    # Europe (with Turkey, the Middle East, India and South Africa)
    "A28R8C7NBKEWEA": "EU",  # Amazon.ie
    "A1RKKUPIHCS9HS": "EU",  # Amazon.es
    "A1F83G8C2ARO7P": "EU",  # Amazon.co.uk
    "A13V1IB3VIYZZH": "EU",  # Amazon.fr
    "AMEN7PMS3EDWL": "EU",  # Amazon.com.be
    "A1805IZSGTT6HS": "EU",  # Amazon.nl
    "A1PA6795UKMFR9": "EU",  # Amazon.de
    "APJ6JRA9NG5V4": "EU",  # Amazon.it
    "A2NODRKZP88ZB9": "EU",  # Amazon.se
    "AE08WJ6YKNBMC": "EU",  # Amazon.co.za
    "A1C3SOZRARQ6R3": "EU",  # Amazon.pl
    "ARBP9OOSHTCHU": "EU",  # Amazon.eg
    "A33AVAJ2PDY3EV": "EU",  # Amazon.com.tr
    "A17E79C6D8DWNP": "EU",  # Amazon.sa
    "A2VIGQ35RCS4UG": "EU",  # Amazon.ae
    "A21TJRUUN4KGV": "EU",  # Amazon.in
    # Far East
    "A19VAU5U5O7RUS": "FE",  # Amazon.sg
    "A39IBJ37TRP1C6": "FE",  # Amazon.com.au
    "A1VC38T7YXB528": "FE",  # Amazon.co.jp
}

#: searchOrders' ``marketplaceIds`` takes at most this many ids (Orders API 2026-01-01).
MAX_MARKETPLACES_PER_CALL = 50


def region_of(marketplace_id: str) -> str | None:
    """The selling region (``NA``, ``EU``, ``FE``) whose endpoint serves a marketplace; None if unknown."""
    return MARKETPLACE_REGIONS.get(marketplace_id)


def by_region(marketplace_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Group marketplace ids by selling region, keeping their order: ``{"EU": ("A1PA6795UKMFR9", ...)}``.

    :raises SettingsError: for an id that is no Amazon marketplace (the message names it and the known ids'
        source), so the account's task fails with the fix instead of Amazon's 400.
    """
    groups: dict[str, list[str]] = {}
    for marketplace_id in marketplace_ids:
        region = region_of(marketplace_id)
        if region is None:
            raise SettingsError(
                f"marketplace_ids: {marketplace_id!r} is not an Amazon marketplace id (Amazon's 'Marketplace IDs' "
                "table, e.g. ATVPDKIKX0DER for Amazon.com)"
            )
        if marketplace_id not in groups.setdefault(region, []):
            groups[region].append(marketplace_id)
    return {region: tuple(ids) for region, ids in groups.items()}


def account_region(account_id: str, marketplace_ids: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """The one selling region of an account and its marketplaces there.

    An account has one SP-API connection, i.e. one regional endpoint (and Amazon authorises a seller per
    region), so all its marketplaces must be of one region.

    :raises SettingsError: for an unknown marketplace id, or marketplaces of more than one region (the
        message says to split the account: one account per region, each with its own ``amazon_conn_id``).
    """
    groups = by_region(marketplace_ids)
    if len(groups) != 1:
        listed = "; ".join(f"{region}: {', '.join(ids)}" for region, ids in groups.items())
        raise SettingsError(
            f"accounts[{account_id}].marketplace_ids: marketplaces of more than one Amazon region ({listed}). "
            "Amazon serves each region on its own endpoint and authorises a seller per region: give each region "
            "its own account with its own amazon_conn_id"
        )
    [(region, ids)] = groups.items()
    if len(ids) > MAX_MARKETPLACES_PER_CALL:
        raise SettingsError(
            f"accounts[{account_id}].marketplace_ids: {len(ids)} marketplaces; searchOrders takes at most "
            f"{MAX_MARKETPLACES_PER_CALL}"
        )
    return region, ids
