"""The order_events table's rules on SQLite and on a real PostgreSQL (the e2e tests run SQLite): newest change
wins, leases, a newer notification during a fetch, 404s, giving claims up."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from amazon_commerce_sync.store.order_events import MAX_NOT_FOUND, OrderEvents

T0 = datetime(2026, 11, 30, 12, 0, 0, 123000, tzinfo=UTC)
ORDER = "111-0000001-0000001"


def event(order_id=ORDER, at=T0, notification="n1", account="acct"):
    return {
        "account_id": account,
        "amazon_order_id": order_id,
        "change_time": at,
        "notification_id": notification,
        "change_type": "OrderStatusChange",
    }


def test_newest_change_wins_and_duplicates_count(state_store):
    events = OrderEvents(state_store.engine, "tests")
    later = event(at=T0 + timedelta(seconds=5), notification="n2")
    assert events.stage([later, event()]) == {"staged": 1, "older_or_duplicate": 1}
    assert events.stage([event(), later]) == {"older_or_duplicate": 2}
    newest = event(at=T0 + timedelta(seconds=9), notification="n3")
    assert events.stage([newest]) == {"newer": 1}
    (row,) = events.claim("acct", "w1", limit=10, lease_seconds=60)
    assert (row["notification_id"], row["change_time"]) == ("n3", newest["change_time"])


def test_leases_finish_superseded_not_found_and_release(state_store):
    events = OrderEvents(state_store.engine, "tests")
    other = "111-0000002-0000002"
    events.stage([event(), event(other, notification="m1")])
    claimed = events.claim("acct", "w1", limit=10, lease_seconds=60)
    assert len(claimed) == 2
    assert events.claim("acct", "w2", limit=10, lease_seconds=60) == []  # leased to w1

    first = next(r for r in claimed if r["amazon_order_id"] == ORDER)
    events.stage([event(at=T0 + timedelta(seconds=1), notification="n2")])  # arrives during the fetch
    assert events.finish(first, "w1", loaded_updated_at=T0) is False  # superseded: stays new, claim given up
    (again,) = events.claim("acct", "w2", limit=10, lease_seconds=60)
    assert again["notification_id"] == "n2"
    assert events.finish(again, "w2", loaded_updated_at=T0 + timedelta(seconds=1)) is True
    assert events.counts("acct") == {"done": 1, "new": 1}

    second = next(r for r in claimed if r["amazon_order_id"] == other)
    for attempt in range(1, MAX_NOT_FOUND + 1):
        state = events.not_found(second, "w1")
        assert state == ("unknown" if attempt == MAX_NOT_FOUND else "new")
        if state == "new":
            (second,) = events.claim("acct", "w1", limit=10, lease_seconds=60)
    assert events.counts("acct") == {"done": 1, "unknown": 1}


def test_release_keeps_deferred_and_expired_leases_free_rows(state_store):
    events = OrderEvents(state_store.engine, "tests")
    other = "111-0000002-0000002"
    events.stage([event(), event(other, notification="m1")])
    rows = events.claim("acct", "w1", limit=10, lease_seconds=60)
    deferred = next(r for r in rows if r["amazon_order_id"] == other)
    events.defer(deferred, "w1", 60)
    assert events.release("acct", "w1", keep={other}) == 1
    assert [r["amazon_order_id"] for r in events.claim("acct", "w2", limit=10, lease_seconds=1)] == [ORDER]
    time.sleep(1.1)  # w2 killed: its lease runs out
    assert [r["amazon_order_id"] for r in events.claim("acct", "w3", limit=10, lease_seconds=60)] == [ORDER]


def test_backlog_counts_what_a_worker_could_claim_and_what_a_window_can_show(state_store):
    events = OrderEvents(state_store.engine, "tests")
    ids = [f"111-0000003-{n:07d}" for n in range(4)]
    events.stage(
        [event(order_id, at=T0 + timedelta(minutes=n), notification=f"b{n}") for n, order_id in enumerate(ids)]
    )
    assert events.backlog("acct", searchable_before=T0 + timedelta(minutes=1, seconds=30)) == (4, 2, T0)
    assert events.backlog("acct", searchable_before=T0 - timedelta(seconds=1)) == (4, 0, None)
    (newest,) = events.claim("acct", "w1", limit=1, lease_seconds=60, newest_first=True)
    assert newest["amazon_order_id"] == ids[-1]
    assert events.backlog("acct", searchable_before=T0 + timedelta(hours=1)) == (3, 3, T0)  # leased: not claimable
    assert events.backlog("other", searchable_before=T0) == (0, 0, None)


def test_cover_marks_free_rows_a_page_shows_recent_enough(state_store):
    """A searchOrders page covers a row only in a version at least as new as its notification, never a row a
    worker holds, and never one a newer notification re-armed since it was read."""
    from amazon_commerce_sync.pipelines.order_events import _older

    events = OrderEvents(state_store.engine, "tests")
    fresh, old, held, absent = (f"111-0000004-{n:07d}" for n in range(4))
    events.stage([event(o, notification=f"c{n}") for n, o in enumerate((fresh, old, held, absent))])
    events.claim("acct", "w1", limit=1, lease_seconds=60, exclude={fresh, old, absent})  # `held`
    page = {fresh: T0.replace(microsecond=0), old: T0 - timedelta(seconds=5), held: T0, "999-0000000-0000000": T0}
    assert events.cover("acct", page, _older) == [fresh]
    assert events.cover("acct", page, _older) == []  # done already
    assert events.counts("acct") == {"done": 1, "new": 3}
    (row,) = [r for r in events.claim("acct", "w2", limit=10, lease_seconds=60) if r["amazon_order_id"] == old]
    assert row["amazon_order_id"] == old  # left for getOrder


def test_deferrals_are_counted_and_a_given_up_row_is_stale(state_store):
    events = OrderEvents(state_store.engine, "tests")
    events.stage([event()])
    for expected in range(3):
        (row,) = events.claim("acct", "w1", limit=1, lease_seconds=60)
        assert row["deferrals"] == expected
        events.defer(row, "w1", 0)
        events.release("acct", "w1")
    (row,) = events.claim("acct", "w1", limit=1, lease_seconds=60)
    assert events.give_up(row, "w1", loaded_updated_at=T0 - timedelta(seconds=5)) is True
    assert events.counts("acct") == {"stale": 1}
    events.stage([event(at=T0 + timedelta(seconds=1), notification="n2")])  # a newer change re-arms it
    (row,) = events.claim("acct", "w1", limit=1, lease_seconds=60)
    assert (row["deferrals"], row["notification_id"]) == (0, "n2")


def test_a_burst_of_thousands_is_staged_in_one_call(state_store):
    """One run stages every message of its asset events: on Prime Day thousands (SQLite refuses one query over
    them all: "Expression tree is too large")."""
    events = OrderEvents(state_store.engine, "tests")
    burst = [event(f"111-0000005-{n:07d}", notification=f"p{n}") for n in range(1500)]
    assert events.stage(burst) == {"staged": 1500}
    assert events.stage(
        burst[:10] + [event("111-0000005-0000001", at=T0 + timedelta(seconds=1), notification="q")]
    ) == {
        "older_or_duplicate": 10,
        "newer": 1,
    }
