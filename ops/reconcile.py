"""Reconcile the two sandboxes against each other after a distributed run or a soak.

Reads only the sandboxes' admin APIs (what Amazon and Commerce hold), never the integration's state store,
and counts per kind of record what was processed, what exists twice, and what is missing:

- orders: every Amazon order the Sales Channel imports (merchant-fulfilled once paid and not cancelled before
  import, Amazon-fulfilled once shipped; created after ``import_orders_after``) exists exactly once in Commerce
  (``ext_order_id``), with Amazon's grand total to the cent;
- shipments: every shipment the merchant made in Commerce is exactly one package on the Amazon order
  (``packageReferenceId`` = the Commerce shipment id); every package Amazon shipped itself is exactly one
  Commerce shipment with its tracking number (unless the Commerce order was closed or cancelled first: Magento
  ships neither, and the integration records that); an order with units Amazon shipped without package data
  (FBA, Seller Central) shows every shipped unit shipped in Commerce, none twice;
- refunds: every credit memo the merchant made is exactly one adjustment on Amazon (its
  ``MerchantAdjustmentItemId`` names the memo); every refund Amazon issued itself is exactly one credit memo;
- cancellations: every order cancelled on request, or by Amazon after import, is cancelled on both sides.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

MADJ = re.compile(r"^cm(\d+)-\d+$")
IMPORTABLE_MFN = {"UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED"}
CANCELLED_IN_COMMERCE = {"canceled", "closed"}


@dataclass
class Snapshot:
    amazon_orders: list[dict[str, Any]]
    amazon_refunds: list[dict[str, Any]]
    amazon_stats: dict[str, dict[str, int]]
    commerce_orders: list[dict[str, Any]]
    commerce_shipments: list[dict[str, Any]]
    commerce_memos: list[dict[str, Any]]

    @classmethod
    def take(cls, cluster) -> Snapshot:
        commerce = cluster.commerce("GET", "/_sandbox/state")
        return cls(
            amazon_orders=cluster.amazon("GET", "/_sandbox/orders")["orders"],
            amazon_refunds=cluster.amazon("GET", "/_sandbox/refunds")["refunds"],
            amazon_stats=cluster.amazon("GET", "/_sandbox/stats")["operations"],
            commerce_orders=_rows(commerce["orders"]),
            commerce_shipments=_rows(commerce["shipments"]),
            commerce_memos=_rows(commerce["creditmemos"]),
        )


def _rows(table: Any) -> list[dict[str, Any]]:
    return list(table.values()) if isinstance(table, dict) else list(table)


@dataclass
class Tally:
    processed: int = 0
    duplicates: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # refused or in conflict, and reported for a person

    def as_dict(self) -> dict[str, Any]:
        out = {
            "processed": self.processed,
            "duplicates": len(self.duplicates),
            "missing": len(self.missing),
            "wrong": len(self.wrong),
            "examples": (self.duplicates + self.missing + self.wrong)[:10],
        }
        if self.rejected:
            out["rejected"] = self.rejected
        if self.missing:
            out["missing_records"] = self.missing
        return out


def status_of(order: dict[str, Any]) -> str:
    return order["fulfillment"]["fulfillmentStatus"]


def is_importable(order: dict[str, Any], imported: bool) -> bool:
    status = status_of(order)
    if order["fulfillment"].get("fulfilledBy") == "AMAZON":
        return status == "SHIPPED" or (status == "CANCELLED" and imported)
    return status in IMPORTABLE_MFN or (status == "CANCELLED" and imported)


def reconcile(
    snap: Snapshot,
    *,
    import_orders_after: str,
    merchant_shipments: set[int] = frozenset(),
    merchant_memos: set[int] = frozenset(),
    cancel_requests: set[str] = frozenset(),
    outbox: dict[str, tuple[str, str | None]] | None = None,
    reported: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Count processed, duplicated, missing and wrong records of each kind (see the module's doc).

    What the integration reported for a person is not lost: ``outbox`` (the state store's ``{natural_key:
    (status, Amazon's message)}``) tells a push Amazon refused (a shipment of an order Amazon cancelled meanwhile)
    from a lost one, and ``reported`` (``{amazon order id: reason}``, from the open quarantine and mismatches)
    names orders in conflict (the merchant shipped an order Amazon cancelled meanwhile).
    """
    judge = _Judge(outbox or {}, reported or {})
    commerce_by_ext: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for order in snap.commerce_orders:
        commerce_by_ext[order.get("ext_order_id")].append(order)
    commerce_by_id = {int(o["entity_id"]): o for o in snap.commerce_orders}
    amazon_by_id = {o["orderId"]: o for o in snap.amazon_orders}

    orders = Tally()
    for order in snap.amazon_orders:
        oid = order["orderId"]
        found = commerce_by_ext.get(oid, [])
        if order["createdTime"] <= import_orders_after or not is_importable(order, bool(found)):
            if found:
                orders.wrong.append(f"{oid}: in Commerce but not importable ({status_of(order)})")
            continue
        orders.processed += 1
        if not found:
            judge.miss(orders, oid, f"{oid}: {status_of(order)} on Amazon, not in Commerce")
            continue
        if len(found) > 1:
            orders.duplicates.append(f"{oid}: {len(found)} Commerce orders")
        total = Decimal(order["proceeds"]["grandTotal"]["amount"])
        if Decimal(str(found[0]["grand_total"])) != total:
            orders.wrong.append(f"{oid}: Commerce total {found[0]['grand_total']} != Amazon {total}")

    shipments = _shipments(snap, commerce_by_id, amazon_by_id, commerce_by_ext, merchant_shipments, judge)
    refunds = _refunds(snap, commerce_by_id, amazon_by_id, commerce_by_ext, merchant_memos, judge)

    cancellations = Tally()
    for order in snap.amazon_orders:
        oid = order["orderId"]
        found = commerce_by_ext.get(oid, [])
        requested = oid in cancel_requests
        if not requested and not (status_of(order) == "CANCELLED" and found):
            continue
        cancellations.processed += 1
        if status_of(order) != "CANCELLED" and requested and status_of(order) in ("SHIPPED", "PARTIALLY_SHIPPED"):
            cancellations.rejected.append(f"{oid}: shipped before the cancellation reached Amazon")
        elif status_of(order) != "CANCELLED":
            judge.miss(cancellations, oid, f"{oid}: cancellation requested, Amazon shows {status_of(order)}")
        elif not found and requested:
            judge.miss(cancellations, oid, f"{oid}: cancelled on Amazon, never imported")
        elif any(o["state"] not in CANCELLED_IN_COMMERCE for o in found):
            judge.miss(cancellations, oid, f"{oid}: cancelled on Amazon, Commerce state {found[0]['state']}")

    throttled = sum(s.get("throttled", 0) for s in snap.amazon_stats.values())
    injected = sum(s.get("injectedThrottles", 0) for s in snap.amazon_stats.values())
    return {
        "orders": orders.as_dict(),
        "shipments": shipments.as_dict(),
        "refunds": refunds.as_dict(),
        "cancellations": cancellations.as_dict(),
        "amazon_requests": sum(s.get("requests", 0) for s in snap.amazon_stats.values()),
        "amazon_429_rate_limit": throttled,
        "amazon_429_injected": injected,
        "amazon_5xx_and_drops_injected": sum(s.get("faults", 0) for s in snap.amazon_stats.values()),
    }


