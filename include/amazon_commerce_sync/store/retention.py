"""The orders aggregate's personal-data lifecycle: retention clocks, erasure, Commerce anonymisation, key rotation.

Apart from ``orders.py`` because only ``pipelines/retention.py`` uses it. The rules (when a clock
starts, what is erased) are that module's; this one only reads and writes the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import Text, and_, case, func, literal, null, or_, select, type_coerce, update

from amazon_commerce_sync import buyer_data
from amazon_commerce_sync.store import pii_crypto
from amazon_commerce_sync.store.base import Aggregate, aware, insert
from amazon_commerce_sync.store.schema import (
    PII_FIELDS,
    amazon_orders,
    audit_log,
    commerce_writes,
    order_pii,
    pii_keys,
)
from amazon_commerce_sync.store.writes import WriteStatus
from amazon_commerce_sync.times import utcnow


class ClockCandidate(TypedDict):
    """An order whose retention clock is not set yet."""

    amazon_order_id: str
    account_id: str
    amazon_status: str
    amazon_updated_at: datetime
    payload: dict[str, Any]


class DueOrder(TypedDict):
    """An order whose personal data is due for erasure."""

    amazon_order_id: str
    delivered_at: datetime


class CommerceOrderDue(TypedDict):
    """An order whose Commerce order's addresses are due for anonymisation."""

    amazon_order_id: str
    commerce_order_id: int


class KeyUsage(TypedDict):
    """How the kept buyer data is encrypted (``Retention.key_usage``)."""

    values: dict[str, int]  # non-NULL values by key id, "legacy" (fernet:<token>) and "clear"
    stale_rows: int  # orders with a value not on the newest key


