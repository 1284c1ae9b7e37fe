"""The orders aggregate: staged Amazon orders, their items and (apart) their buyer's personal data.

Tables ``amazon_orders`` (the order without personal data, where it stands in Commerce, the
Commerce mapping), ``order_items`` (Amazon order item ↔ Commerce order item) and ``order_pii``
(the only place with buyer data, so retention erases it without touching anything else).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NotRequired, TypedDict

from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Row

from amazon_commerce_sync.store import pii_crypto
from amazon_commerce_sync.store.base import Aggregate, aware
from amazon_commerce_sync.store.schema import amazon_orders, order_items, order_pii, quarantine
from amazon_commerce_sync.times import parse_time, utcnow


class OrderSync(enum.StrEnum):
    """Where an Amazon order stands in Commerce (``amazon_orders.sync_status``; the values are persisted)."""

    PENDING_PAYMENT = "pending_payment"  # PENDING on Amazon: staged, not created
    WAITING = "waiting"  # eligible, not yet processed (or created, follow-ups not finished)
    WAITING_PRODUCT = "waiting_product"  # a SKU is unknown, disabled or out of stock
    QUARANTINED = "quarantined"  # malformed; needs a person
    NOT_ELIGIBLE = "not_eligible"  # e.g. FBA not yet shipped, placed before the start date
    IMPORTED = "imported"  # Commerce order exists and reflects Amazon
    ON_HOLD = "on_hold"  # buyer asked to cancel: held in Commerce
    # Cancelled on both sides. The stored value keeps the spelling of the first release ("canceled"),
    # which users' state stores hold; our names spell it as Amazon does.
    CANCELLED = "canceled"


class StagedItem(TypedDict):
    """One Amazon order item as staged."""

    amazon_order_item_id: str
    seller_sku: str
    quantity_ordered: int
    quantity_shipped: NotRequired[int]


class Pii(TypedDict, total=False):
    """The buyer's personal data of an order (Orders API ``buyer`` and ``recipient.deliveryAddress``)."""

    buyer_name: str | None
    buyer_email: str | None
    buyer_company: str | None
    shipping_address: dict[str, Any] | None
    buyer_purchase_order: str | None
    buyer_tax_registrations: list[dict[str, Any]] | None
    gift_messages: dict[str, str] | None  # orderItemId -> the item's giftOption.giftMessage


@dataclasses.dataclass(frozen=True)
class StagedOrder:
    """An Amazon order as staged: no personal data here (see ``pii``)."""

    amazon_order_id: str
    account_id: str
    marketplace_id: str
    fulfilled_by: str  # MERCHANT | AMAZON
    amazon_status: str  # Amazon's fulfillmentStatus
    amazon_created_at: datetime
    amazon_updated_at: datetime
    currency: str | None
    order_total: Decimal | None
    buyer_cancel_requested: bool
    payload: dict[str, Any]  # the order without buyer and recipient
    items: Sequence[StagedItem]
    pii: Pii | None = None


class OrderRow(TypedDict):
    """A row of ``amazon_orders``; times are aware UTC."""

    amazon_order_id: str
    account_id: str
    marketplace_id: str
    fulfilled_by: str
    amazon_status: str
    amazon_created_at: datetime
    amazon_updated_at: datetime
    currency: str | None
    order_total: Decimal | None
    buyer_cancel_requested: bool
    payload: dict[str, Any]
    sync_status: str  # an OrderSync value
    sync_reason: str | None
    synced_amazon_updated_at: datetime | None
    commerce_order_id: int | None
    commerce_increment_id: str | None
    attempts: int
    delivered_at: datetime | None
    first_seen_at: datetime
    updated_at: datetime
    ship_by: datetime | None
    ship_by_alerted_at: datetime | None


class ItemRow(TypedDict):
    """A row of ``order_items``."""

    amazon_order_item_id: str
    amazon_order_id: str
    seller_sku: str
    commerce_sku: str | None
    quantity_ordered: int
    quantity_shipped: int
    commerce_order_item_id: int | None


class PiiRow(Pii):
    """A row of ``order_pii``; ``erased_at`` set (values NULL) once erased for retention."""

    amazon_order_id: str
    erased_at: datetime | None


