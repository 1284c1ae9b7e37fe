"""Selling regions: which endpoint a request reached, and Amazon's answer to marketplaces it does not serve.

Amazon serves each selling region on its own endpoint (``sellingpartnerapi-na``/``-eu``/``-fe``); an
authorisation, its rate-limit buckets, orders and feeds live in one region.  The sandbox serves all three
from one process: a request whose path starts with ``/na``, ``/eu`` or ``/fe`` reaches that region (the
prefix is removed before routing), any other request reaches ``AmazonSandboxConfig.region`` (default NA).
So ``http://127.0.0.1:8701`` is the NA endpoint by default and ``http://127.0.0.1:8701/eu`` the EU one.

A marketplace of another region is refused as Amazon's regional endpoints refuse it: 403 ``Unauthorized``,
"Access to requested resource is denied.", details "The marketplaces you provided are not valid for region."
(answer quoted in amzn/selling-partner-api-models issue #5126, searchOrders 2026-01-01, 2026-02).  A
marketplace of the region the seller does not sell in gets the same 403 without details (issue #2712,
getOrders for a marketplace the account is not registered in); an id that is no Amazon marketplace is a
400 ``InvalidInput``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sandboxes.amazon.marketplaces import MARKETPLACES, REGIONS, region_of
from sandboxes.amazon.util import SpApiError, invalid_input

PREFIXES = {f"/{region.lower()}": region for region in REGIONS}
ACCESS_DENIED = "Access to requested resource is denied."
NOT_VALID_FOR_REGION = "The marketplaces you provided are not valid for region."


def route_region(scope: dict[str, Any], default: str) -> str:
    """Strip a leading ``/na``, ``/eu`` or ``/fe`` from an ASGI scope's path (in place) and return the
    region the request reached; ``default`` when the path has no region prefix."""
    path: str = scope["path"]
    head, sep, rest = path[1:].partition("/")
    region = PREFIXES.get("/" + head.lower())
    if region is None:
        return default
    stripped = "/" + rest if sep else "/"
    scope["path"] = stripped
    if "raw_path" in scope and scope["raw_path"] is not None:
        scope["raw_path"] = stripped.encode("latin-1", errors="ignore")
    return region


def request_region(request: Any) -> str:
    """The region a request reached (set by the gateway; the configured default otherwise)."""
    return request.scope.get("state", {}).get("region") or request.app.state.sandbox.config.region


def check_marketplaces(region: str, seller_marketplaces: Iterable[str], marketplace_ids: Iterable[str]) -> None:
    """Raise Amazon's answer when ``marketplace_ids`` name something this region's endpoint does not serve
    for this seller: 400 for ids that are no marketplace, 403 for another region's or another seller's."""
    ids = list(marketplace_ids)
    unknown = [m for m in ids if m not in MARKETPLACES]
    if unknown:
        raise invalid_input(
            f"Invalid marketplaceIds: {', '.join(unknown)}.", "Refer to Marketplace IDs for the marketplaceId values."
        )
    if any(region_of(m) != region for m in ids):
        raise SpApiError(403, "Unauthorized", ACCESS_DENIED, NOT_VALID_FOR_REGION)
    owned = set(seller_marketplaces)
    if any(m not in owned for m in ids):
        raise SpApiError(403, "Unauthorized", ACCESS_DENIED)


def seller_marketplaces_in(region: str, seller_marketplaces: Iterable[str]) -> list[str]:
    """The seller's marketplaces this region's endpoint serves."""
    return [m for m in seller_marketplaces if region_of(m) == region]


def order_in_region(order: dict[str, Any], region: str) -> bool:
    """Whether an order (2026-01-01 ``Order``) belongs to a marketplace of ``region``."""
    return region_of(order.get("salesChannel", {}).get("marketplaceId", "")) == region
