"""The event path on the Sales Channel page: ORDER_CHANGE notifications, the order ids they staged, the watcher.

Read from the state store (read-only, a fixed number of statements whatever the volume):

- ``order_events`` (``store/order_events.py``): per account the ids still to fetch (``new``; "in flight" when a
  run holds their lease), the oldest of their change times (the lag: now - that time, none waiting: 0) and the
  ids Amazon answered 404 for repeatedly (``unknown``, left to the polling sweep), through the ``state`` index;
- the audit trail's ``order_change_messages`` entries, one per run with messages, whose ``detail`` holds the
  stage's counts (``pipelines/order_events.stage_events``): notifications received per hour and over the last
  hour and 24 h, by outcome (staged, duplicate or older, quarantined, ignored: another seller or marketplace);
- the open quarantine entries ``order_change_message`` (not JSON, not an ORDER_CHANGE 1.0), by reason.

The watcher's state comes from Airflow's metadata database (``airflow_meta.order_change_watcher``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection

from amazon_commerce_sync.constants import DAG_ORDER_EVENTS
from amazon_commerce_sync.store.order_events import MESSAGES_ACTION, QUARANTINE_ENTITY
from amazon_commerce_sync.store.schema import audit_log, order_events, quarantine
from amazon_commerce_sync.ui.rows import LIST_LIMIT, Listing, _aware, _hour_bucket, first_rows, lag_level

CHART_HOURS = 24
# Lag colours. "ok" up to 2 min: issue 16's target is an order in Commerce within a minute of its change, and an
# order Amazon still shows older than its notification is asked again after 60 s (STALE_RETRY_SECONDS). "late"
# beyond 10 min: the DAG's own schedule (SALES_CHANNEL_ORDER_EVENTS_SCHEDULE, default every 10 minutes) picks up
# what a run left, so a waiting id older than that is not being fetched.
LAG_OK_MINUTES = 2
LAG_LATE_MINUTES = 10
# The stage's counts (``stage_events``), in the order the page shows them.
OUTCOMES = (
    "received",
    "staged",
    "newer",
    "older_or_duplicate",
    "quarantined",
    "ignored_other_seller",
    "ignored_other_marketplace",
)
# The watcher's states (``airflow_meta.order_change_watcher``): the pill's class, its label and what it means.
WATCHER_STATES = {
    "running": ("ok", "running", "the watcher's trigger runs in a live triggerer"),
    "not_running": (
        "late",
        "not running",
        "the watcher exists but no live triggerer runs its trigger (is the Airflow triggerer running?); "
        "the polling import carries the load meanwhile",
    ),
    "off": (
        "unknown",
        "off",
        "no queue configured (SALES_CHANNEL_ORDER_CHANGE_QUEUE_URL): the event path is off, orders are imported "
        "by polling only",
    ),
    "paused": ("warn", "paused", f"{DAG_ORDER_EVENTS} is paused: orders are imported by polling only"),
    "not_parsed": ("unknown", "not deployed", f"Airflow does not know {DAG_ORDER_EVENTS} (not parsed yet)"),
    "unknown": ("unknown", "unknown", "Airflow's metadata database cannot be read"),
}


@dataclasses.dataclass
class EventAccount:
    """One account's staged order ids: ``waiting`` (to fetch; ``in_flight`` of them leased by a run), the oldest
    change time among them, the lag (now - that time; 0 with none waiting) and ``unknown`` (left to the sweep)."""

    account_id: str
    waiting: int = 0
    in_flight: int = 0
    unknown: int = 0
    oldest_waiting: datetime | None = None
    lag: timedelta = timedelta(0)
    lag_level: str = "ok"


@dataclasses.dataclass
class EventPath:
    """The event path's state on the page (see the module docstring). ``hours``: the start of each chart bucket,
    oldest first; ``received_per_hour``: notifications received in each; ``last_hour`` / ``day``: each outcome
    of :data:`OUTCOMES` over the last 60 minutes / 24 hours; ``quarantine_reasons``: reason -> open entries."""

    accounts: list[EventAccount]
    hours: list[datetime]
    received_per_hour: list[int]
    last_hour: dict[str, int]
    day: dict[str, int]
    last_received: datetime | None
    quarantined: int
    quarantine_reasons: dict[str, int]
    watcher: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def waiting(self) -> int:
        return sum(a.waiting for a in self.accounts)

    @property
    def unknown(self) -> int:
        return sum(a.unknown for a in self.accounts)

    @property
    def lag(self) -> timedelta:
        """The largest account lag (0 when nothing waits)."""
        return max((a.lag for a in self.accounts), default=timedelta(0))

    @property
    def lag_level(self) -> str:
        return lag_level(self.lag, LAG_OK_MINUTES, LAG_LATE_MINUTES)

    @property
    def used(self) -> bool:
        """Whether the event path has left any trace in the state store."""
        return bool(self.accounts or self.last_received or self.quarantined)


def _sums() -> list:
    """Per outcome of :data:`OUTCOMES`, the sum of that count in the matching audit entries' ``detail``."""
    return [func.sum(audit_log.c.detail[key].as_integer()).label(key) for key in OUTCOMES]


