"""What the Sales Channel page shows, read from the state store (read-only, no personal data).

Every query is an aggregate or a LIMITed list, so the page stays fast with hundreds of
thousands of orders: counts come from ``GROUP BY`` (the status counts use the
``(account_id, sync_status)`` index), lists show the oldest ``LIST_LIMIT`` rows and say how
many there are in all. ``order_pii`` is never read, and the columns are always named (never
``SELECT *``), so no buyer data can reach the page.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from amazon_commerce_sync.constants import cancel_decision_run_id
from amazon_commerce_sync.marketplaces import REGIONS, region_of
from amazon_commerce_sync.store import OrderSync, OutboxStatus, StateStore
from amazon_commerce_sync.store import ship_by as ship_by_deadlines
from amazon_commerce_sync.store.schema import amazon_orders, audit_log, cursors, mismatches, outbox, quarantine
from amazon_commerce_sync.ui import event_path
from amazon_commerce_sync.ui.airflow_meta import import_schedule, last_dag_runs, order_change_watcher
from amazon_commerce_sync.ui.rows import CSV_LIMIT, LIST_LIMIT, Listing, _aged, _aware, _hour_bucket, lag_level

log = logging.getLogger(__name__)

CHART_DAYS = 7
ORDER_STREAM_PREFIX = "orders:"
# Lag colours: "ok" within three import intervals (the import re-reads an overlap; the interval is read from the
# import's schedule in Airflow, see ``airflow_meta.import_schedule``), "late" from the account's alert threshold on,
# "warn" in between. DEFAULT_OK_MINUTES: three runs of the default 5-minute schedule, when the schedule is unknown.
DEFAULT_OK_MINUTES = 15
OK_IMPORT_RUNS = 3
DEFAULT_ALERT_MINUTES = 60
DEFAULT_SHIP_BY_HOURS = 12  # settings.AccountSettings.alert_ship_by_hours
# The status columns of the page, one per ``OrderSync`` value, in this order: "staged" is their sum.
STATUS_COLUMNS = (
    OrderSync.IMPORTED,
    OrderSync.WAITING,
    OrderSync.WAITING_PRODUCT,
    OrderSync.QUARANTINED,
    OrderSync.PENDING_PAYMENT,
    OrderSync.ON_HOLD,
    OrderSync.CANCELLED,
    OrderSync.NOT_ELIGIBLE,
)
_AN_ORDER_ID = re.compile(r"\b\d{3}-\d{7}-\d{7}\b")
OPEN_OUTBOX = (OutboxStatus.PENDING, OutboxStatus.SUBMITTED, OutboxStatus.REJECTED)


@dataclasses.dataclass
class Channel:
    """One Amazon account and marketplace ("" for a region whose marketplaces have no orders yet)."""

    account_id: str
    marketplace_id: str
    region: str = ""  # the Amazon region (NA, EU, FE): its cursor and lag are the region's
    cursor: datetime | None = None
    lag: timedelta | None = None
    lag_level: str = "unknown"  # ok, warn, late, unknown
    statuses: dict[str, int] = dataclasses.field(default_factory=dict)
    # why the ``not_eligible`` orders were left out of the import (the import's reason, order ids elided) -> count
    not_eligible_reasons: dict[str, int] = dataclasses.field(default_factory=dict)
    today: dict[str, int] = dataclasses.field(default_factory=dict)
    created_per_hour: list[int] = dataclasses.field(default_factory=list)  # oldest hour first

    @property
    def total(self) -> int:
        """Orders staged: every status counted, so it equals the sum of the ``STATUS_COLUMNS``."""
        return sum(self.statuses.values())


@dataclasses.dataclass
class PageData:
    now: datetime
    channels: list[Channel]
    hours: list[datetime]  # the start of each chart bucket, oldest first
    waiting_product: Listing
    quarantined: Listing
    outbox: Listing
    outbox_counts: dict[tuple[str, str], int]  # (kind, status) -> count
    mismatches: Listing
    dag_runs: list[dict[str, Any]]
    on_hold: Listing = dataclasses.field(default_factory=lambda: Listing([], 0, "on_hold"))
    ship_by_risk: Listing = dataclasses.field(default_factory=lambda: Listing([], 0, "ship_by"))
    ship_by_hours: int = DEFAULT_SHIP_BY_HOURS
    import_schedule: dict[str, Any] = dataclasses.field(default_factory=dict)
    # the three-way refund check per day, account and currency (``store.refund_checks.summary``), newest first
    refund_checks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    order_events: event_path.EventPath | None = None  # the event path (ORDER_CHANGE), ``ui/event_path.py``


REFUND_CHECK_DAYS = 7  # days of the refund check's summary on the page


def _channels(conn: Connection, now: datetime, thresholds: Mapping[str, int], ok_minutes: int) -> list[Channel]:
    o = amazon_orders.c
    found: dict[tuple[str, str], Channel] = {}

    def channel(account_id: str, marketplace_id: str) -> Channel:
        key = (account_id, marketplace_id)
        if key not in found:
            found[key] = Channel(account_id, marketplace_id)
        return found[key]

    for row in conn.execute(
        select(o.account_id, o.marketplace_id, o.sync_status, func.count().label("n")).group_by(
            o.account_id, o.marketplace_id, o.sync_status
        )
    ):
        channel(row.account_id, row.marketplace_id).statuses[row.sync_status] = row.n
    accounts = sorted({account_id for account_id, _ in found})
    for row in conn.execute(  # account_id IN (...): the (account_id, sync_status) index
        select(o.account_id, o.marketplace_id, o.sync_reason, func.count().label("n"))
        .where(o.account_id.in_(accounts), o.sync_status == OrderSync.NOT_ELIGIBLE)
        .group_by(o.account_id, o.marketplace_id, o.sync_reason)
    ):
        reasons = channel(row.account_id, row.marketplace_id).not_eligible_reasons
        reason = _AN_ORDER_ID.sub("…", row.sync_reason or "no reason recorded")
        reasons[reason] = reasons.get(reason, 0) + row.n

    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for row in conn.execute(
        select(o.account_id, o.marketplace_id, o.sync_status, func.count().label("n"))
        .where(o.updated_at >= midnight)
        .group_by(o.account_id, o.marketplace_id, o.sync_status)
    ):
        channel(row.account_id, row.marketplace_id).today[row.sync_status] = row.n
    a = audit_log.c
    for row in conn.execute(
        select(o.account_id, o.marketplace_id, a.action, func.count().label("n"))
        .select_from(audit_log.join(amazon_orders, o.amazon_order_id == a.entity_id))
        .where(
            a.at >= midnight,
            a.entity_type == "amazon_order",
            a.action.in_(["order_created", "order_quarantined", "order_redriven"]),
        )
        .group_by(o.account_id, o.marketplace_id, a.action)
    ):
        label = {"order_created": "created", "order_quarantined": "quarantined events", "order_redriven": "redriven"}
        channel(row.account_id, row.marketplace_id).today[label[row.action]] = row.n

    _attach_cursors(conn, now, found, channel)
    for ch in found.values():
        alert = thresholds.get(ch.account_id, DEFAULT_ALERT_MINUTES)
        ch.lag_level = lag_level(ch.lag, min(ok_minutes, alert), alert)
    return sorted(found.values(), key=lambda c: (c.account_id, c.marketplace_id))


def _attach_cursors(conn: Connection, now: datetime, found: dict[tuple[str, str], Channel], channel) -> None:
    """Each channel's extraction cursor: its account's cursor for the marketplace's Amazon region
    (``orders:<account>:<region>``, one window for all the region's marketplaces), or, before the first run
    of that release, its own per-marketplace cursor; a region cursor with no orders yet gets a row of its own."""
    by_region: dict[tuple[str, str], datetime] = {}
    by_marketplace: dict[tuple[str, str], datetime] = {}
    for row in conn.execute(
        select(cursors.c.stream, cursors.c.value).where(cursors.c.stream.startswith(ORDER_STREAM_PREFIX))
    ):
        parts = row.stream.split(":")
        if len(parts) != 3:
            continue
        target = by_region if parts[2] in REGIONS else by_marketplace
        target[(parts[1], parts[2])] = _aware(row.value)
    for account_id, marketplace_id in by_marketplace:
        channel(account_id, marketplace_id)
    for ch in found.values():
        ch.region = region_of(ch.marketplace_id) or ""
    for account_id, region in by_region:
        if not any(c.account_id == account_id and c.region == region for c in found.values()):
            channel(account_id, "").region = region
    for ch in found.values():
        ch.cursor = by_region.get((ch.account_id, ch.region)) or by_marketplace.get((ch.account_id, ch.marketplace_id))
        if ch.cursor is not None:
            ch.lag = max(now - ch.cursor, timedelta(0))


def _chart(conn: Connection, now: datetime, channels: list[Channel]) -> list[datetime]:
    """Orders created in Commerce per hour over the last CHART_DAYS days (audit ``order_created``)."""
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hours = [end - timedelta(hours=h) for h in range(CHART_DAYS * 24, 0, -1)]
    index = {h.strftime("%Y-%m-%d %H"): i for i, h in enumerate(hours)}
    by_key = {(c.account_id, c.marketplace_id): c for c in channels}
    for ch in channels:
        ch.created_per_hour = [0] * len(hours)
    a, o = audit_log.c, amazon_orders.c
    bucket = _hour_bucket(conn, a.at).label("hour")
    for row in conn.execute(
        select(o.account_id, o.marketplace_id, bucket, func.count().label("n"))
        .select_from(audit_log.join(amazon_orders, o.amazon_order_id == a.entity_id))
        .where(a.at >= hours[0], a.action == "order_created", a.entity_type == "amazon_order")
        .group_by(o.account_id, o.marketplace_id, bucket)
    ):
        ch = by_key.get((row.account_id, row.marketplace_id))
        i = index.get(row.hour)
        if ch is not None and i is not None:
            ch.created_per_hour[i] = row.n
    return hours


def _orders_in_status(
    conn: Connection,
    status: str,
    now: datetime,
    accounts: Iterable[str],
    limit: int = LIST_LIMIT,
    *,
    since: str = "first_seen_at",
    name: str = "waiting_product",
) -> Listing:
    """Orders in ``status``, the oldest ``since`` first (``age`` = now - ``since``)."""
    o = amazon_orders.c
    # account_id IN (...) lets both backends use the (account_id, sync_status) index.
    where = and_(o.account_id.in_(sorted(set(accounts))), o.sync_status == status)
    total = conn.scalar(select(func.count()).select_from(amazon_orders).where(where)) or 0
    rows = conn.execute(
        select(
            o.amazon_order_id,
            o.account_id,
            o.marketplace_id,
            o.amazon_status,
            o.sync_reason,
            o.commerce_order_id,
            o.commerce_increment_id,
            o.first_seen_at,
            o.amazon_updated_at,
            o.attempts,
            o.ship_by,
        )
        .where(where)
        .order_by(o[since], o.amazon_order_id)
        .limit(limit)
    )
    out = _aged(rows, now, since)
    for row in out:
        row["ship_by"] = _aware(row["ship_by"])
    return Listing(out, total, name)


def _on_hold(conn: Connection, now: datetime, accounts: Iterable[str], limit: int = LIST_LIMIT) -> Listing:
    """Orders on hold in Commerce for the buyer's cancellation request, oldest request (Amazon's last change)
    first, each with the run id of its decision (``constants.cancel_decision_run_id``; the run exists once the
    decision DAG has seen the request)."""
    listing = _orders_in_status(
        conn, OrderSync.ON_HOLD, now, accounts, limit, since="amazon_updated_at", name="on_hold"
    )
    for row in listing.rows:
        row["decision_run_id"] = cancel_decision_run_id(row["account_id"], row["amazon_order_id"])
    return listing


def _ship_by_risk(conn: Connection, now: datetime, hours: int, limit: int = LIST_LIMIT) -> Listing:
    """Unshipped merchant-fulfilled orders whose ship-by deadline is within ``hours`` (or past), soonest first
    (``store.ship_by.at_risk``); ``left`` is the time to the deadline (negative: late)."""
    where = ship_by_deadlines.at_risk(now + timedelta(hours=hours))
    total = conn.scalar(select(func.count()).select_from(amazon_orders).where(where)) or 0
    rows = conn.execute(
        select(*ship_by_deadlines.COLUMNS)
        .where(where)
        .order_by(amazon_orders.c.ship_by, amazon_orders.c.amazon_order_id)
        .limit(limit)
    )
    out = []
    for row in rows:
        data = dict(row._mapping)
        data["ship_by"], data["ship_by_alerted_at"] = _aware(data["ship_by"]), _aware(data["ship_by_alerted_at"])
        data["left"] = data["ship_by"] - now
        out.append(data)
    return Listing(out, total, "ship_by")


def _quarantined(conn: Connection, now: datetime, limit: int = LIST_LIMIT) -> Listing:
    q, o = quarantine.c, amazon_orders.c
    where = q.resolved_at.is_(None)
    total = conn.scalar(select(func.count()).select_from(quarantine).where(where)) or 0
    rows = conn.execute(
        select(
            q.entity_type,
            q.entity_id,
            q.reason,
            q.occurrences,
            q.first_seen_at,
            q.last_seen_at,
            o.account_id,
            o.marketplace_id,
            o.commerce_order_id,
            o.commerce_increment_id,
        )
        .select_from(
            quarantine.outerjoin(amazon_orders, and_(q.entity_type == "amazon_order", o.amazon_order_id == q.entity_id))
        )
        .where(where)
        .order_by(q.first_seen_at)
        .limit(limit)
    )
    out = _aged(rows, now, "first_seen_at")
    return Listing(out, total, "quarantined")


def _outbox(conn: Connection, now: datetime, limit: int = LIST_LIMIT) -> tuple[Listing, dict[tuple[str, str], int]]:
    b = outbox.c
    statuses = [str(s) for s in OPEN_OUTBOX]
    counts = {
        (r.kind, r.status): r.n
        for r in conn.execute(
            select(b.kind, b.status, func.count().label("n")).where(b.status.in_(statuses)).group_by(b.kind, b.status)
        )
    }
    rows = conn.execute(
        select(
            b.id,
            b.kind,
            b.account_id,
            b.amazon_order_id,
            b.status,
            b.attempts,
            b.feed_id,
            b.amazon_message,
            b.created_at,
            b.updated_at,
        )
        .where(b.status.in_(statuses))
        # rejected first (a person must look), then the oldest
        .order_by((b.status == str(OutboxStatus.REJECTED)).desc(), b.created_at)
        .limit(limit)
    )
    out = _aged(rows, now, "created_at")
    return Listing(out, sum(counts.values()), "outbox"), counts


def _mismatches(conn: Connection, now: datetime, limit: int = LIST_LIMIT) -> Listing:
    m = mismatches.c
    where = m.resolved_at.is_(None)
    total = conn.scalar(select(func.count()).select_from(mismatches).where(where)) or 0
    rows = conn.execute(
        select(m.kind, m.amazon_order_id, m.detail, m.first_seen_at, m.last_seen_at)
        .where(where)
        .order_by(m.first_seen_at)
        .limit(limit)
    )
    out = _aged(rows, now, "first_seen_at")
    return Listing(out, total, "mismatches")


def _accounts(conn: Connection) -> list[str]:
    return list(conn.scalars(select(amazon_orders.c.account_id).distinct()))


# The lists the page shows, by their CSV export name: (connection, now, ship-by hours, limit) -> Listing.
LISTS = {
    "waiting_product": lambda c, now, h, n: _orders_in_status(c, OrderSync.WAITING_PRODUCT, now, _accounts(c), n),
    "on_hold": lambda c, now, h, n: _on_hold(c, now, _accounts(c), n),
    "ship_by": lambda c, now, h, n: _ship_by_risk(c, now, h, n),
    "quarantined": lambda c, now, h, n: _quarantined(c, now, n),
    "outbox": lambda c, now, h, n: _outbox(c, now, n)[0],
    "mismatches": lambda c, now, h, n: _mismatches(c, now, n),
    "order_events": lambda c, now, h, n: event_path.waiting_events(c, now, n),
    "order_change_messages": lambda c, now, h, n: event_path.quarantined_messages(c, now, n),
}


def full_list(
    store: StateStore, name: str, now: datetime | None = None, *, ship_by_hours: int = DEFAULT_SHIP_BY_HOURS
) -> Listing:
    """All rows (up to ``CSV_LIMIT``) of one of the page's lists (a key of ``LISTS``), in the page's order.

    :raises KeyError: ``name`` is not one of the page's lists.
    """
    make = LISTS[name]
    with store.reading() as conn:
        return make(conn, now or datetime.now(UTC), ship_by_hours, CSV_LIMIT)


def ok_minutes_for(schedule: Mapping[str, Any]) -> int:
    """Lag still "ok": ``OK_IMPORT_RUNS`` intervals of the import's schedule, or ``DEFAULT_OK_MINUTES``."""
    interval = schedule.get("interval_minutes")
    return OK_IMPORT_RUNS * interval if interval else DEFAULT_OK_MINUTES