class StageCounts(TypedDict):
    """How many orders of a staged page were new, changed on Amazon, or unchanged."""

    new: int
    changed: int
    unchanged: int


class StuckOrder(TypedDict):
    """An order that has stood still since ``since`` (for the monitor)."""

    amazon_order_id: str
    account_id: str | None
    marketplace_id: str | None
    reason: str | None
    since: datetime


_TIMES = (
    "amazon_created_at",
    "amazon_updated_at",
    "synced_amazon_updated_at",
    "delivered_at",
    "first_seen_at",
    "updated_at",
    "ship_by",
    "ship_by_alerted_at",
)
# Statuses whose orders the import looks at (quarantined ones only once Amazon changed them).
TO_PROCESS = (
    OrderSync.WAITING,
    OrderSync.WAITING_PRODUCT,
    OrderSync.PENDING_PAYMENT,
    OrderSync.NOT_ELIGIBLE,
    OrderSync.IMPORTED,
    OrderSync.ON_HOLD,
    OrderSync.QUARANTINED,
)


def ship_by_of(payload: dict[str, Any] | None) -> datetime | None:
    """The order's ship-by deadline, Amazon's ``fulfillment.shipByWindow.latestDateTime`` (Orders API 2026-01-01;
    merchant-fulfilled orders), aware UTC; None when absent or not a time."""
    value = (((payload or {}).get("fulfillment") or {}).get("shipByWindow") or {}).get("latestDateTime")
    try:
        return parse_time(value) if value else None
    except ValueError:
        return None


def order_row(row: Row) -> OrderRow:
    """An ``amazon_orders`` row as an ``OrderRow``, its times aware UTC."""
    data = dict(row._mapping)
    for key in _TIMES:
        data[key] = aware(data[key])
    return data  # type: ignore[return-value]


