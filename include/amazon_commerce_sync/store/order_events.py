"""The order-events aggregate: Amazon order ids named by ORDER_CHANGE notifications, staged before any fetch.

Table ``order_events`` (migration 0008): one row per (account, Amazon order id) with the newest
``TimeOfOrderChange`` seen and that notification's id. ``state``: ``new`` (to fetch), ``done`` (fetched, by getOrder or
in a searchOrders page, and staged for the import's loader), ``unknown`` (Amazon answered 404 :data:`MAX_NOT_FOUND`
times; the polling sweep has it), ``stale`` (Amazon kept showing a version older than the notification: staged as
shown, the change left to the polling sweep). ``deferrals`` (migration 0010) counts the tries that found it older.

- :meth:`OrderEvents.stage` never lets an older or duplicate notification overwrite a newer one (SQS delivers
  at least once, in any order); a newer one re-arms a ``done`` row.
- :meth:`OrderEvents.claim` hands rows to one worker under a lease (``claimed_by``, ``claimed_until`` in epoch
  seconds): a worker killed mid-run leaves rows whose lease expires, and the next run takes them.
- :meth:`OrderEvents.finish` marks a row done only if no newer notification arrived since the claim (same
  ``notification_id``), else it only gives the claim up: the row stays ``new`` for the next run.
- :meth:`OrderEvents.backlog` says how many rows wait (to choose between getOrder and searchOrders pages) and
  :meth:`OrderEvents.cover` marks done the unclaimed rows a searchOrders page brought in a recent enough version.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple, TypedDict

from sqlalchemy import and_, func, or_, select, update

from amazon_commerce_sync.store.base import Aggregate, aware, insert
from amazon_commerce_sync.store.schema import order_events
from amazon_commerce_sync.times import utcnow

#: Keys read per query when staging (SQLite refuses an expression deeper than 1,000: a burst of thousands of
#: notifications in one run is read in chunks).
STAGE_CHUNK = 200
#: getOrder 404s before an order event is left to the polling sweep (Amazon may not show a brand-new order yet).
MAX_NOT_FOUND = 3
#: The quarantine entity of a message that is not JSON or not an ORDER_CHANGE 1.0 (entity id: its SQS message id).
QUARANTINE_ENTITY = "order_change_message"
#: The audit entry of one run's messages (entity ``order_change_batch``, id: the batch's first SQS message id);
#: ``detail`` holds the stage's outcome counts (``received``, ``staged``, ``ignored_other_seller``...), which the
#: Sales Channel page sums per hour. Counts only, no ids of orders or buyers.
MESSAGES_ACTION = "order_change_messages"
MESSAGES_ENTITY = "order_change_batch"


class OrderEvent(TypedDict):
    """One notification reduced to what staging needs."""

    account_id: str
    amazon_order_id: str
    change_time: datetime
    notification_id: str
    change_type: str


class Backlog(NamedTuple):
    """The rows of an account a worker could claim now: how many, how many changed at or before a given time (a
    searchOrders window can show them), and the oldest of those changes (None when there is none)."""

    claimable: int
    searchable: int
    oldest_searchable: datetime | None


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
            stored: dict[tuple[str, str], datetime] = {}
            pending = list(newest)
            for at in range(0, len(pending), STAGE_CHUNK):
                keys = [and_(c.account_id == a, c.amazon_order_id == o) for a, o in pending[at : at + STAGE_CHUNK]]
                query = select(c.account_id, c.amazon_order_id, c.change_time).where(or_(*keys))
                if conn.dialect.name == "postgresql":
                    query = query.with_for_update()
                stored.update({(r.account_id, r.amazon_order_id): aware(r.change_time) for r in conn.execute(query)})
            for key, event in newest.items():
                values = {
                    "change_time": event["change_time"],
                    "notification_id": event["notification_id"][:64],
                    "change_type": event["change_type"][:32],
                    "state": "new",
                    "attempts": 0,
                    "deferrals": 0,
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
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` ``new`` rows of the account (not the order ids in ``exclude``), oldest change first
        (newest first with ``newest_first``), that no live lease holds; each is leased to ``owner`` for
        ``lease_seconds`` (a row another worker took meanwhile is skipped)."""
        c = order_events.c
        now = time.time()
        free = _free(now)
        query = (
            select(c.account_id, c.amazon_order_id, c.change_time, c.notification_id, c.attempts, c.deferrals)
            .where(c.account_id == account_id, c.state == "new", free)
            .order_by(c.change_time.desc() if newest_first else c.change_time)
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

    def backlog(
        self, account_id: str, *, searchable_before: datetime, searchable_after: datetime | None = None
    ) -> Backlog:
        """How many ``new`` rows of the account no live lease holds, and how many of them changed at or before
        ``searchable_before`` (and after ``searchable_after``), with the oldest such change."""
        c = order_events.c
        free = _free(time.time())
        older = c.change_time <= searchable_before
        if searchable_after is not None:
            older = and_(older, c.change_time > searchable_after)
        query = select(
            func.count(),
            func.count().filter(older),
            func.min(c.change_time).filter(older),
        ).where(c.account_id == account_id, c.state == "new", free)
        with self._reading() as conn:
            claimable, searchable, oldest = conn.execute(query).one()
        return Backlog(claimable, searchable, aware(oldest) if oldest is not None else None)

    def cover(
        self,
        account_id: str,
        versions: Mapping[str, datetime],
        older: Callable[[datetime, datetime], bool],
    ) -> list[str]:
        """Mark ``done`` the account's ``new`` rows no live lease holds whose order is in ``versions`` (order id ->
        ``lastUpdatedTime`` of the version just staged from a searchOrders page), unless ``older(updated,
        change_time)`` (that version predates the notified change: the row stays for getOrder). A row re-armed or
        claimed meanwhile is left as it is. Returns the order ids marked."""
        if not versions:
            return []
        c = order_events.c
        query = select(c.amazon_order_id, c.change_time, c.notification_id).where(
            c.account_id == account_id, c.state == "new", _free(time.time()), c.amazon_order_id.in_(sorted(versions))
        )
        with self._reading() as conn:
            rows = conn.execute(query).all()
        covered = []
        with self._writing() as conn:
            for row in rows:
                updated = versions[row.amazon_order_id]
                if older(updated, aware(row.change_time)):
                    continue
                marked = conn.execute(
                    update(order_events)
                    .where(c.account_id == account_id, c.amazon_order_id == row.amazon_order_id, c.state == "new")
                    .where(c.notification_id == row.notification_id, _free(time.time()))
                    .values(state="done", loaded_updated_at=updated, updated_at=utcnow())
                ).rowcount
                if marked:
                    covered.append(row.amazon_order_id)
        return covered

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
        """Keep a claimed row ``new`` and untouched for ``seconds`` (e.g. Amazon still shows an older version);
        counts it in ``deferrals``."""
        c = order_events.c
        with self._writing() as conn:
            conn.execute(
                update(order_events)
                .where(c.account_id == row["account_id"], c.amazon_order_id == row["amazon_order_id"])
                .where(c.claimed_by == owner)
                .values(claimed_until=time.time() + seconds, deferrals=c.deferrals + 1)
            )

    def give_up(self, row: dict[str, Any], owner: str, *, loaded_updated_at: datetime | None) -> bool:
        """Mark a claimed row ``stale``: the version Amazon shows (older than the notification) was staged, the
        notified change is left to the polling sweep. False when a newer notification re-armed it meanwhile."""
        return self._settle(row, owner, state="stale", loaded_updated_at=loaded_updated_at)

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
        """Set ``values`` on the owner's claimed row if no newer notification re-armed it; give the claim up."""
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


def _free(now: float):
    """No live lease holds the row (none, or it ran out before ``now``, epoch seconds)."""
    c = order_events.c
    return or_(c.claimed_until.is_(None), c.claimed_until < now)
