"""The package's one time parser, and "now".

Every time the integration reads is made an aware UTC ``datetime`` here:

- Amazon (Orders API 2026-01-01, Finances v0, Feeds 2021-06-30) sends ISO 8601 with ``Z`` or an
  offset: ``2026-11-01T12:00:00Z``, ``2026-11-01T12:00:00.123+00:00``.
- Magento's REST API sends ``created_at`` / ``updated_at`` as ``Y-m-d H:i:s`` in UTC, without a zone
  (``Magento\\Framework\\Stdlib\\DateTime::DATETIME_PHP_FORMAT``; the database stores UTC).
- The state store hands back naive datetimes on SQLite; everything stored there is UTC.

A time without a zone is therefore UTC, never the machine's local time.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; a naive one is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_time(value: str | datetime) -> datetime:
    """An aware UTC datetime from ISO 8601 (``Z``, an offset, or none) or Magento's ``Y-m-d H:i:s``.

    :raises ValueError: ``value`` is not such a time.
    """
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(datetime.fromisoformat(str(value).strip()))