class OrderStore(Aggregate):
    """Staged Amazon orders, their items and personal data."""

    # -- staging -----------------------------------------------------------------------------
    def stage(self, orders: Iterable[StagedOrder]) -> StageCounts:
        """Upsert a page of orders in one transaction, with a fixed number of statements per page.

        An order already staged is updated only when Amazon's lastUpdatedTime moved forward, or stayed
        within its second with other content (``order_staging``: Amazon's times are to the second); its
        Commerce mapping and sync status are kept (the import looks at every order whose Amazon
        state it has not applied yet). Personal data goes to ``order_pii``, never again once erased.
        An order id given twice counts once, in its latest version (the later one of the same time; the
        other is "unchanged").

        Statements per page, whatever its size: insert-if-absent (``RETURNING`` the ids it inserted,
        so two writers racing on a new order cannot both insert), the stored versions of the others
        (locked), one ``executemany`` update, item and personal-data upserts as ``executemany``.
        """
        counts: StageCounts = {"new": 0, "changed": 0, "unchanged": 0}
        latest: dict[str, StagedOrder] = {}
        for order in orders:
            kept = latest.get(order.amazon_order_id)
            if kept is not None:
                counts["unchanged"] += 1
                if kept.amazon_updated_at > order.amazon_updated_at:
                    continue
            latest[order.amazon_order_id] = order
        if not latest:
            return counts
        from amazon_commerce_sync.store.order_staging import STAGE_CHUNK, stage_chunk  # imports this module

        now = utcnow()
        staged = sorted(latest.values(), key=lambda order: order.amazon_order_id)  # one lock order for all writers
        with self._writing() as conn:
            for start in range(0, len(staged), STAGE_CHUNK):
                stage_chunk(conn, staged[start : start + STAGE_CHUNK], now, counts)
        return counts

    # -- reading -------------------------------------------------------------------------------
    def get(self, amazon_order_id: str) -> OrderRow | None:
        """The staged order, or None."""
        return self._one(amazon_orders.c.amazon_order_id == amazon_order_id)

    def get_many(self, amazon_order_ids: Iterable[str]) -> dict[str, OrderRow]:
        """The staged orders among these ids, by id."""
        ids = list(amazon_order_ids)
        if not ids:
            return {}
        with self._reading() as conn:
            rows = conn.execute(select(amazon_orders).where(amazon_orders.c.amazon_order_id.in_(ids)))
            return {row.amazon_order_id: order_row(row) for row in rows}

    def by_commerce_id(self, commerce_order_id: int) -> OrderRow | None:
        """The order imported as Commerce order ``entity_id`` ``commerce_order_id``."""
        return self._one(amazon_orders.c.commerce_order_id == commerce_order_id)

    def by_increment_id(self, increment_id: str) -> OrderRow | None:
        """The order imported as Commerce order number ``increment_id``."""
        return self._one(amazon_orders.c.commerce_increment_id == increment_id)

    def by_commerce_ids(self, account_id: str, commerce_order_ids: Iterable[int]) -> dict[int, OrderRow]:
        """The account's staged orders mapped to these Commerce order ids, by Commerce id."""
        ids = sorted({int(i) for i in commerce_order_ids})
        if not ids:
            return {}
        o = amazon_orders.c
        with self._reading() as conn:
            rows = conn.execute(select(amazon_orders).where(o.account_id == account_id, o.commerce_order_id.in_(ids)))
            return {int(row.commerce_order_id): order_row(row) for row in rows}

    def _one(self, where) -> OrderRow | None:
        with self._reading() as conn:
            row = conn.execute(select(amazon_orders).where(where)).first()
        return order_row(row) if row else None

    def pii(self, amazon_order_id: str) -> PiiRow | None:
        """The order's personal data (the import puts it back into the Commerce payload, in memory only)."""
        pii_crypto.cipher()  # no key: PiiKeyError here, not wrapped in a database error
        return self._first(select(order_pii).where(order_pii.c.amazon_order_id == amazon_order_id))

    def items(self, amazon_order_id: str) -> list[ItemRow]:
        """The order's items, by Amazon orderItemId."""
        return self._all(
            select(order_items)
            .where(order_items.c.amazon_order_id == amazon_order_id)
            .order_by(order_items.c.amazon_order_item_id)
        )

    def item_ids(self, amazon_order_id: str) -> dict[str, int]:
        """``{Amazon orderItemId: Commerce order item_id}`` of the order's items mapped so far."""
        return {
            i["amazon_order_item_id"]: int(i["commerce_order_item_id"])
            for i in self.items(amazon_order_id)
            if i["commerce_order_item_id"] is not None
        }

    def to_process(
        self, account_id: str, *, after_id: str = "", limit: int = 100, statuses: Sequence[str] = TO_PROCESS
    ) -> list[OrderRow]:
        """Orders whose Amazon state has not been applied to Commerce yet, in id order (keyset paging).

        Orders waiting (for a product, or to finish) come back on every run; the others only when
        Amazon changed them since they were last applied.
        """
        o = amazon_orders.c
        changed = or_(o.synced_amazon_updated_at.is_(None), o.synced_amazon_updated_at < o.amazon_updated_at)
        retry_always = o.sync_status.in_([OrderSync.WAITING, OrderSync.WAITING_PRODUCT])
        with self._reading() as conn:
            rows = conn.execute(
                select(amazon_orders)
                .where(o.account_id == account_id, o.sync_status.in_(list(statuses)), o.amazon_order_id > after_id)
                .where(or_(changed, retry_always))
                .order_by(o.amazon_order_id)
                .limit(limit)
            )
            return [order_row(r) for r in rows]

    def shipped_changed_since(
        self, account_id: str, since: datetime, *, statuses: Sequence[str], after_id: str = "", limit: int = 100
    ) -> list[OrderRow]:
        """Orders in ``statuses`` that Amazon shows (partly) shipped, changed in the store since ``since``."""
        o = amazon_orders.c
        with self._reading() as conn:
            rows = conn.execute(
                select(amazon_orders)
                .where(
                    o.account_id == account_id,
                    o.sync_status.in_(list(statuses)),
                    o.amazon_status.in_(["SHIPPED", "PARTIALLY_SHIPPED"]),
                    o.updated_at >= since,
                    o.amazon_order_id > after_id,
                )
                .order_by(o.amazon_order_id)
                .limit(limit)
            )
            return [order_row(r) for r in rows]

    def count_by_status(self, account_id: str | None = None) -> dict[str, int]:
        """``{sync_status: number of orders}``, of one account or all."""
        stmt = select(amazon_orders.c.sync_status, func.count()).group_by(amazon_orders.c.sync_status)
        if account_id:
            stmt = stmt.where(amazon_orders.c.account_id == account_id)
        with self._reading() as conn:
            return {status: n for status, n in conn.execute(stmt)}

    def stuck_since(self, status: str, before: datetime, *, limit: int = 1000) -> list[StuckOrder]:
        """Orders in ``status`` since before ``before``: staged and unchanged by Amazon since then."""
        o = amazon_orders.c
        with self._reading() as conn:
            rows = conn.execute(
                select(
                    o.amazon_order_id,
                    o.account_id,
                    o.marketplace_id,
                    o.sync_reason,
                    o.first_seen_at,
                    o.amazon_updated_at,
                )
                .where(o.sync_status == status, o.first_seen_at < before, o.amazon_updated_at < before)
                .order_by(o.first_seen_at)
                .limit(limit)
            )
            return [
                {
                    "amazon_order_id": r.amazon_order_id,
                    "account_id": r.account_id,
                    "marketplace_id": r.marketplace_id,
                    "reason": r.sync_reason,
                    "since": max(aware(r.first_seen_at), aware(r.amazon_updated_at)),
                }
                for r in rows
            ]

    # -- where an order stands in Commerce -----------------------------------------------------
    def set_sync(
        self,
        amazon_order_id: str,
        status: OrderSync | str,
        *,
        reason: str | None = None,
        synced_amazon_updated_at: datetime | None = None,
        commerce_order_id: int | None = None,
        commerce_increment_id: str | None = None,
        count_attempt: bool = False,
    ) -> None:
        """Record where the order stands; ``synced_amazon_updated_at``: the Amazon version now applied."""
        values: dict[str, Any] = {"sync_status": str(status), "sync_reason": reason, "updated_at": utcnow()}
        if synced_amazon_updated_at is not None:
            values["synced_amazon_updated_at"] = synced_amazon_updated_at
        if commerce_order_id is not None:
            values["commerce_order_id"] = commerce_order_id
        if commerce_increment_id is not None:
            values["commerce_increment_id"] = commerce_increment_id
        if count_attempt:
            values["attempts"] = amazon_orders.c.attempts + 1
        with self._writing() as conn:
            conn.execute(
                update(amazon_orders).where(amazon_orders.c.amazon_order_id == amazon_order_id).values(**values)
            )

    def map_items(self, mapping: dict[str, tuple[str, int | None]]) -> None:
        """``{amazon_order_item_id: (commerce_sku, commerce_order_item_id)}``."""
        with self._writing() as conn:
            for item_id, (sku, commerce_item_id) in mapping.items():
                conn.execute(
                    update(order_items)
                    .where(order_items.c.amazon_order_item_id == item_id)
                    .values(commerce_sku=sku, commerce_order_item_id=commerce_item_id)
                )

    def redrive(self, amazon_order_ids: Iterable[str] | None = None, *, account_id: str | None = None) -> list[str]:
        """Put quarantined orders (all, or these; of one account, or of all) back in the queue; returns their ids.

        Each account's load re-drives its own orders only (one task per account). Their quarantine entries
        are resolved in the same transaction.
        """
        o = amazon_orders.c
        stmt = select(o.amazon_order_id).where(o.sync_status == OrderSync.QUARANTINED)
        if account_id is not None:
            stmt = stmt.where(o.account_id == account_id)
        ids = list(amazon_order_ids) if amazon_order_ids is not None else None
        if ids is not None:
            stmt = stmt.where(o.amazon_order_id.in_(ids))
        with self._writing() as conn:
            found = list(conn.scalars(stmt))
            if found:
                conn.execute(
                    update(amazon_orders)
                    .where(o.amazon_order_id.in_(found))
                    .values(sync_status=OrderSync.WAITING, synced_amazon_updated_at=None, updated_at=utcnow())
                )
                conn.execute(
                    update(quarantine)
                    .where(quarantine.c.entity_id.in_(found), quarantine.c.resolved_at.is_(None))
                    .values(resolved_at=utcnow())
                )
        return found
