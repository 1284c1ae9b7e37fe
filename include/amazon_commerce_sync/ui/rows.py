"""Building blocks the page's queries share (``ui/queries.py``, ``ui/event_path.py``): a list, times, hours."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, FromClause, func, select
from sqlalchemy.engine import Connection

LIST_LIMIT = 50
CSV_LIMIT = 100_000  # rows of one list exported as CSV


@dataclasses.dataclass
class Listing:
    """The first rows of a list (at most ``LIST_LIMIT``), how many there are in all, and its CSV export name."""

    rows: list[dict[str, Any]]
    total: int
    name: str = ""


def _aware(value: datetime | None) -> datetime | None:
    """A database time as an aware UTC datetime (SQLite returns naive UTC)."""
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


def first_rows(
    conn: Connection,
    table: FromClause,
    where: ColumnElement[bool],
    columns: list,
    order_by: list,
    *,
    now: datetime,
    since: str,
    name: str,
    limit: int = LIST_LIMIT,
) -> Listing:
    """A list as the page shows it: how many rows of ``table`` match ``where``, and the first ``limit`` of them in
    ``order_by`` (their ``columns``, aged from ``since``: :func:`_aged`); ``name``: its CSV export name."""
    total = conn.scalar(select(func.count()).select_from(table).where(where)) or 0
    rows = conn.execute(select(*columns).where(where).order_by(*order_by).limit(limit))
    return Listing(_aged(rows, now, since), total, name)


def _hour_bucket(conn: Connection, column):
    """The hour of a timestamp as a sortable string 'YYYY-MM-DD HH' on SQLite and PostgreSQL."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24")
    return func.strftime("%Y-%m-%d %H", column)


def lag_level(lag: timedelta | None, ok_minutes: float, alert_minutes: float) -> str:
    """A lag's colour on the page: "ok" up to ``ok_minutes``, "warn" up to ``alert_minutes``, "late" beyond,
    "unknown" without a lag."""
    if lag is None:
        return "unknown"
    if lag <= timedelta(minutes=ok_minutes):
        return "ok"
    if lag <= timedelta(minutes=alert_minutes):
        return "warn"
    return "late"
