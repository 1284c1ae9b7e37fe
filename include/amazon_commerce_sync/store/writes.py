"""The Commerce-writes aggregate: the intent log of every write to a system without idempotency keys.

Table ``commerce_writes``, one row per natural key (``create_order:<Amazon order id>``,
``invoice:<id>``, ...; see ``commerce_writes.keys``). A row is recorded (INTENT) before the request
is sent and completed (DONE, with the id of what it created) after it, so a retry, rerun or killed
worker knows to look before it writes again. The protocol itself is ``commerce_writes.write_once``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from amazon_commerce_sync.store.base import Aggregate, insert
from amazon_commerce_sync.store.schema import amazon_orders, commerce_writes
from amazon_commerce_sync.times import utcnow


class WriteStatus(enum.StrEnum):
    """State of a write (``commerce_writes.status``; the values are persisted)."""

    INTENT = "intent"  # recorded before the request; outcome unknown
    DONE = "done"  # took effect (or was found to have); ``commerce_entity_id`` names what it made
    FAILED = "failed"  # will not be tried again by itself; a person looks (the reason is in ``detail``)


class WriteRow(TypedDict):
    """A row of ``commerce_writes``."""

    id: int
    natural_key: str
    kind: str
    amazon_order_id: str | None
    status: str  # a WriteStatus value
    commerce_entity_id: str | None
    detail: dict[str, Any] | None
    created_at: datetime
    completed_at: datetime | None


class WriteLog(Aggregate):
    """The intent log: reads and writes of ``commerce_writes`` by natural key."""

    def get(self, natural_key: str) -> WriteRow | None:
        """The write's row, or None when no attempt is recorded."""
        with self._reading() as conn:
            return _get(conn, natural_key)

    def is_done(self, natural_key: str) -> bool:
        """True when the write took effect (its row is DONE)."""
        row = self.get(natural_key)
        return row is not None and row["status"] == WriteStatus.DONE

    def record_intent(
        self, natural_key: str, kind: str, amazon_order_id: str | None, detail: dict[str, Any] | None = None
    ) -> WriteRow:
        """Record that a write is about to be sent; returns the row (an existing one, unchanged, if recorded)."""
        with self._writing() as conn:
            _insert_intent(conn, natural_key, kind, amazon_order_id, detail)
            return _get(conn, natural_key)  # type: ignore[return-value]

    def amend_intent(self, natural_key: str, detail: dict[str, Any]) -> None:
        """Replace the ``detail`` of a write that is still an intent (e.g. name the batch it went into)."""
        with self._writing() as conn:
            conn.execute(
                update(commerce_writes)
                .where(commerce_writes.c.natural_key == natural_key, commerce_writes.c.status == WriteStatus.INTENT)
                .values(detail=detail)
            )

    def complete(
        self,
        natural_key: str,
        entity_id: str | int | None,
        *,
        status: WriteStatus = WriteStatus.DONE,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Mark the write DONE (or FAILED) with the id of what it made; ``detail`` replaces the recorded one."""
        with self._writing() as conn:
            _complete(conn, natural_key, entity_id, status, detail)

    def record(
        self,
        natural_key: str,
        kind: str,
        amazon_order_id: str | None,
        entity_id: str | int | None,
        *,
        status: WriteStatus = WriteStatus.DONE,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record an outcome directly (a decision, or an effect found without sending), in one transaction."""
        with self._writing() as conn:
            _insert_intent(conn, natural_key, kind, amazon_order_id, detail)
            _complete(conn, natural_key, entity_id, status, detail)

    def forget(self, natural_key: str) -> None:
        """Drop an intent that is known not to have taken effect (so it can be tried again)."""
        with self._writing() as conn:
            conn.execute(delete(commerce_writes).where(commerce_writes.c.natural_key == natural_key))

    def for_order(self, amazon_order_id: str) -> list[WriteRow]:
        """Every write of one Amazon order, oldest first."""
        return self._all(
            select(commerce_writes)
            .where(commerce_writes.c.amazon_order_id == amazon_order_id)
            .order_by(commerce_writes.c.id)
        )

    def intents_of_account(self, kind: str, account_id: str) -> list[WriteRow]:
        """The writes of ``kind`` still INTENT (outcome not recorded) of the account's Amazon orders, oldest first:
        what a run that died left unfinished (``commerce_writes.stock_recovery``)."""
        w = commerce_writes.c
        return self._all(
            select(commerce_writes)
            .join(amazon_orders, amazon_orders.c.amazon_order_id == w.amazon_order_id)
            .where(w.kind == kind, w.status == WriteStatus.INTENT, amazon_orders.c.account_id == account_id)
            .order_by(w.id)
        )

    def by_entity(self, kind: str, entity_id: str | int) -> WriteRow | None:
        """The write of ``kind`` that produced the Commerce entity ``entity_id``, if any."""
        return self._first(
            select(commerce_writes).where(
                commerce_writes.c.kind == kind, commerce_writes.c.commerce_entity_id == str(entity_id)
            )
        )


def _get(conn: Connection, natural_key: str) -> WriteRow | None:
    row = conn.execute(select(commerce_writes).where(commerce_writes.c.natural_key == natural_key)).first()
    return dict(row._mapping) if row else None  # type: ignore[return-value]


def _complete(
    conn: Connection, natural_key: str, entity_id: str | int | None, status: WriteStatus, detail: dict[str, Any] | None
) -> None:
    values: dict[str, Any] = {
        "status": str(status),
        "commerce_entity_id": None if entity_id is None else str(entity_id),
        "completed_at": utcnow(),
    }
    if detail is not None:
        values["detail"] = detail
    conn.execute(update(commerce_writes).where(commerce_writes.c.natural_key == natural_key).values(**values))


def _insert_intent(
    conn: Connection, natural_key: str, kind: str, amazon_order_id: str | None, detail: dict[str, Any] | None
) -> None:
    """Insert the write as an intent unless its natural key is recorded already (then nothing changes)."""
    stmt = insert(conn, commerce_writes).values(
        natural_key=natural_key,
        kind=kind,
        amazon_order_id=amazon_order_id,
        status=WriteStatus.INTENT,
        detail=detail,
        created_at=utcnow(),
    )
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["natural_key"]))
