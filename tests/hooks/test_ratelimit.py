"""Token buckets: the pure arithmetic, and the limit held across threads, engines and processes' DB."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine

from amazon_commerce_sync.errors import RateLimitedError
from amazon_commerce_sync.ratelimit import Limiter, LocalLimiter, SqlLimiter, reserve
from amazon_commerce_sync.store.db import make_engine
from amazon_commerce_sync.store.schema import rate_limit_buckets


def test_reserve_refills_caps_and_queues():
    # full bucket: a token at once
    assert reserve(5.0, 0.0, 0.0, rate=2.0, burst=5) == (4.0, 0.0)
    # empty bucket: the next token is 1/rate away
    assert reserve(0.0, 10.0, 10.0, rate=2.0, burst=5) == (-1.0, 0.5)
    # two callers already queued: the third waits 1.5 s
    assert reserve(-2.0, 10.0, 10.0, rate=2.0, burst=5) == (-3.0, 1.5)
    # refill never exceeds the burst
    assert reserve(0.0, 0.0, 1000.0, rate=2.0, burst=5) == (4.0, 0.0)
    with pytest.raises(ValueError):
        reserve(1.0, 0.0, 0.0, rate=0.0, burst=1)


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def test_local_limiter_burst_then_rate_and_penalize():
    clock = FakeClock()
    limiter = LocalLimiter(clock=clock, sleep=clock.sleep)
    assert isinstance(limiter, Limiter)
    assert [limiter.acquire("k", 1.0, 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("k", 1.0, 3) == pytest.approx(1.0)
    assert limiter.acquire("k", 1.0, 3) == pytest.approx(2.0)
    assert limiter.acquire("other", 1.0, 3) == 0.0  # buckets are per key
    clock.now += 10  # refilled to the burst
    assert limiter.acquire("k", 1.0, 3) == 0.0
    limiter.penalize("k")  # a 429 drains the bucket
    assert limiter.acquire("k", 1.0, 3) == pytest.approx(1.0)


def test_timeout_raises_without_taking_a_token():
    clock = FakeClock()
    limiter = LocalLimiter(clock=clock, sleep=clock.sleep)
    limiter.acquire("k", 0.1, 1)
    with pytest.raises(RateLimitedError) as info:
        limiter.acquire("k", 0.1, 1, timeout=5)
    assert info.value.retry_after == pytest.approx(10.0)
    assert limiter.acquire("k", 0.1, 1) == pytest.approx(10.0)  # the refused call reserved nothing


def hammer(limiters: list[Limiter], key: str, rate: float, burst: int, per_thread: int, threads_each: int):
    """Acquire from every limiter on several threads; return (start, sorted completion times)."""
    done: list[float] = []
    lock = threading.Lock()
    start = time.time()

    def work(limiter: Limiter) -> None:
        for _ in range(per_thread):
            limiter.acquire(key, rate, burst)
            with lock:
                done.append(time.time())

    threads = [threading.Thread(target=work, args=(lim,)) for lim in limiters for _ in range(threads_each)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return start, sorted(done)


def assert_within_rate(start: float, done: list[float], rate: float, burst: int, expected: int) -> None:
    assert len(done) == expected
    for n, t in enumerate(done, start=1):
        # n acquisitions completed by time t: at most burst + rate * elapsed (+ clock slack)
        assert n <= burst + rate * (t - start) + 1e-6 + rate * 0.005, (n, t - start)
    # and the limiter does not starve callers: the last one is close to the ideal time
    ideal = (expected - burst) / rate
    assert done[-1] - start < ideal + 1.5


def test_local_limiter_holds_across_threads():
    rate, burst = 40.0, 5
    start, done = hammer([LocalLimiter(clock=time.time)], "k", rate, burst, per_thread=8, threads_each=4)
    assert_within_rate(start, done, rate, burst, expected=32)


def sqlite_engines(path, n: int):
    engines = [make_engine(f"sqlite:///{path}") for _ in range(n)]
    rate_limit_buckets.create(engines[0], checkfirst=True)
    return engines


def test_sql_limiter_on_sqlite_holds_across_engines_and_threads(tmp_path):
    engines = sqlite_engines(tmp_path / "store.db", 3)
    rate, burst = 25.0, 4
    limiters = [SqlLimiter(e) for e in engines]
    start, done = hammer(limiters, "sp-api|seller|getOrder", rate, burst, per_thread=4, threads_each=2)
    assert_within_rate(start, done, rate, burst, expected=24)
    for e in engines:
        e.dispose()


def test_sql_limiter_penalize_drains_for_every_holder(tmp_path):
    first, second = sqlite_engines(tmp_path / "store.db", 2)
    now = time.time()  # one clock that stands still: the waits are exact, however long a commit takes
    a, b = SqlLimiter(first, clock=lambda: now, sleep=lambda s: None), SqlLimiter(second, clock=lambda: now)
    assert a.acquire("k", 1.0, 10) == 0.0
    b.penalize("k")
    assert a.acquire("k", 1.0, 10) == pytest.approx(1.0)
    b.penalize("new-key")  # penalising an unknown bucket creates it empty
    assert a.acquire("new-key", 1.0, 10) == pytest.approx(1.0)


@pytest.fixture
def pg_url():
    psycopg2 = pytest.importorskip("psycopg2")
    name = f"acs_ratelimit_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3)
    except psycopg2.OperationalError:
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.postgres
def test_sql_limiter_on_postgresql_holds_across_engines_and_threads(pg_url):
    engines = [create_engine(pg_url, pool_size=4) for _ in range(3)]
    rate_limit_buckets.create(engines[0])
    rate, burst = 25.0, 4
    # every holder starts on a missing row: the insert-if-missing race is exercised
    start, done = hammer(
        [SqlLimiter(e) for e in engines], "sp-api|seller|getOrder", rate, burst, per_thread=4, threads_each=2
    )
    assert_within_rate(start, done, rate, burst, expected=24)
    for e in engines:
        e.dispose()


def test_tokens_reads_a_bucket_without_taking_one(tmp_path):
    """What the event-driven import plans with: a new bucket is full, reservations show as a negative balance,
    the refill is capped at the burst, and reading takes nothing; the same on both limiters."""
    clock = FakeClock()
    (engine,) = sqlite_engines(tmp_path / "store.db", 1)
    for limiter in (LocalLimiter(clock=clock, sleep=clock.sleep), SqlLimiter(engine, clock=clock, sleep=clock.sleep)):
        key = f"k-{type(limiter).__name__}"
        assert limiter.tokens(key, 2.0, 5) == 5.0
        for _ in range(7):
            limiter.acquire(key, 2.0, 5)
        assert limiter.tokens(key, 2.0, 5) == pytest.approx(-2.0)
        assert limiter.tokens(key, 2.0, 5) == pytest.approx(-2.0)  # reading took nothing
        clock.now += 1.5
        assert limiter.tokens(key, 2.0, 5) == pytest.approx(1.0)
        clock.now += 100
        assert limiter.tokens(key, 2.0, 5) == 5.0
    engine.dispose()
