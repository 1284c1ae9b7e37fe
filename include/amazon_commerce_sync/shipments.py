"""Pure shipment rules, both ways, tested without Airflow or HTTP.

Amazon → Commerce: the shipped packages of an Amazon order (Orders API 2026-01-01 ``packages``) and
the Commerce ``/ship`` items of each. Commerce → Amazon: the ``confirmShipment`` ``packageDetail``
of a Commerce shipment (Orders API v0 ``confirmShipment``), with the carrier matched to Amazon's carrier list
(``carriers.match_carrier``: ``carrier_map``, then the carrier code, then the title); a carrier not on the list
goes as ``Other`` with ``carrierName``.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from amazon_commerce_sync.carriers import CarrierMatch, match_carrier
from amazon_commerce_sync.store import OutboxStatus, WriteStatus
from amazon_commerce_sync.times import parse_time


@dataclasses.dataclass(frozen=True)
class Package:
    """A shipped package from Amazon's PACKAGES section, as Commerce needs it."""

    reference: str
    carrier: str
    tracking_number: str
    items: tuple[tuple[str, int], ...]  # (Amazon orderItemId, quantity)


def amazon_packages(order: Mapping[str, Any]) -> list[Package]:
    """Shipped packages with their tracking, for mirroring Amazon-side shipments into Commerce."""
    packages = []
    for package in order.get("packages") or []:
        status = (package.get("packageStatus") or {}).get("status")
        if status in ("CANCELLED", "PENDING"):
            continue
        items = tuple(
            (p["orderItemId"], int(p["quantity"])) for p in package.get("packageItems") or [] if p.get("quantity")
        )
        if items:
            packages.append(
                Package(
                    reference=str(package.get("packageReferenceId")),
                    carrier=package.get("carrier") or "Other",
                    tracking_number=package.get("trackingNumber") or "",
                    items=items,
                )
            )
    return packages


def ship_items_from_packages(
    packages: Sequence[Package], item_ids: Mapping[str, int]
) -> list[tuple[Package, list[dict[str, Any]]]]:
    """Commerce ``/ship`` items for each package, with Amazon item ids mapped to Commerce item ids."""
    out = []
    for package in packages:
        items = [
            {"order_item_id": item_ids[amazon_id], "qty": qty}
            for amazon_id, qty in package.items
            if amazon_id in item_ids
        ]
        if items:
            out.append((package, items))
    return out


# -- Commerce shipments to Amazon ------------------------------------------------------------
class Hold(Exception):
    """The shipment cannot be confirmed yet; looked at again on every run."""


class Refuse(Exception):
    """The shipment can never be confirmed as it is; recorded as rejected with this reason."""


def amazon_carrier(track: Mapping[str, Any], carrier_map: Mapping[str, str]) -> CarrierMatch:
    """Amazon's ``carrierCode`` (with ``carrierName`` for ``Other``, ``shippingMethod`` when the title names the
    service) for a Commerce track: ``carriers.match_carrier`` on its ``carrier_code`` and ``title``."""
    return match_carrier(track.get("carrier_code"), track.get("title"), carrier_map)


def _qty(value: Any) -> int:
    try:
        qty = Decimal(str(value or 0))
    except InvalidOperation:
        raise Refuse(f"quantity {value!r} is not a number") from None
    if qty != qty.to_integral_value():
        raise Refuse(f"quantity {qty} is not a whole number")
    return int(qty)


