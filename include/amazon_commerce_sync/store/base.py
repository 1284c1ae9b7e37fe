"""What every aggregate of the state store shares: the engine, the actor, and dialect-aware upserts.

Every public method of an aggregate is its own short transaction, so a task killed at any point
leaves the store consistent, and every write is an upsert keyed by a natural key (the Amazon order
id, a Commerce shipment id, ...), so reruns converge. Within ``unit(engine)`` the calling thread's
calls share one transaction instead (all or nothing, one commit): for bookkeeping that belongs
together and sends nothing in between.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from amazon_commerce_sync.store.db import read_only
from amazon_commerce_sync.times import as_utc

_UNITS = threading.local()  # per thread: engine -> the connection of its open unit


def _open_unit(engine: Engine) -> Connection | None:
    return _UNITS.__dict__.get("open", {}).get(engine)


@contextlib.contextmanager
def unit(engine: Engine) -> Iterator[None]:
    """Run the calling thread's store calls on ``engine`` in one transaction, committed at the end (rolled back
    on an exception); a unit opened inside another joins it.

    Nothing may be sent to another system inside a unit: what the exactly-once protocol records before a send
    must be committed before it (``commerce_writes.protocol``), and a unit holds SQLite's write lock.
    """
    if _open_unit(engine) is not None:
        yield
        return
    units = _UNITS.__dict__.setdefault("open", {})
    with engine.begin() as conn:
        units[engine] = conn
        try:
            yield
        finally:
            del units[engine]


class Aggregate:
    """One aggregate's tables on the state store's engine; ``actor`` is written into the audit trail."""

    def __init__(self, engine: Engine, actor: str) -> None:
        self.engine = engine
        self.actor = actor

    def unit(self) -> AbstractContextManager[None]:
        """The calling thread's store calls in one transaction until the block ends (``unit``)."""
        return unit(self.engine)

    def _reading(self) -> AbstractContextManager[Connection]:
        """A connection for reads only: on SQLite its transaction is a snapshot that waits for no writer
        (``db.READ_ONLY``); nothing written through it may be committed. Within a ``unit``, the unit's."""
        joined = _open_unit(self.engine)
        if joined is not None:
            return contextlib.nullcontext(joined)
        return read_only(self.engine)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A transaction of its own, committed at the end; within a ``unit``, the unit's."""
        joined = _open_unit(self.engine)
        if joined is not None:
            yield joined
            return
        with self.engine.begin() as conn:
            yield conn

    def _all(self, stmt: Select) -> list[Any]:
        """Every row of a SELECT, as dicts (the aggregates type them as their row ``TypedDict``)."""
        with self._reading() as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def _first(self, stmt: Select) -> Any:
        """The first row of a SELECT as a dict, or None."""
        with self._reading() as conn:
            row = conn.execute(stmt).first()
        return dict(row._mapping) if row else None


def insert(conn: Connection, table: Table):
    """An INSERT that supports ``on_conflict_do_nothing`` / ``on_conflict_do_update`` on both dialects."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def aware(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands back naive ones; everything stored is UTC)."""
    return None if value is None else as_utc(value)