class Retention(Aggregate):
    """Retention clocks (``amazon_orders.delivered_at``) and the erasure of ``order_pii``."""

    def without_clock(self, statuses: Sequence[str], *, after_id: str = "", limit: int = 500) -> list[ClockCandidate]:
        """Orders in ``statuses`` whose retention clock (``delivered_at``) is not set yet, in id order."""
        o = amazon_orders.c
        with self._reading() as conn:
            rows = conn.execute(
                select(o.amazon_order_id, o.account_id, o.amazon_status, o.amazon_updated_at, o.payload)
                .where(o.delivered_at.is_(None), o.amazon_status.in_(list(statuses)), o.amazon_order_id > after_id)
                .order_by(o.amazon_order_id)
                .limit(limit)
            )
            return [{**r._mapping, "amazon_updated_at": aware(r.amazon_updated_at)} for r in rows]  # type: ignore[misc]

    def start_clock(self, amazon_order_id: str, delivered_at: datetime) -> bool:
        """Start an order's retention clock; it is set once and never moved. True if set now."""
        with self._writing() as conn:
            result = conn.execute(
                update(amazon_orders)
                .where(amazon_orders.c.amazon_order_id == amazon_order_id, amazon_orders.c.delivered_at.is_(None))
                .values(delivered_at=delivered_at)
            )
            return result.rowcount == 1

    def due_for_erasure(
        self, account_id: str, delivered_before: datetime, *, after_id: str = "", limit: int = 500
    ) -> list[DueOrder]:
        """The account's orders delivered before ``delivered_before`` whose personal data is not erased yet."""
        o, p = amazon_orders.c, order_pii.c
        with self._reading() as conn:
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
            return [{"amazon_order_id": r.amazon_order_id, "delivered_at": aware(r.delivered_at)} for r in rows]

    def commerce_orders_to_anonymise(
        self, account_id: str, delivered_before: datetime, *, key_prefix: str, after_id: str = "", limit: int = 500
    ) -> list[CommerceOrderDue]:
        """The account's orders delivered before ``delivered_before`` that have a Commerce order whose addresses
        were not anonymised yet (no done write ``<key_prefix><amazon order id>``)."""
        o, w = amazon_orders.c, commerce_writes.c
        key = literal(key_prefix) + o.amazon_order_id
        with self._reading() as conn:
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

    def erase(self, amazon_order_id: str, audit_detail: dict[str, Any]) -> bool:
        """Erase an order's personal data and record it in the audit trail, in one transaction.

        The row stays as a tombstone (``erased_at`` set, values NULL), so a later re-staging of the
        order never stores its personal data again. True if erased now, False if it already was.
        """
        now = utcnow()
        # SQL NULL (a plain None would be stored as the JSON value 'null' in the JSON column)
        empty = {k: null() for k in PII_FIELDS}
        with self._writing() as conn:  # on SQLite freed bytes are zeroed (db.py: secure_delete on every connection)
            current = conn.execute(
                select(order_pii.c.erased_at).where(order_pii.c.amazon_order_id == amazon_order_id).with_for_update()
            ).first()
            if current is not None and current.erased_at is not None:
                return False
            inserted = 0
            if current is None:
                inserted = conn.execute(
                    insert(conn, order_pii)
                    .values(amazon_order_id=amazon_order_id, erased_at=now, **empty)
                    .on_conflict_do_nothing(index_elements=["amazon_order_id"])
                ).rowcount
            if not inserted:  # a row exists (or was staged meanwhile): empty it
                conn.execute(
                    update(order_pii)
                    .where(order_pii.c.amazon_order_id == amazon_order_id, order_pii.c.erased_at.is_(None))
                    .values(erased_at=now, **empty)
                )
            # a payload staged before gift messages moved to order_pii (migration 0009) loses them now
            payload = conn.scalar(
                select(amazon_orders.c.payload).where(amazon_orders.c.amazon_order_id == amazon_order_id)
            )
            if payload and any(buyer_data.gift_message(item) is not None for item in payload.get("orderItems") or []):
                conn.execute(
                    update(amazon_orders)
                    .where(amazon_orders.c.amazon_order_id == amazon_order_id)
                    .values(payload=buyer_data.strip_pii(payload))
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

    def purge_erased(self) -> bool:
        """Make erasures (and re-encryptions) final in the SQLite file: checkpoint the write-ahead log into the
        database (whose freed bytes are zeroed: ``secure_delete``, db.py) and truncate it, so no earlier page image
        keeps the erased ciphertext, or the clear text a key rotation replaced.

        True when done (always on PostgreSQL, where VACUUM - autovacuum - reclaims dead row versions); False
        when a reader kept the log busy (the next run tries again)."""
        if self.engine.dialect.name != "sqlite":
            return True
        raw = self.engine.raw_connection()  # outside a transaction: SQLite refuses a checkpoint inside one
        try:
            busy, _, _ = raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            raw.close()
        return busy == 0

    # -- key rotation (``pii_crypto``) ---------------------------------------------------------------------------
    def _stale(self, kid: str):
        """SQL: the row has a buyer-data value not encrypted with key ``kid`` (clear, no key id, another key)."""
        p = order_pii.c
        pattern = pii_crypto.key_id_pattern(kid)
        raw = [type_coerce(getattr(p, c), Text) for c in PII_FIELDS]
        return and_(p.erased_at.is_(None), or_(*(and_(v.is_not(None), v.not_like(pattern)) for v in raw)))

    def key_usage(self, current_key_id: str) -> KeyUsage:
        """How the kept (not erased) buyer data is encrypted, counted in SQL from the stored prefixes (nothing is
        decrypted): ``values`` by key id, ``"legacy"`` (no key id) and ``"clear"``; ``stale_rows`` the orders
        with a value not on ``current_key_id``."""
        p = order_pii.c
        values: dict[str, int] = {}
        with self._reading() as conn:
            for column in PII_FIELDS:
                v = type_coerce(getattr(p, column), Text)
                kind = case(
                    (v.not_like(pii_crypto.PREFIX + "%"), literal(pii_crypto.CLEAR)),
                    (v.like(pii_crypto.PREFIX + "________:%"), func.substr(v, len(pii_crypto.PREFIX) + 1, 8)),
                    else_=literal(pii_crypto.LEGACY),
                ).label("kind")
                rows = conn.execute(
                    select(kind, func.count()).where(p.erased_at.is_(None), v.is_not(None)).group_by(kind)
                )
                for k, n in rows:
                    values[k] = values.get(k, 0) + n
            stale = conn.scalar(select(func.count()).select_from(order_pii).where(self._stale(current_key_id)))
        return {"values": dict(sorted(values.items())), "stale_rows": int(stale or 0)}

    def reencrypt_batch(self, *, after_id: str = "", limit: int = 500) -> tuple[int, str | None]:
        """Re-encrypt with the newest key (``pii_crypto.cipher()``) the next ``limit`` orders, in id order after
        ``after_id``, that hold a value in clear, without key id or on an older key; one transaction.

        Returns (orders changed, the last order id looked at, or None when none was left). Each row is written
        only if it is still as read and not erased (compare-and-set), so an erasure meanwhile is never undone.
        Raises ``pii_crypto.PiiKeyError`` when a value's key is not configured."""
        crypt = pii_crypto.cipher()
        p = order_pii.c
        raw = {c: type_coerce(getattr(p, c), Text) for c in PII_FIELDS}
        changed = 0
        with self._writing() as conn:
            rows = conn.execute(
                select(p.amazon_order_id, *(v.label(c) for c, v in raw.items()))
                .where(self._stale(crypt.current_key_id), p.amazon_order_id > after_id)
                .order_by(p.amazon_order_id)
                .limit(limit)
            ).all()
            for row in rows:
                old = {c: getattr(row, c) for c in PII_FIELDS}
                new = {c: crypt.rotate(v) for c, v in old.items() if v is not None and crypt.needs_rotation(v)}
                same = [raw[c].is_(None) if v is None else raw[c] == v for c, v in old.items()]
                result = conn.execute(
                    update(order_pii)
                    .where(p.amazon_order_id == row.amazon_order_id, p.erased_at.is_(None), *same)
                    .values({getattr(p, c): type_coerce(v, Text) for c, v in new.items()})
                )
                changed += result.rowcount
        return changed, (rows[-1].amazon_order_id if rows else None)

    def note_key(self, kid: str, now: datetime) -> datetime:
        """Record that key ``kid`` encrypts from now on, unless known; returns when it was first seen."""
        with self._writing() as conn:
            conn.execute(
                insert(conn, pii_keys)
                .values(key_id=kid, first_seen_at=now)
                .on_conflict_do_nothing(index_elements=["key_id"])
            )
            return aware(conn.scalar(select(pii_keys.c.first_seen_at).where(pii_keys.c.key_id == kid)))
