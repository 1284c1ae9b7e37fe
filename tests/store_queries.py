"""Reads of the state store that only tests need (the package's aggregates carry what the code uses)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from amazon_commerce_sync.store import StagedOrder, StateStore
from amazon_commerce_sync.store.base import aware, insert
from amazon_commerce_sync.store.schema import audit_log, cursors, metadata, mismatches, quarantine
from amazon_commerce_sync.times import utcnow


def audit_entries(store: StateStore, entity_id: str | None = None, action: str | None = None) -> list[dict[str, Any]]:
    """Audit trail entries (of one entity, of one action), oldest first."""
    stmt = select(audit_log).order_by(audit_log.c.id)
    if entity_id:
        stmt = stmt.where(audit_log.c.entity_id == entity_id)
    if action:
        stmt = stmt.where(audit_log.c.action == action)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def open_quarantine(store: StateStore, entity_type: str | None = None) -> list[dict[str, Any]]:
    """Unresolved quarantine entries (of one entity type), oldest first."""
    stmt = select(quarantine).where(quarantine.c.resolved_at.is_(None)).order_by(quarantine.c.first_seen_at)
    if entity_type:
        stmt = stmt.where(quarantine.c.entity_type == entity_type)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def open_mismatches(store: StateStore) -> list[dict[str, Any]]:
    """Unresolved mismatches, oldest first."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(mismatches).where(mismatches.c.resolved_at.is_(None)).order_by(mismatches.c.first_seen_at)
        )
        return [dict(r._mapping) for r in rows]


def table_rows(store: StateStore, table_name: str) -> Iterator[dict[str, Any]]:
    """Every row of a table (the PII scans)."""
    with store.engine.connect() as conn:
        for row in conn.execute(select(metadata.tables[table_name])):
            yield dict(row._mapping)


def all_cursors(store: StateStore) -> dict[str, datetime]:
    with store.engine.connect() as conn:
        return {row.stream: aware(row.value) for row in conn.execute(select(cursors))}


def reset_cursor(store: StateStore, stream: str, value: datetime) -> None:
    """Put a cursor anywhere, backwards too (``Operations.set_cursor`` only moves forward)."""
    with store.engine.begin() as conn:
        stmt = insert(conn, cursors).values(stream=stream, value=value, updated_at=utcnow())
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["stream"], set_={"value": value, "updated_at": utcnow()})
        )


def staged_order(order_id: str, pii: dict[str, Any], *, account_id: str = "acct", **changes: Any) -> StagedOrder:
    """An unshipped merchant-fulfilled order of 10.00 EUR, without items, carrying ``pii`` (``changes`` override)."""
    t0 = datetime(2026, 11, 20, 10, tzinfo=UTC)
    order = {
        "amazon_order_id": order_id,
        "account_id": account_id,
        "marketplace_id": "A13V1IB3VIYZZH",
        "fulfilled_by": "MERCHANT",
        "amazon_status": "UNSHIPPED",
        "amazon_created_at": t0,
        "amazon_updated_at": t0,
        "currency": "EUR",
        "order_total": Decimal("10.00"),
        "buyer_cancel_requested": False,
        "payload": {"orderId": order_id},
        "items": [],
        "pii": dict(pii),
    }
    return StagedOrder(**{**order, **changes})
