"""What every aggregate of the state store shares: the engine, the actor, and dialect-aware upserts.

Every public method of an aggregate is its own short transaction, so a task killed at any point
leaves the store consistent, and every write is an upsert keyed by a natural key (the Amazon order
id, a Commerce shipment id, ...), so reruns converge.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from amazon_commerce_sync.times import as_utc


class Aggregate:
    """One aggregate's tables on the state store's engine; ``actor`` is written into the audit trail."""

    def __init__(self, engine: Engine, actor: str) -> None:
        self.engine = engine
        self.actor = actor

    def _all(self, stmt: Select) -> list[Any]:
        """Every row of a SELECT, as dicts (the aggregates type them as their row ``TypedDict``)."""
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def _first(self, stmt: Select) -> Any:
        """The first row of a SELECT as a dict, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return dict(row._mapping) if row else None


def insert(conn: Connection, table: Table):
    """An INSERT that supports ``on_conflict_do_nothing`` / ``on_conflict_do_update`` on both dialects."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def aware(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands back naive ones; everything stored is UTC)."""
    return None if value is None else as_utc(value)
