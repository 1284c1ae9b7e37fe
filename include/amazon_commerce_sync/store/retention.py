"""The orders aggregate's personal-data lifecycle: retention clocks, erasure, Commerce anonymisation.

Apart from ``orders.py`` because only ``pipelines/retention.py`` uses it. The rules (when a clock
starts, what is erased) are that module's; this one only reads and writes the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import Text, literal, null, or_, select, type_coerce, update

from amazon_commerce_sync.store import pii_crypto
from amazon_commerce_sync.store.base import Aggregate, aware, insert
from amazon_commerce_sync.store.schema import amazon_orders, audit_log, commerce_writes, order_pii
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


class Retention(Aggregate):
    """Retention clocks (``amazon_orders.delivered_at``) and the erasure of ``order_pii``."""

    def without_clock(self, statuses: Sequence[str], *, after_id: str = "", limit: int = 500) -> list[ClockCandidate]:
        """Orders in ``statuses`` whose retention clock (``delivered_at``) is not set yet, in id order."""
        o = amazon_orders.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(o.amazon_order_id, o.account_id, o.amazon_status, o.amazon_updated_at, o.payload)
                .where(o.delivered_at.is_(None), o.amazon_status.in_(list(statuses)), o.amazon_order_id > after_id)
                .order_by(o.amazon_order_id)
                .limit(limit)
            )
            return [{**r._mapping, "amazon_updated_at": aware(r.amazon_updated_at)} for r in rows]  # type: ignore[misc]

    def start_clock(self, amazon_order_id: str, delivered_at: datetime) -> bool:
        """Start an order's retention clock; it is set once and never moved. True if set now."""
        with self.engine.begin() as conn:
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
            return [{"amazon_order_id": r.amazon_order_id, "delivered_at": aware(r.delivered_at)} for r in rows]

    def commerce_orders_to_anonymise(
        self, account_id: str, delivered_before: datetime, *, key_prefix: str, after_id: str = "", limit: int = 500
    ) -> list[CommerceOrderDue]:
        """The account's orders delivered before ``delivered_before`` that have a Commerce order whose addresses
        were not anonymised yet (no done write ``<key_prefix><amazon order id>``)."""
        o, w = amazon_orders.c, commerce_writes.c
        key = literal(key_prefix) + o.amazon_order_id
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

    def erase(self, amazon_order_id: str, audit_detail: dict[str, Any]) -> bool:
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

    def reencrypt_pii(self, *, limit: int = 500) -> int:
        """Re-encrypt with the newest key the ``order_pii`` values that are clear text (written before
        encryption) or encrypted with an older key (``pii_crypto``); returns how many rows changed.

        Reads the stored tokens as text (bypassing decryption), so it is cheap when nothing is due; raises
        ``pii_crypto.PiiKeyError`` when a stored value matches no key."""
        crypt = pii_crypto.cipher()
        p = order_pii.c
        columns = ("buyer_name", "buyer_email", "buyer_company", "shipping_address")
        raw = [type_coerce(getattr(p, c), Text).label(c) for c in columns]
        changed = 0
        with self.engine.begin() as conn:
            rows = conn.execute(select(p.amazon_order_id, *raw).where(p.erased_at.is_(None))).all()
            for row in rows:
                values = {}
                for c in columns:
                    stored = getattr(row, c)
                    if stored is not None and crypt.needs_rotation(stored):
                        values[c] = crypt.rotate(stored)
                if not values:
                    continue
                conn.execute(
                    update(order_pii)
                    .where(p.amazon_order_id == row.amazon_order_id)
                    .values({getattr(p, c): type_coerce(v, Text) for c, v in values.items()})
                )
                changed += 1
                if changed >= limit:
                    break
        return changed
