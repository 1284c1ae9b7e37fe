"""Amazon's shipped packages as Commerce shipments, once each (``POST /V1/order/{id}/ship``).

Shared by the import (packages Amazon already has when the order is imported: FBA, or shipped in
Seller Central) and the shipment sync (packages shipped on Amazon's side later). Each package is the
write ``ship:<Amazon order id>:<packageReferenceId>``; its ``commerce_entity_id`` is the Commerce
shipment id, which the shipment sync reads to tell these shipments from the merchant's own.

The look-up: every shipment carries its key in a comment (``[ship:...]``), so a Commerce shipment
that has it (a create whose answer was lost), or that carries the package's tracking number (made
before the comments, or by hand), is adopted instead of creating another. The comment matters for
packages without a tracking number (Amazon does not always give one).

Units Amazon shipped without package data (FBA orders; Seller Central confirmations without package
details) go in one track-less shipment, ``ship:<Amazon order id>:unpackaged``, so the Commerce order
completes as Adobe's Amazon Sales Channel completes it. A package that appears later for units it
holds adds its tracking to it (``track:<Amazon order id>:<packageReferenceId>``,
``POST /V1/shipment/track``; looked up by the track number on the shipment), never a second shipment.
``mirror_amazon_shipments`` does all of it from ``shipments.plan_mirror``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from amazon_commerce_sync import shipments
from amazon_commerce_sync.commerce_writes import keys, orders
from amazon_commerce_sync.commerce_writes.orders import STATE_CANCELED, STATE_CLOSED, STATE_HOLDED
from amazon_commerce_sync.commerce_writes.protocol import Done, WriteResult, write_once
from amazon_commerce_sync.errors import FatalError
from amazon_commerce_sync.hooks.commerce import Filter
from amazon_commerce_sync.store import StateStore, WriteStatus

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

        result = _ship_once(store, commerce, key, amazon_order_id, commerce_id, package.reference, send=send, look=look)
        if result is not None and result.effected_now:
            created += 1
    return created


def _ship_once(
    store: StateStore,
    commerce,
    key: keys.WriteKey,
    amazon_order_id: str,
    commerce_id: int,
    package: str,
    *,
    send,
    look,
    detail: dict[str, Any] | None = None,
) -> WriteResult | None:
    """``write_once`` of a Commerce shipment mirrored from Amazon; None when Magento refuses it because the order is
    closed or canceled (e.g. refunded in full first): then recorded as not mirrored and audited, never retried.

    :raises FatalError: Commerce refused a shipment of an order that can still ship.
    """
    try:
        return write_once(store.writes, key, send=send, look=look, look_first=True, detail=detail)
    except FatalError:
        state = commerce.get_order(commerce_id).get("state")
        if state not in UNSHIPPABLE:
            raise
    not_mirrored = {"not_mirrored": f"the Commerce order is {state}"}
    store.writes.record(key.natural_key, key.kind, amazon_order_id, None, detail={**(detail or {}), **not_mirrored})
    store.ops.audit(
        "amazon_shipment_not_mirrored", "amazon_order", amazon_order_id, {"package": package, "commerce_state": state}
    )
    log.warning("%s: Amazon package %s not mirrored: Magento cannot ship a %s order", amazon_order_id, package, state)
    return None


def unpackaged_shipment(store: StateStore, amazon_order_id: str) -> shipments.UnpackagedShipment | None:
    """The track-less shipment already made for the order's units shipped without package data, or None."""
    row = store.writes.get(keys.ship_unpackaged(amazon_order_id).natural_key)
    if row is None or row["status"] != WriteStatus.DONE:
        return None
    detail = row.get("detail") or {}
    entity = row.get("commerce_entity_id")
    return shipments.UnpackagedShipment(
        shipment_id=int(entity) if entity not in (None, "") else None,
        items={str(k): int(v) for k, v in (detail.get("items") or {}).items()},
        packages_before=frozenset(str(r) for r in detail.get("packages_before") or []),
    )