def package_detail(
    shipment: Mapping[str, Any], amazon_items: Mapping[int, str], carrier_map: Mapping[str, str]
) -> dict[str, Any]:
    """The ``confirmShipment`` ``packageDetail`` for one Commerce shipment.

    :param amazon_items: Commerce order item id -> Amazon orderItemId of the order.
    :raises Hold: no tracking number yet (Commerce lets one be added later).
    :raises Refuse: an item that is not an Amazon order item, or nothing to confirm.
    """
    tracks = [t for t in shipment.get("tracks") or [] if str(t.get("track_number") or "").strip()]
    if not tracks:
        raise Hold("the Commerce shipment has no tracking number yet (Amazon requires one)")
    quantities: dict[str, int] = collections.Counter()
    for item in shipment.get("items") or []:
        qty = _qty(item.get("qty"))
        if qty <= 0:
            continue
        commerce_item = int(item.get("order_item_id") or 0)
        amazon_item = amazon_items.get(commerce_item)
        if amazon_item is None:
            raise Refuse(f"Commerce order item {commerce_item} ({item.get('sku')}) is not an item of the Amazon order")
        quantities[amazon_item] += qty
    if not quantities:
        raise Refuse("the Commerce shipment ships no quantity")
    track = tracks[0]
    carrier = amazon_carrier(track, carrier_map)
    detail: dict[str, Any] = {
        "packageReferenceId": str(int(shipment["entity_id"])),
        "carrierCode": carrier.carrier_code,
        "trackingNumber": str(track["track_number"]).strip(),
        "shipDate": parse_time(shipment.get("created_at")).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "orderItems": [{"orderItemId": item_id, "quantity": qty} for item_id, qty in sorted(quantities.items())],
    }
    if carrier.carrier_name:
        detail["carrierName"] = carrier.carrier_name
    if carrier.shipping_method:
        detail["shippingMethod"] = carrier.shipping_method
    return detail


def amazon_package_refs(order: Mapping[str, Any]) -> dict[str, str]:
    """``{packageReferenceId: trackingNumber}`` of the packages on an Amazon order."""
    return {
        str(p.get("packageReferenceId")): str(p.get("trackingNumber") or "")
        for p in order.get("packages") or []
        if (p.get("packageStatus") or {}).get("status") != "CANCELLED"
    }


@dataclasses.dataclass(frozen=True)
class Decision:
    """What to do with one Commerce shipment: an outbox entry in ``status`` (pending, waiting or
    rejected, with ``reason``), or none (``status`` None; ``reason`` is the summary counter saying why).
    ``mismatch``: the two systems disagree about the order (a person should look)."""

    status: OutboxStatus | None
    reason: str | None = None
    payload: dict[str, Any] | None = None
    amazon_order_id: str | None = None
    mismatch: str | None = None


@dataclasses.dataclass(frozen=True)
class KnownShipments:
    """What the state store knows of an Amazon order's shipments.

    :param imported: the order is imported, so its Commerce shipments may be confirmed to Amazon.
    :param mirrored: its ``ship:`` writes (Commerce shipments made from Amazon's packages).
    :param confirmed_refs: the ``packageReferenceId`` of every confirmation this integration queued.
    :param amazon_items: Commerce order item id -> Amazon orderItemId.
    """

    imported: bool
    mirrored: Sequence[Mapping[str, Any]]
    confirmed_refs: set[str]
    amazon_items: Mapping[int, str]


def decide(
    shipment: Mapping[str, Any], order: Mapping[str, Any], known: KnownShipments, carrier_map: Mapping[str, str]
) -> Decision:
    """What to do with a Commerce shipment of the staged Amazon order ``order``.

    Held while the order is not imported; not confirmed when it is on another Commerce order (a
    mismatch), was made from one of Amazon's packages (by its write, or its tracking number), or the
    order is fulfilled by Amazon; held while a copy of an Amazon package is in flight, or without a
    tracking number; rejected when it cannot be confirmed as it is (``package_detail``).
    """
    order_id = order["amazon_order_id"]
    shipment_id = int(shipment["entity_id"])
    if not known.imported:
        return Decision(
            OutboxStatus.WAITING, f"the Amazon order is not imported yet ({order['sync_status']})", None, order_id
        )
    if int(order["commerce_order_id"]) != int(shipment.get("order_id") or 0):
        detail = (
            f"Commerce shipment {shipment_id} is on Commerce order {shipment.get('order_id')}, "
            f"not on the order imported for this Amazon order ({order['commerce_order_id']})"
        )
        return Decision(None, "ignored_other_commerce_order", mismatch=detail)
    if any(w["commerce_entity_id"] == str(shipment_id) for w in known.mirrored):
        return Decision(None, "from_amazon")  # the import or the sync made it from Amazon's package
    amazon_tracking = {
        p.tracking_number
        for p in amazon_packages(order["payload"])
        if p.reference not in known.confirmed_refs and p.tracking_number
    }
    tracking = {str(t.get("track_number") or "").strip() for t in shipment.get("tracks") or []}
    if tracking & amazon_tracking:
        return Decision(None, "from_amazon")  # carries the tracking of a package Amazon already has
    if any(w["status"] == WriteStatus.INTENT for w in known.mirrored):
        return Decision(
            OutboxStatus.WAITING, "an Amazon-side shipment of this order is being copied to Commerce", None, order_id
        )
    if order["fulfilled_by"] == "AMAZON":
        return Decision(None, "skipped_amazon_fulfilled")  # Amazon ships FBA orders; nothing to confirm
    try:
        package = package_detail(shipment, known.amazon_items, carrier_map)
    except Hold as exc:
        return Decision(OutboxStatus.WAITING, str(exc), None, order_id)
    except Refuse as exc:
        return Decision(OutboxStatus.REJECTED, f"not sent to Amazon: {exc}", None, order_id)
    payload = {
        "commerce_shipment_id": shipment_id,
        "commerce_order_id": int(shipment["order_id"]),
        "marketplace_id": order["marketplace_id"],
        "package": package,
    }
    return Decision(OutboxStatus.PENDING, None, payload, order_id)


