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
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from amazon_commerce_sync.marketplaces import REGIONS, region_of
from amazon_commerce_sync.store import OrderSync, OutboxStatus, StateStore
from amazon_commerce_sync.store.schema import amazon_orders, audit_log, cursors, mismatches, outbox, quarantine

log = logging.getLogger(__name__)

LIST_LIMIT = 50
CHART_DAYS = 7
ORDER_STREAM_PREFIX = "orders:"
# Lag colours: "ok" within three import intervals (the import runs every 5 minutes and
# re-reads an overlap), "late" from the account's alert threshold on, "warn" in between.
DEFAULT_OK_MINUTES = 15
DEFAULT_ALERT_MINUTES = 60
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
    today: dict[str, int] = dataclasses.field(default_factory=dict)
    created_per_hour: list[int] = dataclasses.field(default_factory=list)  # oldest hour first

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


@dataclasses.dataclass
class Listing:
    """The oldest rows of a list, and how many there are in all."""

    rows: list[dict[str, Any]]
    total: int


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
    # the three-way refund check per day, account and currency (``store.refund_checks.summary``), newest first
    refund_checks: list[dict[str, Any]] = dataclasses.field(default_factory=list)


REFUND_CHECK_DAYS = 7  # days of the refund check's summary on the page


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _aged(rows, now: datetime, column: str) -> list[dict[str, Any]]:
    """Rows as dicts with ``since`` (the row's ``column``, in UTC) and ``age`` (now - since)."""
    out = []
    for row in rows:
        since = _aware(getattr(row, column))
        out.append({**row._mapping, "since": since, "age": now - since})
    return out


def lag_level(lag: timedelta | None, ok_minutes: int, alert_minutes: int) -> str:
    if lag is None:
        return "unknown"
    if lag <= timedelta(minutes=ok_minutes):
        return "ok"
    if lag <= timedelta(minutes=alert_minutes):
        return "warn"
    return "late"


def _hour_bucket(conn: Connection, column):
    """The hour of a timestamp as a sortable string 'YYYY-MM-DD HH' on SQLite and PostgreSQL."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")
    return func.strftime("%Y-%m-%d %H", column)


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


def _orders_in_status(conn: Connection, status: str, now: datetime, accounts: Iterable[str]) -> Listing:
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
            o.attempts,
        )
        .where(where)
        .order_by(o.first_seen_at)
        .limit(LIST_LIMIT)
    )
    out = _aged(rows, now, "first_seen_at")
    return Listing(out, total)


def _quarantined(conn: Connection, now: datetime) -> Listing:
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
        .limit(LIST_LIMIT)
    )
    out = _aged(rows, now, "first_seen_at")
    return Listing(out, total)


def _outbox(conn: Connection, now: datetime) -> tuple[Listing, dict[tuple[str, str], int]]:
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
        .limit(LIST_LIMIT)
    )
    out = _aged(rows, now, "created_at")
    return Listing(out, sum(counts.values())), counts


def _mismatches(conn: Connection, now: datetime) -> Listing:
    m = mismatches.c
    where = m.resolved_at.is_(None)
    total = conn.scalar(select(func.count()).select_from(mismatches).where(where)) or 0
    rows = conn.execute(
        select(m.kind, m.amazon_order_id, m.detail, m.first_seen_at, m.last_seen_at)
        .where(where)
        .order_by(m.first_seen_at)
        .limit(LIST_LIMIT)
    )
    out = _aged(rows, now, "first_seen_at")
    return Listing(out, total)


def last_dag_runs(dag_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The last run and the last successful run of each DAG, from Airflow's metadata database.

    Empty when the metadata database cannot be read (e.g. the page served on its own).
    """
    try:
        from airflow.models import DagRun
        from airflow.utils.session import create_session
        from airflow.utils.state import DagRunState
    except ImportError:  # pragma: no cover - Airflow is always installed
        return []
    out = []
    try:
        with create_session() as session:
            for dag_id in dag_ids:
                last = session.scalar(
                    select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc()).limit(1)
                )
                success = session.scalar(
                    select(func.max(DagRun.end_date)).where(
                        DagRun.dag_id == dag_id, DagRun.state == DagRunState.SUCCESS
                    )
                )
                out.append(
                    {
                        "dag_id": dag_id,
                        "last_state": str(last.state) if last is not None and last.state else None,
                        "last_run_after": _aware(last.run_after) if last is not None else None,
                        "last_success": _aware(success),
                    }
                )
    except Exception:  # noqa: BLE001 - the page still shows the state store without it
        log.warning("cannot read DAG runs from Airflow's metadata database", exc_info=True)
        return []
    return out


def page_data(
    store: StateStore,
    now: datetime | None = None,
    *,
    lag_alert_minutes: Mapping[str, int] | None = None,
    ok_minutes: int = DEFAULT_OK_MINUTES,
    dag_ids: Iterable[str] = (),
) -> PageData:
    """Everything the page shows, in one read-only connection."""
    now = now or datetime.now(UTC)
    with store.engine.connect() as conn:
        channels = _channels(conn, now, lag_alert_minutes or {}, ok_minutes)
        hours = _chart(conn, now, channels)
        accounts = [c.account_id for c in channels]
        waiting = _orders_in_status(conn, OrderSync.WAITING_PRODUCT, now, accounts)
        quarantined = _quarantined(conn, now)
        out, out_counts = _outbox(conn, now)
        open_mismatches = _mismatches(conn, now)
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
        refund_checks=store.refund_checks.summary(
            now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=REFUND_CHECK_DAYS - 1)
        ),
    )
