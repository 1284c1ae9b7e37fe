"""The natural keys of the intent log (``commerce_writes.natural_key``), one builder each.

The strings are persisted in users' state stores: they never change. A key names the effect, not
the attempt, so every attempt at the same effect (a retry, a rerun, another worker) finds the
record of the others.
"""

from __future__ import annotations

import dataclasses
import uuid


@dataclasses.dataclass(frozen=True)
class WriteKey:
    """A write's natural key, its kind (``commerce_writes.kind``) and the Amazon order it belongs to."""

    natural_key: str
    kind: str
    amazon_order_id: str | None

    def __str__(self) -> str:
        return self.natural_key


def order_lease(amazon_order_id: str) -> str:
    """The lease (``store.ops.acquire_lease``) under which one worker writes to the order's Commerce order:
    Magento is unsafe under parallel writes to one order. Taken by the import, the shipment sync and the
    cancellation alike."""
    return f"order:{amazon_order_id}"


def create_order(amazon_order_id: str) -> WriteKey:
    """The Commerce order of an Amazon order (``POST /V1/orders``)."""
    return WriteKey(f"create_order:{amazon_order_id}", "create_order", amazon_order_id)


def invoice(amazon_order_id: str) -> WriteKey:
    """The invoice of the whole order (``POST /V1/order/{id}/invoice``)."""
    return WriteKey(f"invoice:{amazon_order_id}", "invoice", amazon_order_id)


def ship(amazon_order_id: str, package_reference: str) -> WriteKey:
    """The Commerce shipment of one Amazon package (``POST /V1/order/{id}/ship``)."""
    return WriteKey(f"ship:{amazon_order_id}:{package_reference}", "ship", amazon_order_id)


def ship_prefix(amazon_order_id: str) -> str:
    """What every ``ship`` key of the order starts with."""
    return f"ship:{amazon_order_id}:"


def ship_unpackaged(amazon_order_id: str) -> WriteKey:
    """The one track-less Commerce shipment of the units Amazon shipped without package data."""
    return ship(amazon_order_id, "unpackaged")


def track(amazon_order_id: str, package_reference: str) -> WriteKey:
    """The tracking of an Amazon package added to the track-less shipment that already holds its units
    (``POST /V1/shipment/track``)."""
    return WriteKey(f"track:{amazon_order_id}:{package_reference}", "track", amazon_order_id)


def hold(amazon_order_id: str) -> WriteKey:
    """The hold of an order whose buyer asked Amazon to cancel it (``POST /V1/orders/{id}/hold``)."""
    return WriteKey(f"hold:{amazon_order_id}", "hold", amazon_order_id)


def unhold(amazon_order_id: str) -> WriteKey:
    """The release of that hold when a person decided to keep the order (``POST /V1/orders/{id}/unhold``)."""
    return WriteKey(f"unhold:{amazon_order_id}", "unhold", amazon_order_id)


def comment(tag: str, amazon_order_id: str) -> WriteKey:
    """An order comment, one per tag (``buyer_cancel``, ``buyer_keep``, ``cancel``):
    ``POST /V1/orders/{id}/comments``."""
    return WriteKey(f"comment:{tag}:{amazon_order_id}", "comment", amazon_order_id)


def cancel(amazon_order_id: str) -> WriteKey:
    """The cancellation (or, when invoiced, the full offline refund) of the Commerce order."""
    return WriteKey(f"cancel:{amazon_order_id}", "cancel", amazon_order_id)


def stock_out(amazon_order_id: str) -> WriteKey:
    """The stock a merchant-fulfilled order takes from its MSI source, once."""
    return WriteKey(f"stock_out:{amazon_order_id}", "stock_out", amazon_order_id)


def stock_in(amazon_order_id: str) -> WriteKey:
    """The stock a cancelled order puts back, once."""
    return WriteKey(f"stock_in:{amazon_order_id}", "stock_in", amazon_order_id)


def stock_batch() -> WriteKey:
    """A new batch of stock moves (one source-items write for a page of orders); unique per batch."""
    return WriteKey(f"stock_batch:{uuid.uuid4().hex}", "stock_batch", None)


def refund_mirror(event_key: str, amazon_order_id: str) -> WriteKey:
    """The offline credit memo that mirrors an Amazon-side refund event (``POST /V1/order/{id}/refund``)."""
    return WriteKey(f"mirror:{event_key}", "refund_mirror", amazon_order_id)


def refund_mirror_comment(event_key: str, amazon_order_id: str) -> WriteKey:
    """The order comment naming a mirrored Amazon refund."""
    return WriteKey(f"mirror:{event_key}:comment", "comment", amazon_order_id)


def own_refund_item(merchant_adjustment_item_id: str, amazon_order_id: str) -> WriteKey:
    """One of our adjusted items seen coming back in an Amazon refund event (a record, not a write).

    The refund transactions themselves are recorded under ``refunds.transaction_key`` (``amzrefund:...``)."""
    return WriteKey(f"refund_own:{merchant_adjustment_item_id}", "refund_own", amazon_order_id)


ANONYMISE_PREFIX = "anonymise:"


def anonymise(amazon_order_id: str) -> WriteKey:
    """The anonymisation of the Commerce order's addresses (``PUT /V1/orders/{parent_id}``)."""
    return WriteKey(f"{ANONYMISE_PREFIX}{amazon_order_id}", "anonymise", amazon_order_id)


def feed_batch() -> WriteKey:
    """A new batch of outbox entries sent as one Amazon feed (``createFeed``); unique per batch."""
    return WriteKey(f"batch:{uuid.uuid4().hex}", "feed", None)