def mirror_plan(
    store: StateStore, amazon_order_id: str, order: Mapping[str, Any], *, exclude: frozenset[str] = frozenset()
) -> shipments.MirrorPlan:
    """What Commerce still lacks of the order's Amazon shipments: ``shipments.plan_mirror`` without the writes
    the intent log has done. ``exclude``: package references confirmed to Amazon from Commerce."""
    plan = shipments.plan_mirror(order, unpackaged_shipment(store, amazon_order_id), exclude=exclude)
    done = store.writes.is_done
    return shipments.MirrorPlan(
        unpackaged=plan.unpackaged if not done(keys.ship_unpackaged(amazon_order_id).natural_key) else {},
        ships=tuple(p for p in plan.ships if not done(keys.ship(amazon_order_id, p.reference).natural_key)),
        tracks=tuple(p for p in plan.tracks if not done(keys.track(amazon_order_id, p.reference).natural_key)),
    )


#: The comment on an order Amazon shipped while it was on hold for the buyer's cancellation request.
SHIPPED_ON_HOLD = (
    "Amazon shows this order shipped while it was on hold for the buyer's cancellation request: "
    "the hold is released and Amazon's shipment recorded; the request can no longer be granted."
)


def mirror_amazon_shipments(
    commerce,
    store: StateStore,
    amazon_order_id: str,
    plan: shipments.MirrorPlan,
    commerce_id: int,
    item_ids: Mapping[str, int],
    *,
    order: Mapping[str, Any],
    commerce_order: Mapping[str, Any] | None = None,
) -> int:
    """Make Commerce show what ``plan`` says Amazon shipped (packages first, then the track-less shipment, then
    tracks on it); returns how many shipments and tracks this call added.

    :param order: the Amazon order (its package references are recorded with the track-less shipment).
    :param commerce_order: the Commerce order as just read, if the caller has it (else it is read when needed).
    An order on hold (a buyer's cancellation request held it) is released first, with a comment: Amazon shipped
    it, so there is nothing left to decide, and Magento ships no ``holded`` order (``Order::canShip``).

    :raises FatalError: Commerce refused a write to an order that can still ship.
    :raises RetriableError: a write's outcome is unknown and it was not found.
    """
    if plan.ships or plan.unpackaged:
        current = commerce_order if commerce_order is not None else commerce.get_order(commerce_id)
        if current.get("state") == STATE_HOLDED:
            orders.unhold(commerce, store, amazon_order_id, commerce_id)
            orders.comment(
                commerce, store, keys.comment("shipped_on_hold", amazon_order_id), commerce_id, SHIPPED_ON_HOLD
            )
            log.info("order %s: Amazon shipped it while on hold in Commerce: hold released", amazon_order_id)
            commerce_order = None  # its state changed: read again where needed
    added = ship_amazon_packages(commerce, store, amazon_order_id, plan.ships, commerce_id, item_ids)
    if plan.unpackaged:
        before = sorted(p.reference for p in shipments.amazon_packages(order))
        added += ship_unpackaged(
            commerce,
            store,
            amazon_order_id,
            plan.unpackaged,
            commerce_id,
            item_ids,
            packages_before=before,
            fba=(order.get("fulfillment") or {}).get("fulfilledBy") == "AMAZON",
            commerce_order=None if plan.ships else commerce_order,  # read again after shipping packages
        )
    made = unpackaged_shipment(store, amazon_order_id) if plan.tracks else None
    if made is not None and made.shipment_id is not None:
        for package in plan.tracks:
            added += add_package_track(commerce, store, amazon_order_id, package, commerce_id, made.shipment_id)
    return added


def _left_to_ship(commerce_order: Mapping[str, Any]) -> dict[int, int]:
    """Commerce order item id -> units Magento still lets ship (``Order\\Item::getQtyToShip``: ordered less
    shipped, refunded and canceled)."""
    left = {}
    for item in commerce_order.get("items") or []:
        qty = Decimal(str(item.get("qty_ordered") or 0))
        for name in ("qty_shipped", "qty_refunded", "qty_canceled"):
            qty -= Decimal(str(item.get(name) or 0))
        if item.get("item_id") is not None and qty > 0:
            left[int(item["item_id"])] = int(qty)
    return left


