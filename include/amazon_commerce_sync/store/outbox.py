"""The outbox aggregate: pushes to Amazon keyed by natural key, and the feeds that carry them.

Tables ``outbox`` (one entry per push: a shipment confirmation ``shipment:<Commerce shipment id>``,
a payment adjustment ``refund:<credit memo id>``, a cancellation ``cancel:<Amazon order id>``) and
``feeds`` (Amazon feeds submitted, until their processing report is read).

An entry moves only by ``Outbox.transition``: a compare-and-set from the statuses the caller saw,
so two workers never both act on one entry.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import select, update

from amazon_commerce_sync.store.base import Aggregate, insert
from amazon_commerce_sync.store.schema import feeds, outbox
from amazon_commerce_sync.times import utcnow


class OutboxStatus(enum.StrEnum):
    """Status of an outbox entry (``outbox.status``; the values are persisted).

    Feeds (refunds, cancellations): pending → submitting → submitted → accepted | rejected
    (a feed that ended CANCELLED/FATAL puts its entries back to pending).
    Shipment confirmations (``confirmShipment``, one call per package): waiting ⇄ pending → sending →
    confirmed → accepted, or rejected, or skipped.
    """

    WAITING = "waiting"  # held: not ready to be sent (order not imported, no tracking number yet)
    PENDING = "pending"  # ready to be sent
    SUBMITTING = "submitting"  # claimed into a feed batch; createFeed sent or about to be
    SUBMITTED = "submitted"  # in a feed Amazon has not finished processing
    SENDING = "sending"  # confirmShipment sent (or about to be); the outcome is unknown until checked
    CONFIRMED = "confirmed"  # Amazon answered 204; the read-back has not shown the order shipped yet
    ACCEPTED = "accepted"  # Amazon applied it
    REJECTED = "rejected"  # Amazon said no, or we did not send it; a person must look
    SKIPPED = "skipped"  # held, then found to need no push (already on Amazon, shipment gone)

    @property
    def is_terminal(self) -> bool:
        """Nothing moves an entry out of this status by itself."""
        return self in TERMINAL


# Nothing moves an entry out of these by itself; a new request may send a rejected cancellation again.
TERMINAL = frozenset({OutboxStatus.ACCEPTED, OutboxStatus.REJECTED, OutboxStatus.SKIPPED})
# Fields ``transition`` may set besides the status.
_FIELDS = frozenset({"payload", "amazon_message", "feed_id", "message_id"})


class OutboxRow(TypedDict):
    """A row of ``outbox``."""

    id: int
    natural_key: str
    kind: str
    account_id: str
    amazon_order_id: str
    payload: dict[str, Any]
    status: str  # an OutboxStatus value
    attempts: int
    feed_id: str | None
    message_id: int | None
    amazon_message: str | None
    created_at: datetime
    updated_at: datetime


class FeedRow(TypedDict):
    """A row of ``feeds``."""

    feed_id: str
    account_id: str
    feed_type: str
    status: str  # IN_QUEUE until concluded, then Amazon's processingStatus
    document_id: str | None
    summary: dict[str, Any] | None
    submitted_at: datetime
    completed_at: datetime | None


class Outbox(Aggregate):
    """Outbox entries and feeds."""

    def add(
        self,
        natural_key: str,
        kind: str,
        account_id: str,
        amazon_order_id: str,
        payload: dict[str, Any],
        status: OutboxStatus = OutboxStatus.PENDING,
        amazon_message: str | None = None,
    ) -> bool:
        """Add a push (in ``status``) unless one with the same natural key exists; True if added."""
        now = utcnow()
        with self._writing() as conn:
            stmt = insert(conn, outbox).values(
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

    def get(self, natural_key: str) -> OutboxRow | None:
        """The entry with this natural key, or None."""
        return self._first(select(outbox).where(outbox.c.natural_key == natural_key))

    def entries(
        self,
        kind: str | None = None,
        statuses: Sequence[str] | None = None,
        account_id: str | None = None,
        feed_id: str | None = None,
        limit: int | None = None,
    ) -> list[OutboxRow]:
        """Entries matching every filter given, oldest first."""
        stmt = select(outbox).order_by(outbox.c.id)
        if kind:
            stmt = stmt.where(outbox.c.kind == kind)
        if statuses:
            stmt = stmt.where(outbox.c.status.in_([str(s) for s in statuses]))
        if account_id:
            stmt = stmt.where(outbox.c.account_id == account_id)
        if feed_id:
            stmt = stmt.where(outbox.c.feed_id == feed_id)
        if limit:
            stmt = stmt.limit(limit)
        return self._all(stmt)

    def for_order(self, amazon_order_id: str, kind: str | None = None) -> list[OutboxRow]:
        """Every entry of one Amazon order (optionally of one kind), oldest first."""
        stmt = select(outbox).where(outbox.c.amazon_order_id == amazon_order_id).order_by(outbox.c.id)
        if kind:
            stmt = stmt.where(outbox.c.kind == kind)
        return self._all(stmt)

    def transition(
        self,
        entry: int | str,
        to: OutboxStatus,
        *,
        expect: OutboxStatus | str | Collection[OutboxStatus | str],
        count_attempt: bool = False,
        **fields: Any,
    ) -> bool:
        """Move one entry (by id or natural key) to ``to`` if it is still in ``expect``; True if it moved.

        The compare-and-set that keeps two runs from acting on one entry. ``fields`` may set
        ``payload``, ``amazon_message``, ``feed_id`` and ``message_id`` (``None`` clears one); fields not
        given keep their value. ``count_attempt`` adds one to ``attempts``.

        :raises ValueError: an unknown field or status.
        """
        unknown = set(fields) - _FIELDS
        if unknown:
            raise ValueError(f"outbox entries have no field(s) {sorted(unknown)}")
        expected = [expect] if isinstance(expect, str) else list(expect)
        values: dict[str, Any] = {"status": str(OutboxStatus(to)), "updated_at": utcnow(), **fields}
        if count_attempt:
            values["attempts"] = outbox.c.attempts + 1
        where = outbox.c.id == entry if isinstance(entry, int) else outbox.c.natural_key == entry
        stmt = update(outbox).where(where, outbox.c.status.in_([str(OutboxStatus(s)) for s in expected]))
        with self._writing() as conn:
            return conn.execute(stmt.values(**values)).rowcount == 1

    # -- feeds ---------------------------------------------------------------------------------
    def record_feed(self, feed_id: str, account_id: str, feed_type: str, document_id: str | None) -> None:
        """Record a feed Amazon accepted (``createFeed``), IN_QUEUE until it is concluded; once per feed id."""
        with self._writing() as conn:
            stmt = insert(conn, feeds).values(
                feed_id=feed_id,
                account_id=account_id,
                feed_type=feed_type,
                status="IN_QUEUE",
                document_id=document_id,
                submitted_at=utcnow(),
            )
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["feed_id"]))

    def finish_feed(self, feed_id: str, status: str, summary: dict[str, Any] | None) -> None:
        """Record Amazon's final ``processingStatus`` and the report's counts."""
        with self._writing() as conn:
            conn.execute(
                update(feeds)
                .where(feeds.c.feed_id == feed_id)
                .values(status=status, summary=summary, completed_at=utcnow())
            )

    def open_feeds(self, feed_type: str | None = None, account_id: str | None = None) -> list[FeedRow]:
        """Feeds not concluded yet, oldest first."""
        stmt = select(feeds).where(feeds.c.completed_at.is_(None)).order_by(feeds.c.submitted_at)
        if feed_type:
            stmt = stmt.where(feeds.c.feed_type == feed_type)
        if account_id:
            stmt = stmt.where(feeds.c.account_id == account_id)
        return self._all(stmt)

    def get_feed(self, feed_id: str) -> FeedRow | None:
        """The recorded feed, or None (a feed no batch has claimed)."""
        return self._first(select(feeds).where(feeds.c.feed_id == feed_id))
