"""Client-side token buckets, so that our calls stay inside the APIs' rate limits.

Amazon meters every SP-API operation with a token bucket per selling partner and
application (``rate`` tokens per second, at most ``burst`` saved). Every task and
every worker process calling the same operation for the same seller shares that one
bucket, so our copy of it must be shared as widely:

- ``LocalLimiter``: in-process, thread-safe (one worker, tests).
- ``SqlLimiter(engine)``: the buckets live in the state store's ``rate_limit_buckets``
  table, so every worker process on every machine draws from the same bucket. Each
  acquisition is one short transaction holding the row lock (``SELECT ... FOR UPDATE``
  on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite, set up by the store's engine).

Both use reservations: ``acquire`` takes a token at once (the balance may go negative,
which is a queue of callers already promised a future slot), commits, and only then
sleeps until its slot. Nobody holds a lock while sleeping, and across all holders the
number of acquisitions completed by time ``t`` never exceeds ``burst + rate * elapsed``.

``tokens(key, ...)`` reads a bucket's balance without taking a token (to plan calls, e.g. the event-driven
import choosing between getOrder and searchOrders). ``penalize(key)`` empties a bucket when the server
answered 429 anyway (another client spent the tokens), so every worker backs off, not only the one that
was refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from amazon_commerce_sync.errors import RateLimitedError
from amazon_commerce_sync.store.db import read_only

log = logging.getLogger(__name__)

__all__ = ["Limiter", "LocalLimiter", "SqlLimiter", "reserve"]


@runtime_checkable
class Limiter(Protocol):
    """Token buckets keyed by a string (e.g. seller + operation)."""

    def acquire(self, key: str, rate: float, burst: int, timeout: float | None = None) -> float:
        """Block until a token of bucket ``key`` is available; return the seconds waited.

        :param rate: tokens added per second.
        :param burst: the bucket's capacity (a new bucket starts full).
        :param timeout: the longest acceptable wait; if the wait would be longer, no token
            is taken and ``RateLimitedError`` (with ``retry_after``) is raised.
        """
        ...

    def penalize(self, key: str) -> None:
        """Empty bucket ``key`` (the server answered 429 although we had a token)."""
        ...

    def tokens(self, key: str, rate: float, burst: int) -> float:
        """The balance of bucket ``key`` now, refilled and capped at ``burst``, without taking a token: below
        1 means the next ``acquire`` waits; negative, that callers already hold slots (a new bucket is full)."""
        ...


def refilled(tokens: float, updated_at: float, now: float, rate: float, burst: int) -> float:
    """A bucket's balance at ``now``: ``tokens`` at ``updated_at`` plus ``rate`` a second, at most ``burst``."""
    return min(float(burst), tokens + max(0.0, now - updated_at) * rate)


def reserve(tokens: float, updated_at: float, now: float, rate: float, burst: int) -> tuple[float, float]:
    """Refill a bucket to ``now`` and take one token: returns (new balance, seconds to wait).

    Pure bucket arithmetic shared by both limiters. The balance may go negative: each
    negative unit is a caller already holding a slot ``1/rate`` seconds further out.
    """
    if rate <= 0:
        raise ValueError("rate must be positive")
    balance = refilled(tokens, updated_at, now, rate, burst) - 1.0
    wait = 0.0 if balance >= 0 else -balance / rate
    return balance, wait


def _too_long(key: str, wait: float, timeout: float | None) -> bool:
    if timeout is not None and wait > timeout:
        log.warning("rate limit bucket %s: next token in %.1f s exceeds the %.1f s allowed", key, wait, timeout)
        return True
    return False


