"""Amazon's shipped packages as Commerce shipments, once each (``POST /V1/order/{id}/ship``).

Shared by the import (packages Amazon already has when the order is imported: FBA, or shipped in
Seller Central) and the shipment sync (packages shipped on Amazon's side later). Each package is the
write ``ship:<Amazon order id>:<packageReferenceId>``; its ``commerce_entity_id`` is the Commerce
shipment id, which the shipment sync reads to tell these shipments from the merchant's own.

The look-up: every shipment carries its key in a comment (``[ship:...]``), so a Commerce shipment
that has it (a create whose answer was lost), or that carries the package's tracking number (made
before the comments, or by hand), is adopted instead of creating another. The comment matters for
packages without a tracking number (Amazon does not always give one).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from amazon_commerce_sync import shipments
from amazon_commerce_sync.commerce_writes import keys
from amazon_commerce_sync.commerce_writes.orders import STATE_CANCELED, STATE_CLOSED
from amazon_commerce_sync.commerce_writes.protocol import Done, write_once
from amazon_commerce_sync.errors import FatalError
from amazon_commerce_sync.hooks.commerce import Filter
from amazon_commerce_sync.store import StateStore

log = logging.getLogger(__name__)

UNSHIPPABLE = (STATE_CLOSED, STATE_CANCELED)  # Magento states that allow no new shipment


def commerce_shipment_for_package(commerce, commerce_order_id: int, key: str, tracking: str) -> int | None:
    """The id of the order's Commerce shipment of this Amazon package: the one whose comment names the
    package's key, or the one carrying its tracking number (``GET /V1/shipments`` by ``order_id``)."""
    marker = f"[{key}]"
    for page in commerce.search("shipments", [[Filter("order_id", commerce_order_id)]]):
        for shipment in page:
            if any(marker in str(c.get("comment") or "") for c in shipment.get("comments") or []):
                return int(shipment["entity_id"])
            if tracking and any(t.get("track_number") == tracking for t in shipment.get("tracks") or []):
                return int(shipment["entity_id"])
    return None


def ship_amazon_packages(
    commerce,
    store: StateStore,
    amazon_order_id: str,
    packages: Iterable[shipments.Package],
    commerce_id: int,
    item_ids: Mapping[str, int],
) -> int:
    """Create the Commerce shipment of each Amazon package once; returns how many this call created.

    ``item_ids``: Amazon orderItemId → Commerce order item id. A package Magento refuses to ship
    because the order is closed or canceled (e.g. refunded in full before the package) is recorded
    as not mirrored (audited), not retried.

    :raises FatalError: Commerce refused a shipment of an order that can still ship.
    :raises RetriableError: a shipment's outcome is unknown and it was not found.
    """
    created = 0
    for package, items in shipments.ship_items_from_packages(list(packages), item_ids):
        key = keys.ship(amazon_order_id, package.reference)
        tracks = []
        if package.tracking_number:
            tracks = [{"track_number": package.tracking_number, "title": package.carrier, "carrier_code": "custom"}]
        comment = f"Shipped on Amazon's side: package {package.reference} [{key}]"

        def look(earlier, key=key, package=package) -> Done | None:
            found = commerce_shipment_for_package(commerce, commerce_id, key.natural_key, package.tracking_number)
            return None if found is None else Done(found)

        def send(items=items, tracks=tracks, comment=comment) -> Done:
            return Done(commerce.ship_order(commerce_id, items, tracks, comment=comment))

        try:
            result = write_once(store.writes, key, send=send, look=look, look_first=True)
        except FatalError:
            state = commerce.get_order(commerce_id).get("state")
            if state not in UNSHIPPABLE:
                raise
            store.writes.record(
                key.natural_key,
                key.kind,
                amazon_order_id,
                None,
                detail={"not_mirrored": f"the Commerce order is {state}"},
            )
            store.ops.audit(
                "amazon_shipment_not_mirrored",
                "amazon_order",
                amazon_order_id,
                {"package": package.reference, "commerce_state": state},
            )
            log.warning(
                "%s: Amazon package %s not mirrored: Magento cannot ship a %s order",
                amazon_order_id,
                package.reference,
                state,
            )
            continue
        if result.effected_now:
            created += 1
    return created