def page_data(
    store: StateStore,
    now: datetime | None = None,
    *,
    lag_alert_minutes: Mapping[str, int] | None = None,
    ok_minutes: int | None = None,
    dag_ids: Iterable[str] = (),
    ship_by_hours: int = DEFAULT_SHIP_BY_HOURS,
    schedule: Mapping[str, Any] | None = None,
    watcher: Mapping[str, Any] | None = None,
) -> PageData:
    """Everything the page shows, in one read-only connection. ``ok_minutes`` defaults to three intervals of the
    import's schedule (``schedule``, read from Airflow when not given); ``ship_by_hours``: the orders at ship-by
    risk listed are those due within it (the largest ``alert_ship_by_hours`` of the accounts); ``watcher``: the
    ORDER_CHANGE watcher's state (``airflow_meta.order_change_watcher``, read from Airflow when not given)."""
    now = now or datetime.now(UTC)
    schedule = dict(schedule) if schedule is not None else import_schedule()
    if ok_minutes is None:
        ok_minutes = ok_minutes_for(schedule)
    schedule["ok_minutes"] = ok_minutes
    watcher = order_change_watcher(now) if watcher is None else watcher
    with store.reading() as conn:
        channels = _channels(conn, now, lag_alert_minutes or {}, ok_minutes)
        hours = _chart(conn, now, channels)
        accounts = [c.account_id for c in channels]
        waiting = _orders_in_status(conn, OrderSync.WAITING_PRODUCT, now, accounts)
        on_hold = _on_hold(conn, now, accounts)
        risk = _ship_by_risk(conn, now, ship_by_hours)
        quarantined = _quarantined(conn, now)
        out, out_counts = _outbox(conn, now)
        open_mismatches = _mismatches(conn, now)
        events = event_path.event_path(conn, now, watcher)
    return PageData(
        now=now,
        channels=channels,
        hours=hours,
        waiting_product=waiting,
        quarantined=quarantined,
        outbox=out,
        outbox_counts=out_counts,
        mismatches=open_mismatches,
        dag_runs=last_dag_runs(dag_ids) if dag_ids else [],
        on_hold=on_hold,
        ship_by_risk=risk,
        ship_by_hours=ship_by_hours,
        import_schedule=schedule,
        refund_checks=store.refund_checks.summary(
            now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=REFUND_CHECK_DAYS - 1)
        ),
        order_events=events,
    )