class LocalLimiter:
    """Thread-safe token buckets held in this process's memory."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, key: str, rate: float, burst: int, timeout: float | None = None) -> float:
        with self._lock:
            now = self._clock()
            tokens, updated_at = self._buckets.get(key, (float(burst), now))
            balance, wait = reserve(tokens, updated_at, now, rate, burst)
            if _too_long(key, wait, timeout):
                raise RateLimitedError(
                    f"client-side rate limit: next token in {wait:.1f} s", operation=key, retry_after=wait
                )
            self._buckets[key] = (balance, now)
        if wait > 0:
            self._sleep(wait)
        return wait

    def penalize(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            tokens, _ = self._buckets.get(key, (0.0, now))
            self._buckets[key] = (min(tokens, 0.0), now)

    def tokens(self, key: str, rate: float, burst: int) -> float:
        with self._lock:
            now = self._clock()
            tokens, updated_at = self._buckets.get(key, (float(burst), now))
        return refilled(tokens, updated_at, now, rate, burst)


class SqlLimiter:
    """Token buckets in the state store table ``rate_limit_buckets``, shared by all workers.

    :param engine: the state store's engine (PostgreSQL or SQLite) with the table migrated.
    """

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from amazon_commerce_sync.store.schema import rate_limit_buckets

        self.engine = engine
        self.table = rate_limit_buckets
        self._clock = clock
        self._sleep = sleep

    # -- one transaction with the bucket's row locked ---------------------------------

    def _locked_row(self, conn: Connection, key: str, initial: float, now: float) -> tuple[float, float]:
        """Lock bucket ``key`` (creating it if missing) and return (tokens, updated_at)."""
        table = self.table
        query = select(table.c.tokens, table.c.updated_at).where(table.c.bucket_key == key)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            # Two workers may both find no row: insert-if-missing, then lock what is there.
            conn.execute(self._insert_ignore(conn).values(bucket_key=key, tokens=initial, updated_at=now))
            row = conn.execute(query).first()
        assert row is not None
        return float(row.tokens), float(row.updated_at)

    def _insert_ignore(self, conn: Connection):
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif conn.dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # pragma: no cover - the state store is PostgreSQL or SQLite
            raise NotImplementedError(f"SqlLimiter does not support {conn.dialect.name}")
        return insert(self.table).on_conflict_do_nothing(index_elements=["bucket_key"])

    def _transaction(
        self, key: str, initial: float, change: Callable[[float, float, float], tuple[float, float]]
    ) -> None:
        """Run ``change(tokens, updated_at, now) -> (tokens, updated_at)`` with the row locked.

        A missing bucket is created with ``initial`` tokens.
        """
        # The state store's engines (store.db.make_engine) open SQLite transactions with
        # BEGIN IMMEDIATE, so the write lock is taken here before the read: no lost updates.
        with self.engine.begin() as conn:
            tokens, updated_at = self._locked_row(conn, key, initial, self._clock())
            # Read the clock only once the row is locked (a stale "now" would credit a
            # refill twice), and never move a bucket back in time (clocks of workers differ).
            now = max(self._clock(), updated_at)
            new_tokens, new_updated_at = change(tokens, updated_at, now)
            conn.execute(
                update(self.table)
                .where(self.table.c.bucket_key == key)
                .values(tokens=new_tokens, updated_at=new_updated_at)
            )

    def acquire(self, key: str, rate: float, burst: int, timeout: float | None = None) -> float:
        waits: list[float] = []

        def take(tokens: float, updated_at: float, now: float) -> tuple[float, float]:
            balance, wait = reserve(tokens, updated_at, now, rate, burst)
            if _too_long(key, wait, timeout):
                raise RateLimitedError(
                    f"client-side rate limit: next token in {wait:.1f} s", operation=key, retry_after=wait
                )
            waits.append(wait)
            return balance, now

        self._transaction(key, float(burst), take)
        wait = waits[0]
        if wait > 0:
            self._sleep(wait)
        return wait

    def penalize(self, key: str) -> None:
        def drain(tokens: float, updated_at: float, now: float) -> tuple[float, float]:
            return min(tokens, 0.0), now

        self._transaction(key, 0.0, drain)

    def tokens(self, key: str, rate: float, burst: int) -> float:
        table = self.table
        query = select(table.c.tokens, table.c.updated_at).where(table.c.bucket_key == key)
        with read_only(self.engine) as conn:  # a snapshot, no write lock
            row = conn.execute(query).first()
        if row is None:
            return float(burst)
        updated_at = float(row.updated_at)
        return refilled(float(row.tokens), updated_at, max(self._clock(), updated_at), rate, burst)