@dataclass
class _Judge:
    outbox: dict[str, tuple[str, str | None]]
    reported: dict[str, str]

    def miss(self, tally: Tally, order_id: str | None, text: str, key: str | None = None) -> None:
        """A record missing on the other side: refused or reported for a person, or else lost."""
        status, message = self.outbox.get(key, (None, None)) if key else (None, None)
        if status == "rejected":
            tally.rejected.append(f"{text}: Amazon refused it: {message}")
        elif status == "accepted" and message:  # settled otherwise, e.g. Amazon refunded it itself
            tally.rejected.append(f"{text}: {message}")
        elif order_id in self.reported:
            tally.rejected.append(f"{text}: reported: {self.reported[order_id]}")
        else:
            tally.missing.append(text + (f" (outbox: {status or 'no entry'})" if key else ""))

    def superseded(self, memo_id: int) -> bool:
        status, message = self.outbox.get(f"refund:{memo_id}", (None, None))
        return status == "accepted" and bool(message) and "refunded this itself" in message


def _shipments(snap, commerce_by_id, amazon_by_id, commerce_by_ext, merchant_shipments, judge) -> Tally:
    tally = Tally()
    commerce_tracks: dict[tuple[int, str], int] = collections.Counter()
    for shipment in snap.commerce_shipments:
        for track in shipment.get("tracks") or []:
            commerce_tracks[(int(shipment["order_id"]), str(track["track_number"]))] += 1
    for shipment_id in sorted(merchant_shipments):
        tally.processed += 1
        shipment = next((s for s in snap.commerce_shipments if int(s["entity_id"]) == shipment_id), None)
        order = commerce_by_id.get(int(shipment["order_id"])) if shipment else None
        amazon = amazon_by_id.get(order.get("ext_order_id")) if order else None
        packages = [p for p in (amazon or {}).get("packages", []) if str(p["packageReferenceId"]) == str(shipment_id)]
        if not packages:
            judge.miss(
                tally,
                (order or {}).get("ext_order_id"),
                f"Commerce shipment {shipment_id}: not on Amazon",
                key=f"shipment:{shipment_id}",
            )
        elif len(packages) > 1:
            tally.duplicates.append(f"Commerce shipment {shipment_id}: {len(packages)} packages on Amazon")
    ours = {str(s) for s in merchant_shipments}
    for amazon in snap.amazon_orders:
        found = commerce_by_ext.get(amazon["orderId"], [])
        if len(found) != 1:
            continue
        for package in amazon.get("packages", []):
            if str(package["packageReferenceId"]) in ours or not package.get("trackingNumber"):
                continue
            tally.processed += 1
            count = commerce_tracks.get((int(found[0]["entity_id"]), str(package["trackingNumber"])), 0)
            if count == 0 and found[0]["state"] in CANCELLED_IN_COMMERCE:
                tally.rejected.append(
                    f"{amazon['orderId']}: Amazon package {package['packageReferenceId']}: the "
                    f"Commerce order is {found[0]['state']} (Magento cannot ship it)"
                )
            elif count == 0:
                judge.miss(
                    tally,
                    amazon["orderId"],
                    f"{amazon['orderId']}: Amazon package {package['packageReferenceId']} has no Commerce shipment",
                )
            elif count > 1:
                tally.duplicates.append(f"{amazon['orderId']}: Amazon package in {count} Commerce shipments")
        _unpackaged(tally, amazon, found[0], judge)
    return tally


