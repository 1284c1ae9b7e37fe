"""The operations aggregate: what keeps the runs going and tells a person what needs them.

Tables ``cursors`` (how far each stream has been read), ``leases`` (one writer per order across
workers), ``quarantine`` (records that need a person), ``mismatches`` (the two systems disagree) and
``audit_log`` (what was done, by which run, without personal data). The rate-limit buckets
(``rate_limit_buckets``) belong here too; they are read and written by ``ratelimit.SqlLimiter``,
which holds its row lock only while it reserves a token.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from amazon_commerce_sync.store.base import Aggregate, aware, insert, unit
from amazon_commerce_sync.store.orders import StuckOrder
from amazon_commerce_sync.store.schema import amazon_orders, audit_log, cursors, leases, mismatches, quarantine
from amazon_commerce_sync.times import utcnow


class Operations(Aggregate):
    """Cursors, leases, quarantine, mismatches and the audit trail."""

    # -- cursors -------------------------------------------------------------------------------
    def get_cursor(self, stream: str) -> datetime | None:
        """How far ``stream`` has been read (aware UTC), or None before its first run."""
        with self._reading() as conn:
            value = conn.scalar(select(cursors.c.value).where(cursors.c.stream == stream))
        return aware(value)

    def cursor_scope(self, stream: str) -> tuple[str, ...] | None:
        """What ``stream``'s cursor covers (e.g. the marketplace ids of an orders window), None if not recorded."""
        with self._reading() as conn:
            scope = conn.scalar(select(cursors.c.scope).where(cursors.c.stream == stream))
        return tuple(part for part in scope.split(",") if part) if scope is not None else None

    def set_cursor(
        self,
        stream: str,
        value: datetime,
        *,
        scope: tuple[str, ...] | None = None,
        replaces: tuple[str, ...] = (),
    ) -> None:
        """Move a cursor forward; it never goes backwards.

        :param scope: what the cursor now covers (recorded even when the value stays).
        :param replaces: cursors this one takes over (earlier releases' stream names), removed in the same
            transaction, so the two never both count.
        """
        values: dict[str, Any] = {"updated_at": utcnow()}
        if scope is not None:
            values["scope"] = ",".join(scope)
        with self._writing() as conn:
            current = aware(conn.scalar(select(cursors.c.value).where(cursors.c.stream == stream).with_for_update()))
            if current is None:
                conn.execute(cursors.insert().values(stream=stream, value=value, **values))
            elif value > current:
                conn.execute(update(cursors).where(cursors.c.stream == stream).values(value=value, **values))
            elif scope is not None:
                conn.execute(update(cursors).where(cursors.c.stream == stream).values(**values))
            if replaces:
                conn.execute(delete(cursors).where(cursors.c.stream.in_(replaces), cursors.c.stream != stream))

    # -- leases: one writer per order across workers -------------------------------------------
    def acquire_lease(self, key: str, owner: str, ttl_seconds: float) -> bool:
        """Take ``key`` for ``ttl_seconds`` unless another live owner holds it (re-entrant for ``owner``)."""
        now = time.time()
        with self._writing() as conn:
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

    def acquire_leases(self, keys: Iterable[str], owner: str, ttl_seconds: float) -> set[str]:
        """``acquire_lease`` for each key, in one transaction; returns the keys taken."""
        with unit(self.engine):
            return {key for key in keys if self.acquire_lease(key, owner, ttl_seconds)}

    def release_leases(self, keys: Iterable[str], owner: str) -> None:
        """Give up each of ``keys`` that ``owner`` holds, in one transaction."""
        keys = list(keys)
        if keys:
            with self._writing() as conn:
                conn.execute(delete(leases).where(leases.c.lease_key.in_(keys), leases.c.owner == owner))

    def release_lease(self, key: str, owner: str) -> None:
        """Give ``key`` up, if ``owner`` holds it."""
        with self._writing() as conn:
            conn.execute(delete(leases).where(leases.c.lease_key == key, leases.c.owner == owner))

    # -- quarantine ----------------------------------------------------------------------------
    def quarantine(self, entity_type: str, entity_id: str, reason: str, detail: dict[str, Any] | None = None) -> None:
        """Put a record in quarantine (again: counted, with the newest reason) for a person to look at."""
        now = utcnow()
        with self._writing() as conn:
            stmt = insert(conn, quarantine).values(
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
        """True if an open quarantine entry was resolved now."""
        return self._resolve(quarantine, entity_type=entity_type, entity_id=entity_id)

    def quarantined_orders_since(self, before: datetime, *, limit: int = 1000) -> list[StuckOrder]:
        """Amazon orders quarantined (and not resolved) since before ``before``, with their account if staged."""
        q, o = quarantine.c, amazon_orders.c
        with self._reading() as conn:
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
                    "since": aware(r.first_seen_at),
                }
                for r in rows
            ]

    # -- mismatches ----------------------------------------------------------------------------
    def report_mismatch(self, kind: str, amazon_order_id: str, detail: str) -> None:
        """Report that the two systems disagree about an order (once per kind and order, kept up to date)."""
        now = utcnow()
        with self._writing() as conn:
            stmt = insert(conn, mismatches).values(
                kind=kind, amazon_order_id=amazon_order_id, detail=detail, first_seen_at=now, last_seen_at=now
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["kind", "amazon_order_id"],
                    set_={"detail": detail, "last_seen_at": now, "resolved_at": None},
                )
            )

    def resolve_mismatch(self, kind: str, amazon_order_id: str) -> bool:
        """True if an open mismatch was resolved now (the systems agree again)."""
        return self._resolve(mismatches, kind=kind, amazon_order_id=amazon_order_id)

    def _resolve(self, table: Table, **match: str) -> bool:
        """Mark the open row of ``table`` matching ``match`` resolved now; True if there was one."""
        where = [table.c.resolved_at.is_(None), *(table.c[column] == value for column, value in match.items())]
        with self._writing() as conn:
            return conn.execute(update(table).where(*where).values(resolved_at=utcnow())).rowcount == 1

    # -- audit trail ---------------------------------------------------------------------------
    def audit(self, action: str, entity_type: str, entity_id: str, detail: dict[str, Any] | None = None) -> None:
        """Record what was done, by this store's actor; ``detail`` never holds personal data."""
        with self._writing() as conn:
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

    def last_audit_at(self, action: str, entity_id: str) -> datetime | None:
        """When ``action`` was last recorded for ``entity_id`` (e.g. an alert last sent)."""
        with self._reading() as conn:
            value = conn.scalar(
                select(func.max(audit_log.c.at)).where(audit_log.c.action == action, audit_log.c.entity_id == entity_id)
            )
        return aware(value)
