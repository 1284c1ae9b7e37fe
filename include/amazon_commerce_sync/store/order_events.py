"""The order-events aggregate: Amazon order ids named by ORDER_CHANGE notifications, staged before any fetch.

Table ``order_events`` (migration 0008): one row per (account, Amazon order id) with the newest
``TimeOfOrderChange`` seen and that notification's id. ``state``: ``new`` (to fetch), ``done`` (fetched and staged
for the import's loader), ``unknown`` (Amazon answered 404 :data:`MAX_NOT_FOUND` times; the polling sweep has it).

- :meth:`OrderEvents.stage` never lets an older or duplicate notification overwrite a newer one (SQS delivers
  at least once, in any order); a newer one re-arms a ``done`` row.
- :meth:`OrderEvents.claim` hands rows to one worker under a lease (``claimed_by``, ``claimed_until`` in epoch
  seconds): a worker killed mid-run leaves rows whose lease expires, and the next run takes them.
- :meth:`OrderEvents.finish` marks a row done only if no newer notification arrived since the claim (same
  ``notification_id``), else it only gives the claim up: the row stays ``new`` for the next run.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import and_, func, or_, select, update

from amazon_commerce_sync.store.base import Aggregate, aware, insert
from amazon_commerce_sync.store.schema import order_events
from amazon_commerce_sync.times import utcnow

#: getOrder 404s before an order event is left to the polling sweep (Amazon may not show a brand-new order yet).
MAX_NOT_FOUND = 3


class OrderEvent(TypedDict):
    """One notification reduced to what staging needs."""

    account_id: str
    amazon_order_id: str
    change_time: datetime
    notification_id: str
    change_type: str


class OrderEvents(Aggregate):
    """Staged order events (see the module docstring)."""

    def stage(self, events: list[OrderEvent]) -> Counter[str]:
        """Stage a batch in one transaction; returns counts ``staged`` (new rows), ``newer`` (a row moved to a
        later change, re-armed) and ``older_or_duplicate`` (nothing changed)."""
        counts: Counter[str] = Counter()
        newest: dict[tuple[str, str], OrderEvent] = {}
        for event in events:
            key = (event["account_id"], event["amazon_order_id"])
            if key in newest and newest[key]["change_time"] >= event["change_time"]:
                counts["older_or_duplicate"] += 1
                continue
            if key in newest:
                counts["older_or_duplicate"] += 1  # the one it replaces in this batch
            newest[key] = event
        if not newest:
            return counts
        now = utcnow()
        c = order_events.c
        with self._writing() as conn:
            keys = [and_(c.account_id == a, c.amazon_order_id == o) for a, o in newest]
            query = select(c.account_id, c.amazon_order_id, c.change_time).where(or_(*keys))
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            stored = {(r.account_id, r.amazon_order_id): aware(r.change_time) for r in conn.execute(query)}
            for key, event in newest.items():
                values = {
                    "change_time": event["change_time"],
                    "notification_id": event["notification_id"][:64],
                    "change_type": event["change_type"][:32],
                    "state": "new",
                    "attempts": 0,
                    "updated_at": now,
                }
                if key not in stored:
                    stmt = insert(conn, order_events).values(
                        account_id=key[0], amazon_order_id=key[1], received_at=now, **values
                    )
                    conn.execute(stmt.on_conflict_do_nothing(index_elements=["account_id", "amazon_order_id"]))
                    counts["staged"] += 1
                elif event["change_time"] > stored[key]:
                    conn.execute(
                        update(order_events)
                        .where(
                            c.account_id == key[0], c.amazon_order_id == key[1], c.change_time < event["change_time"]
                        )
                        .values(**values)
                    )
                    counts["newer"] += 1
                else:
                    counts["older_or_duplicate"] += 1
        return counts

    def claim(
        self,
        account_id: str,
        owner: str,
        *,
        limit: int,
        lease_seconds: float,
        exclude: set[str] | frozenset[str] = frozenset(),
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` ``new`` rows of the account (not the order ids in ``exclude``), oldest change first,
        that no live lease holds; each is leased to ``owner`` for ``lease_seconds`` (a row another worker took
        meanwhile is skipped)."""
        c = order_events.c
        now = time.time()
        free = or_(c.claimed_until.is_(None), c.claimed_until < now)
        query = (
            select(c.account_id, c.amazon_order_id, c.change_time, c.notification_id, c.attempts)
            .where(c.account_id == account_id, c.state == "new", free)
            .order_by(c.change_time)
            .limit(limit)
        )
        if exclude:
            query = query.where(c.amazon_order_id.not_in(sorted(exclude)))
        with self._reading() as conn:
            rows = conn.execute(query).all()
        claimed = []
        for row in rows:
            with self._writing() as conn:
                taken = conn.execute(
                    update(order_events)
                    .where(c.account_id == account_id, c.amazon_order_id == row.amazon_order_id, c.state == "new", free)
                    .values(claimed_by=owner, claimed_until=now + lease_seconds)
                ).rowcount
            if taken == 1:
                claimed.append({**row._mapping, "change_time": aware(row.change_time)})
        return claimed

    def finish(self, row: dict[str, Any], owner: str, *, loaded_updated_at: datetime) -> bool:
        """Mark a claimed row ``done`` (the order is staged for the loader); True unless a newer notification
        re-armed it since the claim (then only the claim is given up and the row stays ``new``)."""
        return self._settle(row, owner, state="done", loaded_updated_at=loaded_updated_at)

    def not_found(self, row: dict[str, Any], owner: str) -> str:
        """Amazon answered 404 for a claimed row: count it; ``unknown`` after :data:`MAX_NOT_FOUND` tries, else
        ``new`` again. Returns the new state."""
        state = "unknown" if row["attempts"] + 1 >= MAX_NOT_FOUND else "new"
        self._settle(row, owner, state=state, attempts=row["attempts"] + 1)
        return state

    def defer(self, row: dict[str, Any], owner: str, seconds: float) -> None:
        """Keep a claimed row ``new`` and untouched for ``seconds`` (e.g. Amazon still shows an older version)."""
        c = order_events.c
        with self._writing() as conn:
            conn.execute(
                update(order_events)
                .where(c.account_id == row["account_id"], c.amazon_order_id == row["amazon_order_id"])
                .where(c.claimed_by == owner)
                .values(claimed_until=time.time() + seconds)
            )

    def release(self, account_id: str, owner: str, *, keep: set[str] | frozenset[str] = frozenset()) -> int:
        """Give up ``owner``'s claims on the account's rows, except the orders in ``keep`` (deferred ones wait
        their ``claimed_until`` out). Returns how many were given up."""
        c = order_events.c
        with self._writing() as conn:
            query = update(order_events).where(c.account_id == account_id, c.claimed_by == owner)
            if keep:
                query = query.where(c.amazon_order_id.not_in(sorted(keep)))
            return conn.execute(query.values(claimed_by=None, claimed_until=None)).rowcount

    def _settle(self, row: dict[str, Any], owner: str, **values: Any) -> bool:
        c = order_events.c
        mine = and_(
            c.account_id == row["account_id"], c.amazon_order_id == row["amazon_order_id"], c.claimed_by == owner
        )
        released = {"claimed_by": None, "claimed_until": None, "updated_at": utcnow()}
        with self._writing() as conn:
            same = conn.execute(
                update(order_events)
                .where(mine, c.notification_id == row["notification_id"])
                .values(**values, **released)
            ).rowcount
            if not same:
                conn.execute(update(order_events).where(mine).values(**released))
        return same == 1

    def counts(self, account_id: str | None = None) -> dict[str, int]:
        """Rows per state (of one account, or all)."""
        c = order_events.c
        query = select(c.state, func.count()).group_by(c.state)
        if account_id is not None:
            query = query.where(c.account_id == account_id)
        with self._reading() as conn:
            return {state: n for state, n in conn.execute(query)}