# -- before a confirmation is sent ------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ShippedOnAmazon:
    """Amazon already shows the units of a confirmation shipped, by someone else (Seller Central, another tool).

    :param same_tracking: one of those packages has the confirmation's tracking number: it is already confirmed.
    :param references: Amazon's ``packageReferenceId`` of the packages holding those units.
    :param tracking_numbers: their tracking numbers.
    """

    same_tracking: bool
    references: tuple[str, ...]
    tracking_numbers: tuple[str, ...]


def _unshipped(order: Mapping[str, Any], packages: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Amazon orderItemId -> units Amazon can still take: ``fulfillment.quantityUnfulfilled`` (FULFILLMENT data),
    else ``quantityOrdered`` less the units in the order's packages."""
    shipped: dict[str, int] = collections.Counter()
    for package in packages:
        for item in package.get("packageItems") or []:
            shipped[str(item.get("orderItemId"))] += int(item.get("quantity") or 0)
    out = {}
    for item in order.get("orderItems") or []:
        item_id = str(item.get("orderItemId"))
        unfulfilled = (item.get("fulfillment") or {}).get("quantityUnfulfilled")
        ordered = int(item.get("quantityOrdered") or 0)
        out[item_id] = int(unfulfilled) if unfulfilled is not None else max(0, ordered - shipped[item_id])
    return out


def shipped_on_amazon(package: Mapping[str, Any], order: Mapping[str, Any], ours: set[str]) -> ShippedOnAmazon | None:
    """Whether Amazon's current order (``getOrder`` with FULFILLMENT and PACKAGES) already has ``package``'s units.

    :param package: the ``confirmShipment`` ``packageDetail`` about to be sent.
    :param ours: ``packageReferenceId`` of the packages this integration may have confirmed (sent at least once);
        any other package is someone else's, even under the reference ``package`` would have.
    :returns: None when Amazon can take the units (send it), else what holds them: a package with the same
        tracking number (``same_tracking``: already confirmed, nothing to send) or, when the units are no longer
        unshipped on Amazon, the packages holding them under other tracking numbers (a mismatch: sending would be
        refused, "quantity exceeds the unshipped quantity").
    """
    wanted = {str(i["orderItemId"]): int(i["quantity"]) for i in package.get("orderItems") or []}
    live = [p for p in order.get("packages") or [] if (p.get("packageStatus") or {}).get("status") != "CANCELLED"]
    theirs = [
        p
        for p in live
        if str(p.get("packageReferenceId")) not in ours
        and any(str(i.get("orderItemId")) in wanted for i in p.get("packageItems") or [])
    ]
    tracking = str(package.get("trackingNumber") or "").strip()
    same = [p for p in theirs if tracking and str(p.get("trackingNumber") or "").strip() == tracking]
    if same:
        return ShippedOnAmazon(True, tuple(str(p.get("packageReferenceId")) for p in same), (tracking,))
    unshipped = _unshipped(order, live)
    if not theirs or all(qty <= unshipped.get(item_id, 0) for item_id, qty in wanted.items()):
        return None
    return ShippedOnAmazon(
        False,
        tuple(str(p.get("packageReferenceId")) for p in theirs),
        tuple(str(p.get("trackingNumber") or "") for p in theirs),
    )