def _counts(row) -> dict[str, int]:
    return {key: int(getattr(row, key) or 0) for key in OUTCOMES}


def _accounts(conn: Connection, now: datetime) -> list[EventAccount]:
    e = order_events.c
    leased = func.sum(case((e.claimed_until > time.time(), 1), else_=0)).label("leased")
    found: dict[str, EventAccount] = {}
    for row in conn.execute(  # state IN (...): the state index, never the done rows
        select(e.account_id, e.state, func.count().label("n"), func.min(e.change_time).label("oldest"), leased)
        .where(e.state.in_(["new", "unknown"]))
        .group_by(e.account_id, e.state)
    ):
        account = found.setdefault(row.account_id, EventAccount(row.account_id))
        if row.state == "unknown":
            account.unknown = row.n
            continue
        account.waiting, account.in_flight = row.n, int(row.leased or 0)
        account.oldest_waiting = _aware(row.oldest)
        account.lag = max(now - account.oldest_waiting, timedelta(0))
        account.lag_level = lag_level(account.lag, LAG_OK_MINUTES, LAG_LATE_MINUTES)
    return sorted(found.values(), key=lambda a: a.account_id)


def event_path(conn: Connection, now: datetime, watcher: Mapping[str, Any] | None = None) -> EventPath:
    """The event path's state at ``now`` (five statements on ``conn``); ``watcher`` as
    ``airflow_meta.order_change_watcher`` gives it (not read here)."""
    a = audit_log.c
    mine = a.action == MESSAGES_ACTION
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hours = [end - timedelta(hours=h) for h in range(CHART_HOURS, 0, -1)]
    index = {h.strftime("%Y-%m-%d %H"): i for i, h in enumerate(hours)}
    per_hour, day = [0] * len(hours), dict.fromkeys(OUTCOMES, 0)
    bucket = _hour_bucket(conn, a.at).label("hour")
    for row in conn.execute(select(bucket, *_sums()).where(a.at >= hours[0], mine).group_by(bucket)):
        counts = _counts(row)
        if row.hour in index:
            per_hour[index[row.hour]] = counts["received"]
        for key, n in counts.items():
            day[key] += n
    last_hour = _counts(conn.execute(select(*_sums()).where(a.at >= now - timedelta(hours=1), mine)).one())
    last_received = _aware(conn.scalar(select(func.max(a.at)).where(mine)))
    q = quarantine.c
    reasons = {
        row.reason: row.n
        for row in conn.execute(
            select(q.reason, func.count().label("n"))
            .where(q.entity_type == QUARANTINE_ENTITY, q.resolved_at.is_(None))
            .group_by(q.reason)
        )
    }
    return EventPath(
        accounts=_accounts(conn, now),
        hours=hours,
        received_per_hour=per_hour,
        last_hour=last_hour,
        day=day,
        last_received=last_received,
        quarantined=sum(reasons.values()),
        quarantine_reasons=reasons,
        watcher=dict(watcher or {}),
    )


def waiting_events(conn: Connection, now: datetime, limit: int = LIST_LIMIT) -> Listing:
    """The staged order ids not fetched yet (``new``) and those left to the polling sweep (``unknown``), the oldest
    change first (``age`` = now - change time); CSV ``order_events``."""
    e = order_events.c
    columns = [e.account_id, e.amazon_order_id, e.state, e.change_type, e.change_time, e.attempts, e.received_at]
    return first_rows(
        conn,
        order_events,
        e.state.in_(["new", "unknown"]),
        [*columns, e.updated_at],
        [e.change_time, e.account_id, e.amazon_order_id],
        now=now,
        since="change_time",
        name="order_events",
        limit=limit,
    )


def quarantined_messages(conn: Connection, now: datetime, limit: int = LIST_LIMIT) -> Listing:
    """Open quarantine entries of ORDER_CHANGE messages (SQS message id, reason), oldest first; CSV
    ``order_change_messages``."""
    q = quarantine.c
    return first_rows(
        conn,
        quarantine,
        (q.entity_type == QUARANTINE_ENTITY) & q.resolved_at.is_(None),
        [q.entity_id.label("message_id"), q.reason, q.occurrences, q.first_seen_at, q.last_seen_at],
        [q.first_seen_at, q.entity_id],
        now=now,
        since="first_seen_at",
        name="order_change_messages",
        limit=limit,
    )