def ship_unpackaged(
    commerce,
    store: StateStore,
    amazon_order_id: str,
    units: Mapping[str, int],
    commerce_id: int,
    item_ids: Mapping[str, int],
    *,
    packages_before: list[str],
    fba: bool,
    commerce_order: Mapping[str, Any] | None = None,
) -> int:
    """One Commerce shipment, without a track, of the units Amazon shipped without package data, once
    (``POST /V1/order/{id}/ship``, key ``ship:<id>:unpackaged``); returns 1 when this call made it.

    Units Commerce has shipped already (by the merchant) are left out; with nothing left, or an order
    Magento can no longer ship (closed, canceled), the write is recorded without a shipment and audited.
    The units and ``packages_before`` are recorded with the write (``unpackaged_shipment`` reads them).

    :param units: Amazon orderItemId -> units shipped without package data.
    :raises FatalError: Commerce refused the shipment of an order that can still ship.
    :raises RetriableError: the outcome is unknown and the shipment was not found.
    """
    key = keys.ship_unpackaged(amazon_order_id)
    detail = {"items": dict(sorted(units.items())), "packages_before": packages_before}
    where = "by Amazon (FBA)" if fba else "in Seller Central"
    comment = f"Shipped {where} without package data; a tracking number Amazon shows later is added here [{key}]"

    def look(earlier) -> Done | None:
        found = commerce_shipment_for_package(commerce, commerce_id, key.natural_key, "")
        return None if found is None else Done(found, detail=detail)

    def send() -> Done:
        current = commerce_order if commerce_order is not None else commerce.get_order(commerce_id)
        left = _left_to_ship(current)
        items = []
        for amazon_id, qty in sorted(units.items()):
            commerce_item = item_ids.get(amazon_id)
            take = min(qty, left.get(commerce_item, 0)) if commerce_item is not None else 0
            if take > 0:
                items.append({"order_item_id": commerce_item, "qty": take})
        if not items:
            return Done(None, detail={**detail, "not_mirrored": "Commerce has no unit of them left to ship"})
        amazon_ids = {commerce_item: amazon_id for amazon_id, commerce_item in item_ids.items()}
        shipped = {amazon_ids[i["order_item_id"]]: i["qty"] for i in items}  # what it holds, in Amazon's ids
        return Done(commerce.ship_order(commerce_id, items, [], comment=comment), detail={**detail, "items": shipped})

    result = _ship_once(
        store, commerce, key, amazon_order_id, commerce_id, shipments.UNPACKAGED, send=send, look=look, detail=detail
    )
    if result is None:
        return 0
    if result.done is not None and result.done.entity_id is None:
        store.ops.audit(
            "amazon_shipment_not_mirrored",
            "amazon_order",
            amazon_order_id,
            {"package": shipments.UNPACKAGED, "reason": result.detail.get("not_mirrored")},
        )
        return 0
    return 1 if result.effected_now else 0


def shipment_track_id(commerce, shipment_id: int, track_number: str) -> int | None:
    """The id of the shipment's track with this number (``GET /V1/shipment/{id}``), or None."""
    for track in commerce.get_shipment(shipment_id).get("tracks") or []:
        if str(track.get("track_number") or "").strip() == track_number:
            return int(track["entity_id"])
    return None


def add_package_track(
    commerce,
    store: StateStore,
    amazon_order_id: str,
    package: shipments.Package,
    commerce_id: int,
    shipment_id: int,
) -> int:
    """Add an Amazon package's tracking to the track-less shipment that holds its units, once
    (``POST /V1/shipment/track``, key ``track:<id>:<packageReferenceId>``; looked up by the track number on the
    shipment first); returns 1 when this call added it.

    :raises FatalError: Commerce refused the track (e.g. the shipment is not the order's).
    :raises RetriableError: the outcome is unknown and the track was not found on the shipment.
    """
    key = keys.track(amazon_order_id, package.reference)

    def look(earlier) -> Done | None:
        found = shipment_track_id(commerce, shipment_id, package.tracking_number)
        return None if found is None else Done(found)

    def send() -> Done:
        return Done(commerce.add_shipment_track(commerce_id, shipment_id, package.tracking_number, package.carrier))

    result = write_once(store.writes, key, send=send, look=look, look_first=True, detail={"shipment_id": shipment_id})
    if result.effected_now:
        store.ops.audit(
            "amazon_tracking_added",
            "amazon_order",
            amazon_order_id,
            {"package": package.reference, "commerce_shipment_id": shipment_id},
        )
    return 1 if result.effected_now else 0
