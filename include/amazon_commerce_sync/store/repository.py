"""Reading and writing the state store.

Every method is its own short transaction, so a task killed at any point
leaves the store consistent, and every write is an upsert keyed by a natural
key (the Amazon order id, a Commerce shipment id...), so reruns converge.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, func, literal, null, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from amazon_commerce_sync.store.schema import (
    amazon_orders,
    audit_log,
    commerce_writes,
    cursors,
    feeds,
    leases,
    mismatches,
    order_items,
    order_pii,
    outbox,
    quarantine,
)

# commerce_writes key of an order whose Commerce addresses were anonymised (pipelines/retention.py).
ANONYMISE_PREFIX = "anonymise:"


class OrderSync(enum.StrEnum):
    """Where an Amazon order stands in Commerce."""

    PENDING_PAYMENT = "pending_payment"  # PENDING on Amazon: staged, not created
    WAITING = "waiting"  # eligible, not yet processed (or changed since)
    WAITING_PRODUCT = "waiting_product"  # a SKU is unknown, disabled or out of stock
    QUARANTINED = "quarantined"  # malformed; needs a person
    NOT_ELIGIBLE = "not_eligible"  # e.g. FBA not yet shipped, placed before the start date
    IMPORTED = "imported"  # Commerce order exists and reflects Amazon
    ON_HOLD = "on_hold"  # buyer asked to cancel: held in Commerce
    CANCELED = "canceled"  # cancelled on both sides


class WriteStatus(enum.StrEnum):
    INTENT = "intent"  # recorded before the request; outcome unknown
    DONE = "done"
    FAILED = "failed"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SUBMITTED = "submitted"  # in a feed that is not done yet
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # Amazon said no; a person must look


@dataclasses.dataclass(frozen=True)
class StagedOrder:
    """An Amazon order as staged: no personal data here (see ``pii``)."""

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
    items: Sequence[dict[str, Any]]  # {amazon_order_item_id, seller_sku, quantity_ordered, quantity_shipped}
    pii: dict[str, Any] | None = None  # {buyer_name, buyer_email, buyer_company, shipping_address}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored here is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _insert(conn: Connection, table):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


class StateStore:
    """The state store on one SQLAlchemy engine."""

    def __init__(self, engine: Engine, actor: str = "sales-channel") -> None:
        self.engine = engine
        self.actor = actor

    # -- cursors ---------------------------------------------------------------
    def get_cursor(self, stream: str) -> datetime | None:
        with self.engine.connect() as conn:
            value = conn.scalar(select(cursors.c.value).where(cursors.c.stream == stream))
        return _aware(value)

    def set_cursor(self, stream: str, value: datetime) -> None:
        """Move a cursor; it never goes backwards unless ``reset_cursor`` is used."""
        with self.engine.begin() as conn:
            current = _aware(conn.scalar(select(cursors.c.value).where(cursors.c.stream == stream).with_for_update()))
            if current is None:
                conn.execute(cursors.insert().values(stream=stream, value=value, updated_at=utcnow()))
            elif value > current:
                conn.execute(update(cursors).where(cursors.c.stream == stream).values(value=value, updated_at=utcnow()))

    def reset_cursor(self, stream: str, value: datetime) -> None:
        with self.engine.begin() as conn:
            stmt = _insert(conn, cursors).values(stream=stream, value=value, updated_at=utcnow())
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["stream"], set_={"value": value, "updated_at": utcnow()})
            )

    def list_cursors(self) -> dict[str, datetime]:
        with self.engine.connect() as conn:
            return {row.stream: _aware(row.value) for row in conn.execute(select(cursors))}

    # -- staged Amazon orders --------------------------------------------------
    def stage_orders(self, orders: Iterable[StagedOrder]) -> dict[str, int]:
        """Upsert a page of orders in one transaction.

        An order already staged is updated only when Amazon's lastUpdatedTime
        moved forward; its Commerce mapping and sync status are kept, except
        that an order that changed is marked for processing again.
        Returns counts: new, changed, unchanged.
        """
        counts = {"new": 0, "changed": 0, "unchanged": 0}
        now = utcnow()
        with self.engine.begin() as conn:
            for order in orders:
                values = {
                    "account_id": order.account_id,
                    "marketplace_id": order.marketplace_id,
                    "fulfilled_by": order.fulfilled_by,
                    "amazon_status": order.amazon_status,
                    "amazon_created_at": order.amazon_created_at,
                    "amazon_updated_at": order.amazon_updated_at,
                    "currency": order.currency,
                    "order_total": order.order_total,
                    "buyer_cancel_requested": order.buyer_cancel_requested,
                    "payload": order.payload,
                    "updated_at": now,
                }
                # Insert-if-absent first, so two writers racing on a new order cannot both insert.
                inserted = conn.execute(
                    _insert(conn, amazon_orders)
                    .values(
                        amazon_order_id=order.amazon_order_id,
                        sync_status=OrderSync.WAITING,
                        attempts=0,
                        first_seen_at=now,
                        **values,
                    )
                    .on_conflict_do_nothing(index_elements=["amazon_order_id"])
                ).rowcount
                if inserted:
                    counts["new"] += 1
                else:
                    current = conn.scalar(
                        select(amazon_orders.c.amazon_updated_at)
                        .where(amazon_orders.c.amazon_order_id == order.amazon_order_id)
                        .with_for_update()
                    )
                    if _aware(current) >= order.amazon_updated_at:
                        counts["unchanged"] += 1
                        continue
                    conn.execute(
                        update(amazon_orders)
                        .where(amazon_orders.c.amazon_order_id == order.amazon_order_id)
                        .values(**values)
                    )
                    counts["changed"] += 1
                self._upsert_items(conn, order)
                if order.pii is not None:
                    self._upsert_pii(conn, order.amazon_order_id, order.pii)
        return counts

    def _upsert_items(self, conn: Connection, order: StagedOrder) -> None:
        for item in order.items:
            stmt = _insert(conn, order_items).values(
                amazon_order_item_id=item["amazon_order_item_id"],
                amazon_order_id=order.amazon_order_id,
                seller_sku=item["seller_sku"],
                quantity_ordered=item["quantity_ordered"],
                quantity_shipped=item.get("quantity_shipped", 0),
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["amazon_order_item_id"],
                    set_={
                        "seller_sku": item["seller_sku"],
                        "quantity_ordered": item["quantity_ordered"],
                        "quantity_shipped": item.get("quantity_shipped", 0),
                    },
                )
            )

    def _upsert_pii(self, conn: Connection, amazon_order_id: str, pii: dict[str, Any]) -> None:
        erased = conn.scalar(select(order_pii.c.erased_at).where(order_pii.c.amazon_order_id == amazon_order_id))
        if erased is not None:
            return  # erased for retention: never stored again
        values = {k: pii.get(k) for k in ("buyer_name", "buyer_email", "buyer_company", "shipping_address")}
        if not any(values.values()):
            return  # PENDING orders carry none: keep what we have
        stmt = _insert(conn, order_pii).values(amazon_order_id=amazon_order_id, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["amazon_order_id"], set_=values))

    def get_order(self, amazon_order_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(amazon_orders).where(amazon_orders.c.amazon_order_id == amazon_order_id)).first()
        return self._order_row(row) if row else None

    def get_orders(self, amazon_order_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(amazon_order_ids)
        if not ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(amazon_orders).where(amazon_orders.c.amazon_order_id.in_(ids)))
            return {row.amazon_order_id: self._order_row(row) for row in rows}

    @staticmethod
    def _order_row(row) -> dict[str, Any]:
        data = dict(row._mapping)
        for key in (
            "amazon_created_at",
            "amazon_updated_at",
            "synced_amazon_updated_at",
            "delivered_at",
            "first_seen_at",
            "updated_at",
        ):
            data[key] = _aware(data[key])
        return data

    def get_pii(self, amazon_order_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(order_pii).where(order_pii.c.amazon_order_id == amazon_order_id)).first()
        return dict(row._mapping) if row else None

    def get_items(self, amazon_order_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(order_items)
                .where(order_items.c.amazon_order_id == amazon_order_id)
                .order_by(order_items.c.amazon_order_item_id)
            )
            return [dict(r._mapping) for r in rows]

    def find_order_by_commerce_id(self, commerce_order_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(amazon_orders).where(amazon_orders.c.commerce_order_id == commerce_order_id)
            ).first()
        return self._order_row(row) if row else None

    def find_order_by_increment_id(self, increment_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(amazon_orders).where(amazon_orders.c.commerce_increment_id == increment_id)
            ).first()
        return self._order_row(row) if row else None

    def orders_to_process(
        self, account_id: str, *, after_id: str = "", limit: int = 100, statuses: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Orders whose Amazon state has not been applied to Commerce yet, in id order (keyset paging)."""
        statuses = statuses or (
            OrderSync.WAITING,
            OrderSync.WAITING_PRODUCT,
            OrderSync.PENDING_PAYMENT,
            OrderSync.NOT_ELIGIBLE,
            OrderSync.IMPORTED,
            OrderSync.ON_HOLD,
            OrderSync.QUARANTINED,  # only when Amazon changed it since (else: re-drive it)
        )
        o = amazon_orders.c
        changed = or_(o.synced_amazon_updated_at.is_(None), o.synced_amazon_updated_at < o.amazon_updated_at)
        retry_always = o.sync_status.in_([OrderSync.WAITING, OrderSync.WAITING_PRODUCT])
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(amazon_orders)
                .where(o.account_id == account_id, o.sync_status.in_(list(statuses)), o.amazon_order_id > after_id)
                .where(or_(changed, retry_always))
                .order_by(o.amazon_order_id)
                .limit(limit)
            )
            return [self._order_row(r) for r in rows]

    def set_order_sync(
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
        values: dict[str, Any] = {"sync_status": str(status), "sync_reason": reason, "updated_at": utcnow()}
        if synced_amazon_updated_at is not None:
            values["synced_amazon_updated_at"] = synced_amazon_updated_at
        if commerce_order_id is not None:
            values["commerce_order_id"] = commerce_order_id
        if commerce_increment_id is not None:
            values["commerce_increment_id"] = commerce_increment_id
        if count_attempt:
            values["attempts"] = amazon_orders.c.attempts + 1
        with self.engine.begin() as conn:
            conn.execute(
                update(amazon_orders).where(amazon_orders.c.amazon_order_id == amazon_order_id).values(**values)
            )

    def redrive(self, amazon_order_ids: Iterable[str] | None = None) -> list[str]:
        """Put quarantined orders (all, or these) back in the queue after a fix; returns their ids."""
        o = amazon_orders.c
        stmt = select(o.amazon_order_id).where(o.sync_status == OrderSync.QUARANTINED)
        ids = list(amazon_order_ids) if amazon_order_ids is not None else None
        if ids is not None:
            stmt = stmt.where(o.amazon_order_id.in_(ids))
        with self.engine.begin() as conn:
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

    def set_item_mapping(self, mapping: dict[str, tuple[str, int | None]]) -> None:
        """``{amazon_order_item_id: (commerce_sku, commerce_order_item_id)}``."""
        with self.engine.begin() as conn:
            for item_id, (sku, commerce_item_id) in mapping.items():
                conn.execute(
                    update(order_items)
                    .where(order_items.c.amazon_order_item_id == item_id)
                    .values(commerce_sku=sku, commerce_order_item_id=commerce_item_id)
                )

    def count_orders_by_status(self, account_id: str | None = None) -> dict[str, int]:
        stmt = select(amazon_orders.c.sync_status, func.count()).group_by(amazon_orders.c.sync_status)
        if account_id:
            stmt = stmt.where(amazon_orders.c.account_id == account_id)
        with self.engine.connect() as conn:
            return {status: n for status, n in conn.execute(stmt)}

    # -- intents of writes to Commerce -----------------------------------------
    def get_write(self, natural_key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(commerce_writes).where(commerce_writes.c.natural_key == natural_key)).first()
        return dict(row._mapping) if row else None

    def record_intent(
        self, natural_key: str, kind: str, amazon_order_id: str | None, detail: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Record that a write is about to be sent; returns the row (an existing one if already recorded)."""
        with self.engine.begin() as conn:
            stmt = _insert(conn, commerce_writes).values(
                natural_key=natural_key,
                kind=kind,
                amazon_order_id=amazon_order_id,
                status=WriteStatus.INTENT,
                detail=detail,
                created_at=utcnow(),
            )
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["natural_key"]))
            row = conn.execute(select(commerce_writes).where(commerce_writes.c.natural_key == natural_key)).first()
        return dict(row._mapping)

    def complete_write(
        self,
        natural_key: str,
        entity_id: str | int | None,
        status: WriteStatus = WriteStatus.DONE,
        detail: dict[str, Any] | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "status": str(status),
            "commerce_entity_id": None if entity_id is None else str(entity_id),
            "completed_at": utcnow(),
        }
        if detail is not None:
            values["detail"] = detail
        with self.engine.begin() as conn:
            conn.execute(update(commerce_writes).where(commerce_writes.c.natural_key == natural_key).values(**values))

    def forget_write(self, natural_key: str) -> None:
        """Drop an intent that is known not to have taken effect (so it can be tried again)."""
        with self.engine.begin() as conn:
            conn.execute(delete(commerce_writes).where(commerce_writes.c.natural_key == natural_key))

    def writes_for_order(self, amazon_order_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(commerce_writes)
                .where(commerce_writes.c.amazon_order_id == amazon_order_id)
                .order_by(commerce_writes.c.id)
            )
            return [dict(r._mapping) for r in rows]

    # -- outbox of pushes to Amazon --------------------------------------------
    def enqueue(
        self,
        natural_key: str,
        kind: str,
        account_id: str,
        amazon_order_id: str,
        payload: dict[str, Any],
        status: str = OutboxStatus.PENDING,
        amazon_message: str | None = None,
    ) -> bool:
        """Add a push (in ``status``) unless one with the same natural key exists; True if added."""
        now = utcnow()
        with self.engine.begin() as conn:
            stmt = _insert(conn, outbox).values(
                natural_key=natural_key,
                kind=kind,
                account_id=account_id,
                amazon_order_id=amazon_order_id,
                payload=payload,
                status=str(status),
                attempts=0,
                amazon_message=amazon_message,
                created_at=now,
                updated_at=now,
            )
            return conn.execute(stmt.on_conflict_do_nothing(index_elements=["natural_key"])).rowcount == 1

    def outbox_entries(
        self,
        kind: str | None = None,
        statuses: Sequence[str] | None = None,
        account_id: str | None = None,
        feed_id: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        stmt = select(outbox).order_by(outbox.c.id)
        if kind:
            stmt = stmt.where(outbox.c.kind == kind)
        if statuses:
            stmt = stmt.where(outbox.c.status.in_(list(statuses)))
        if account_id:
            stmt = stmt.where(outbox.c.account_id == account_id)
        if feed_id:
            stmt = stmt.where(outbox.c.feed_id == feed_id)
        if limit:
            stmt = stmt.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def get_outbox(self, natural_key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(outbox).where(outbox.c.natural_key == natural_key)).first()
        return dict(row._mapping) if row else None

    def update_outbox(
        self,
        ids: Iterable[int],
        status: OutboxStatus | str,
        *,
        feed_id: str | None = None,
        message_ids: dict[int, int] | None = None,
        amazon_message: str | None = None,
        count_attempt: bool = False,
        expect_status: Sequence[str] | None = None,
    ) -> int:
        """Move entries to ``status``; with ``expect_status`` only those still in one of those (compare-and-set)."""
        ids = list(ids)
        if not ids:
            return 0
        changed = 0
        with self.engine.begin() as conn:
            for entry_id in ids:
                values: dict[str, Any] = {"status": str(status), "updated_at": utcnow()}
                if feed_id is not None:
                    values["feed_id"] = feed_id
                if message_ids and entry_id in message_ids:
                    values["message_id"] = message_ids[entry_id]
                if amazon_message is not None:
                    values["amazon_message"] = amazon_message
                if count_attempt:
                    values["attempts"] = outbox.c.attempts + 1
                stmt = update(outbox).where(outbox.c.id == entry_id)
                if expect_status:
                    stmt = stmt.where(outbox.c.status.in_(list(expect_status)))
                changed += conn.execute(stmt.values(**values)).rowcount
        return changed

    def set_outbox_result(self, entry_id: int, status: OutboxStatus | str, amazon_message: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == entry_id)
                .values(status=str(status), amazon_message=amazon_message, updated_at=utcnow())
            )

    # -- feeds -----------------------------------------------------------------
    def record_feed(self, feed_id: str, account_id: str, feed_type: str, document_id: str | None) -> None:
        with self.engine.begin() as conn:
            stmt = _insert(conn, feeds).values(
                feed_id=feed_id,
                account_id=account_id,
                feed_type=feed_type,
                status="IN_QUEUE",
                document_id=document_id,
                submitted_at=utcnow(),
            )
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["feed_id"]))

    def finish_feed(self, feed_id: str, status: str, summary: dict[str, Any] | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(feeds)
                .where(feeds.c.feed_id == feed_id)
                .values(status=status, summary=summary, completed_at=utcnow())
            )

    def open_feeds(self, feed_type: str | None = None, account_id: str | None = None) -> list[dict[str, Any]]:
        stmt = select(feeds).where(feeds.c.completed_at.is_(None)).order_by(feeds.c.submitted_at)
        if feed_type:
            stmt = stmt.where(feeds.c.feed_type == feed_type)
        if account_id:
            stmt = stmt.where(feeds.c.account_id == account_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def get_feed(self, feed_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(feeds).where(feeds.c.feed_id == feed_id)).first()
        return dict(row._mapping) if row else None

    # -- quarantine ------------------------------------------------------------
    def quarantine(self, entity_type: str, entity_id: str, reason: str, detail: dict[str, Any] | None = None) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            stmt = _insert(conn, quarantine).values(
                entity_type=entity_type,
                entity_id=entity_id,
                reason=reason,
                detail=detail,
                occurrences=1,
                first_seen_at=now,
                last_seen_at=now,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["entity_type", "entity_id"],
                    set_={
                        "reason": reason,
                        "detail": detail,
                        "last_seen_at": now,
                        "resolved_at": None,
                        "occurrences": quarantine.c.occurrences + 1,
                    },
                )
            )

    def resolve_quarantine(self, entity_type: str, entity_id: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(quarantine)
                .where(
                    quarantine.c.entity_type == entity_type,
                    quarantine.c.entity_id == entity_id,
                    quarantine.c.resolved_at.is_(None),
                )
                .values(resolved_at=utcnow())
            )
            return result.rowcount == 1

    def open_quarantine(self, entity_type: str | None = None) -> list[dict[str, Any]]:
        stmt = select(quarantine).where(quarantine.c.resolved_at.is_(None)).order_by(quarantine.c.first_seen_at)
        if entity_type:
            stmt = stmt.where(quarantine.c.entity_type == entity_type)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    # -- mismatches ------------------------------------------------------------
    def report_mismatch(self, kind: str, amazon_order_id: str, detail: str) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            stmt = _insert(conn, mismatches).values(
                kind=kind, amazon_order_id=amazon_order_id, detail=detail, first_seen_at=now, last_seen_at=now
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["kind", "amazon_order_id"],
                    set_={"detail": detail, "last_seen_at": now, "resolved_at": None},
                )
            )

    def resolve_mismatch(self, kind: str, amazon_order_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(mismatches)
                .where(
                    and_(
                        mismatches.c.kind == kind,
                        mismatches.c.amazon_order_id == amazon_order_id,
                        mismatches.c.resolved_at.is_(None),
                    )
                )
                .values(resolved_at=utcnow())
            )

    def open_mismatches(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(mismatches).where(mismatches.c.resolved_at.is_(None)).order_by(mismatches.c.first_seen_at)
            )
            return [dict(r._mapping) for r in rows]

    # -- audit trail -----------------------------------------------------------
    def audit(self, action: str, entity_type: str, entity_id: str, detail: dict[str, Any] | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                audit_log.insert().values(
                    at=utcnow(),
                    actor=self.actor,
                    action=action,
                    entity_type=entity_type,
                    entity_id=entity_id,
                    detail=detail,
                )
            )

    def audit_entries(self, entity_id: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
        stmt = select(audit_log).order_by(audit_log.c.id)
        if entity_id:
            stmt = stmt.where(audit_log.c.entity_id == entity_id)
        if action:
            stmt = stmt.where(audit_log.c.action == action)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    # -- leases: one writer per order across workers ------------------------------
    def acquire_lease(self, key: str, owner: str, ttl_seconds: float) -> bool:
        """Take ``key`` for ``ttl_seconds`` unless another live owner holds it."""
        now = time.time()
        with self.engine.begin() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(leases.insert().values(lease_key=key, owner=owner, expires_at=now + ttl_seconds))
                return True
            except IntegrityError:
                pass
            result = conn.execute(
                update(leases)
                .where(leases.c.lease_key == key, or_(leases.c.expires_at < now, leases.c.owner == owner))
                .values(owner=owner, expires_at=now + ttl_seconds)
            )
            return result.rowcount == 1

    def release_lease(self, key: str, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(leases).where(leases.c.lease_key == key, leases.c.owner == owner))

    def iter_table(self, table_name: str) -> Iterator[dict[str, Any]]:
        """Every row of a table (tests and the PII scan)."""
        from amazon_commerce_sync.store.schema import metadata

        with self.engine.connect() as conn:
            for row in conn.execute(select(metadata.tables[table_name])):
                yield dict(row._mapping)

    # -- refund sync --
    def outbox_for_order(self, amazon_order_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        """Every outbox entry of one Amazon order (optionally of one kind), oldest first."""
        stmt = select(outbox).where(outbox.c.amazon_order_id == amazon_order_id).order_by(outbox.c.id)
        if kind:
            stmt = stmt.where(outbox.c.kind == kind)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def find_write_by_entity(self, kind: str, entity_id: str | int) -> dict[str, Any] | None:
        """The intent-log row of ``kind`` that produced the Commerce entity ``entity_id``, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(commerce_writes).where(
                    commerce_writes.c.kind == kind, commerce_writes.c.commerce_entity_id == str(entity_id)
                )
            ).first()
        return dict(row._mapping) if row else None

    # -- cancellation --
    def requeue_outbox(self, natural_key: str, payload: dict[str, Any], *, expect_status: Sequence[str]) -> bool:
        """Send an entry again (new payload, back to pending) if it is still in ``expect_status``; True if moved."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(outbox)
                .where(outbox.c.natural_key == natural_key, outbox.c.status.in_(list(expect_status)))
                .values(
                    status=str(OutboxStatus.PENDING),
                    payload=payload,
                    feed_id=None,
                    message_id=None,
                    amazon_message=None,
                    updated_at=utcnow(),
                )  # fmt: skip
            )
            return result.rowcount == 1

    # -- shipment sync --
    def orders_by_commerce_ids(self, account_id: str, commerce_order_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The account's staged Amazon orders mapped to these Commerce order ids, by Commerce id."""
        ids = sorted({int(i) for i in commerce_order_ids})
        if not ids:
            return {}
        o = amazon_orders.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(amazon_orders).where(o.account_id == account_id, o.commerce_order_id.in_(ids)))
            return {int(row.commerce_order_id): self._order_row(row) for row in rows}

    def shipped_orders_changed_since(
        self, account_id: str, since: datetime, *, statuses: Sequence[str], after_id: str = "", limit: int = 100
    ) -> list[dict[str, Any]]:
        """Orders in ``statuses`` that Amazon shows (partly) shipped, changed in the store since ``since``."""
        o = amazon_orders.c
        with self.engine.connect() as conn:
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
            return [self._order_row(r) for r in rows]

    def set_outbox_entry(
        self,
        entry_id: int,
        status: str,
        *,
        payload: dict[str, Any] | None = None,
        amazon_message: str | None = None,
        expect_status: Sequence[str] | None = None,
        count_attempt: bool = False,
    ) -> bool:
        """Move one entry to ``status`` (new payload and note); compare-and-set with ``expect_status``."""
        values: dict[str, Any] = {"status": str(status), "amazon_message": amazon_message, "updated_at": utcnow()}
        if payload is not None:
            values["payload"] = payload
        if count_attempt:
            values["attempts"] = outbox.c.attempts + 1
        stmt = update(outbox).where(outbox.c.id == entry_id)
        if expect_status:
            stmt = stmt.where(outbox.c.status.in_(list(expect_status)))
        with self.engine.begin() as conn:
            return conn.execute(stmt.values(**values)).rowcount == 1

    # -- retention and monitoring --
    def orders_without_delivery_time(
        self, statuses: Sequence[str], *, after_id: str = "", limit: int = 500
    ) -> list[dict[str, Any]]:
        """Orders in ``statuses`` whose retention clock (``delivered_at``) is not set yet, in id order."""
        o = amazon_orders.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(o.amazon_order_id, o.account_id, o.amazon_status, o.amazon_updated_at, o.payload)
                .where(o.delivered_at.is_(None), o.amazon_status.in_(list(statuses)), o.amazon_order_id > after_id)
                .order_by(o.amazon_order_id)
                .limit(limit)
            )
            return [{**dict(r._mapping), "amazon_updated_at": _aware(r.amazon_updated_at)} for r in rows]

    def set_delivered_at(self, amazon_order_id: str, delivered_at: datetime) -> bool:
        """Start an order's retention clock; it is set once and never moved. True if set now."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(amazon_orders)
                .where(amazon_orders.c.amazon_order_id == amazon_order_id, amazon_orders.c.delivered_at.is_(None))
                .values(delivered_at=delivered_at)
            )
            return result.rowcount == 1

    def pii_due_for_erasure(
        self, account_id: str, delivered_before: datetime, *, after_id: str = "", limit: int = 500
    ) -> list[dict[str, Any]]:
        """The account's orders delivered before ``delivered_before`` whose personal data is not erased yet."""
        o, p = amazon_orders.c, order_pii.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(o.amazon_order_id, o.delivered_at)
                .select_from(amazon_orders.outerjoin(order_pii, p.amazon_order_id == o.amazon_order_id))
                .where(
                    o.account_id == account_id,
                    o.delivered_at < delivered_before,
                    p.erased_at.is_(None),
                    o.amazon_order_id > after_id,
                )
                .order_by(o.amazon_order_id)
                .limit(limit)
            )
            return [{"amazon_order_id": r.amazon_order_id, "delivered_at": _aware(r.delivered_at)} for r in rows]

    def commerce_orders_to_anonymise(
        self, account_id: str, delivered_before: datetime, *, after_id: str = "", limit: int = 500
    ) -> list[dict[str, Any]]:
        """The account's orders delivered before ``delivered_before`` that have a Commerce order whose addresses
        were not anonymised yet (no done ``anonymise:<amazon order id>`` write)."""
        o, w = amazon_orders.c, commerce_writes.c
        key = literal(ANONYMISE_PREFIX) + o.amazon_order_id
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(o.amazon_order_id, o.commerce_order_id)
                .select_from(amazon_orders.outerjoin(commerce_writes, w.natural_key == key))
                .where(
                    o.account_id == account_id,
                    o.delivered_at < delivered_before,
                    o.commerce_order_id.is_not(None),
                    or_(w.status.is_(None), w.status != WriteStatus.DONE.value),
                    o.amazon_order_id > after_id,
                )
                .order_by(o.amazon_order_id)
                .limit(limit)
            )
            return [{"amazon_order_id": r.amazon_order_id, "commerce_order_id": r.commerce_order_id} for r in rows]

    def erase_pii(self, amazon_order_id: str, audit_detail: dict[str, Any]) -> bool:
        """Erase an order's personal data and record it in the audit trail, in one transaction.

        The row stays as a tombstone (``erased_at`` set, values NULL), so a later re-staging of the
        order never stores its personal data again. True if erased now, False if it already was.
        """
        now = utcnow()
        # SQL NULL (a plain None would be stored as the JSON value 'null' in the JSON column)
        empty = {k: null() for k in ("buyer_name", "buyer_email", "buyer_company", "shipping_address")}
        with self.engine.begin() as conn:
            current = conn.execute(
                select(order_pii.c.erased_at).where(order_pii.c.amazon_order_id == amazon_order_id).with_for_update()
            ).first()
            if current is not None and current.erased_at is not None:
                return False
            inserted = 0
            if current is None:
                inserted = conn.execute(
                    _insert(conn, order_pii)
                    .values(amazon_order_id=amazon_order_id, erased_at=now, **empty)
                    .on_conflict_do_nothing(index_elements=["amazon_order_id"])
                ).rowcount
            if not inserted:  # a row exists (or was staged meanwhile): empty it
                conn.execute(
                    update(order_pii)
                    .where(order_pii.c.amazon_order_id == amazon_order_id, order_pii.c.erased_at.is_(None))
                    .values(erased_at=now, **empty)
                )
            conn.execute(
                audit_log.insert().values(
                    at=now,
                    actor=self.actor,
                    action="pii_erased",
                    entity_type="amazon_order",
                    entity_id=amazon_order_id,
                    detail=audit_detail,
                )
            )
        return True

    def orders_stuck_since(self, status: str, before: datetime, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Orders in ``status`` since before ``before``: staged and unchanged by Amazon since then."""
        o = amazon_orders.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    o.amazon_order_id, o.account_id, o.marketplace_id, o.sync_reason,
                    o.first_seen_at, o.amazon_updated_at,
                )  # fmt: skip
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
                    "since": max(_aware(r.first_seen_at), _aware(r.amazon_updated_at)),
                }
                for r in rows
            ]

    def quarantined_orders_since(self, before: datetime, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Amazon orders quarantined (and not resolved) since before ``before``, with their account if staged."""
        q, o = quarantine.c, amazon_orders.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(q.entity_id, q.reason, q.first_seen_at, o.account_id, o.marketplace_id)
                .select_from(quarantine.outerjoin(amazon_orders, o.amazon_order_id == q.entity_id))
                .where(q.entity_type == "amazon_order", q.resolved_at.is_(None), q.first_seen_at < before)
                .order_by(q.first_seen_at)
                .limit(limit)
            )
            return [
                {
                    "amazon_order_id": r.entity_id,
                    "account_id": r.account_id,
                    "marketplace_id": r.marketplace_id,
                    "reason": r.reason,
                    "since": _aware(r.first_seen_at),
                }
                for r in rows
            ]

    def last_audit_at(self, action: str, entity_id: str) -> datetime | None:
        """When ``action`` was last recorded for ``entity_id`` (e.g. an alert last sent)."""
        with self.engine.connect() as conn:
            value = conn.scalar(
                select(func.max(audit_log.c.at)).where(audit_log.c.action == action, audit_log.c.entity_id == entity_id)
            )
        return _aware(value)