def _unpackaged(tally: Tally, amazon: dict[str, Any], commerce: dict[str, Any], judge) -> None:
    """Units Amazon shipped without package data (FBA, Seller Central): Commerce shows each shipped once."""
    left = {
        i["orderItemId"]: int((i.get("fulfillment") or {}).get("quantityFulfilled") or 0) for i in amazon["orderItems"]
    }
    for package in amazon.get("packages", []):
        if (package.get("packageStatus") or {}).get("status") != "CANCELLED":
            for entry in package.get("packageItems", []):
                left[entry["orderItemId"]] = left.get(entry["orderItemId"], 0) - int(entry["quantity"])
    if not any(qty > 0 for qty in left.values()):
        return
    tally.processed += 1
    shipped = {
        str(i.get("ext_order_item_id")): Decimal(str(i.get("qty_shipped") or 0)) for i in commerce.get("items") or []
    }
    fulfilled = {
        i["orderItemId"]: int((i.get("fulfillment") or {}).get("quantityFulfilled") or 0) for i in amazon["orderItems"]
    }
    short = [item for item, qty in fulfilled.items() if shipped.get(item, Decimal(0)) < qty]
    extra = [item for item, qty in fulfilled.items() if shipped.get(item, Decimal(0)) > qty]
    if short and commerce["state"] in CANCELLED_IN_COMMERCE:
        tally.rejected.append(
            f"{amazon['orderId']}: units shipped without package data: the Commerce order is "
            f"{commerce['state']} (Magento cannot ship it)"
        )
    elif short:
        judge.miss(
            tally,
            amazon["orderId"],
            f"{amazon['orderId']}: units Amazon shipped without package data are "
            f"not shipped in Commerce (items {', '.join(short)})",
        )
    elif extra:
        tally.duplicates.append(f"{amazon['orderId']}: Commerce shipped more than Amazon (items {', '.join(extra)})")


def _refunds(snap, commerce_by_id, amazon_by_id, commerce_by_ext, merchant_memos, judge) -> Tally:
    tally = Tally()
    sent: dict[int, int] = collections.Counter()
    for refund in snap.amazon_refunds:
        if refund["source"] != "feed":
            continue
        ids = (MADJ.match(item.get("merchantAdjustmentItemId", "")) for item in refund["items"])
        for memo_id in {int(m.group(1)) for m in ids if m}:
            sent[memo_id] += 1
    for memo_id in sorted(merchant_memos):
        tally.processed += 1
        if sent[memo_id] == 0:
            memo = next((m for m in snap.commerce_memos if int(m["entity_id"]) == memo_id), None)
            order = commerce_by_id.get(int(memo["order_id"])) if memo else None
            judge.miss(
                tally,
                (order or {}).get("ext_order_id"),
                f"credit memo {memo_id}: not sent to Amazon",
                key=f"refund:{memo_id}",
            )
        elif sent[memo_id] > 1:
            tally.duplicates.append(f"credit memo {memo_id}: sent {sent[memo_id]} times")
    # Refunds Amazon issued itself: one credit memo each, besides the merchant's and the cancellations'.
    amazon_side = collections.Counter(r["orderId"] for r in snap.amazon_refunds if r["source"] != "feed")
    memos_by_order: dict[str, int] = collections.Counter()
    for memo in snap.commerce_memos:
        if int(memo["entity_id"]) in merchant_memos and not judge.superseded(int(memo["entity_id"])):
            continue
        order = commerce_by_id.get(int(memo["order_id"]))
        if order is not None:
            memos_by_order[order.get("ext_order_id")] += 1
    for order_id, count in sorted(amazon_side.items()):
        amazon = amazon_by_id.get(order_id)
        if amazon is None or len(commerce_by_ext.get(order_id, [])) != 1:
            continue
        tally.processed += count
        mirrored = memos_by_order.get(order_id, 0)
        if mirrored < count:
            judge.miss(tally, order_id, f"{order_id}: {count} Amazon refunds, {mirrored} credit memos")
        elif mirrored > count and status_of(amazon) != "CANCELLED":
            tally.duplicates.append(f"{order_id}: {count} Amazon refunds, {mirrored} credit memos")
    return tally
