"""The event path on the Sales Channel page: its numbers on SQLite and PostgreSQL, its fixed work, its rendering,
its CSV lists, and the watcher's state read from a real Airflow metadata database."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import insert

from amazon_commerce_sync.constants import ASSET_ORDER_CHANGE, DAG_ORDER_EVENTS, ORDER_CHANGE_QUEUE_ENV
from amazon_commerce_sync.store.order_events import MESSAGES_ACTION, MESSAGES_ENTITY, QUARANTINE_ENTITY
from amazon_commerce_sync.store.schema import audit_log, order_events, quarantine
from amazon_commerce_sync.ui import airflow_meta, event_path, queries
from amazon_commerce_sync.ui.app import create_app
from amazon_commerce_sync.ui.template import render_page

from .conftest import order_id
from .test_sales_channel_page import ROOT, _statements, signed_in_client

NOW = datetime(2026, 11, 27, 14, 35, 12, tzinfo=UTC)  # Black Friday, mid-afternoon


def event_row(account_id: str, n: int, change_time: datetime, state: str = "new", **extra) -> dict:
    return {
        "account_id": account_id,
        "amazon_order_id": order_id(n),
        "change_time": change_time,
        "notification_id": f"notification-{n}",
        "change_type": "OrderStatusChange",
        "state": state,
        "attempts": 3 if state == "unknown" else 0,
        "received_at": change_time,
        "updated_at": change_time,
        "claimed_by": None,  # every row names every column: an executemany takes its columns from the first row
        "claimed_until": None,
        **extra,
    }


def batch(at: datetime, n: int, **counts: int) -> dict:
    """The audit entry ``stage_events`` writes for a run with messages."""
    return {
        "at": at,
        "actor": "amazon_order_events/run/stage",
        "action": MESSAGES_ACTION,
        "entity_type": MESSAGES_ENTITY,
        "entity_id": f"message-{n}",
        "detail": counts,
    }


def message_quarantine(message_id: str, reason: str, *, resolved: bool = False) -> dict:
    return {
        "entity_type": QUARANTINE_ENTITY,
        "entity_id": message_id,
        "reason": reason,
        "detail": None,
        "occurrences": 1,
        "first_seen_at": NOW - timedelta(hours=2),
        "last_seen_at": NOW - timedelta(hours=2),
        "resolved_at": NOW if resolved else None,
    }


def seed_events(store) -> None:
    """acct-eu: three ids waiting (5, 3 and 1 min old, one leased by a run), one unknown, two done; acct-jp: one
    waiting for 20 min; acct-us: done only. Three runs' counts (10 min, 3 h and 30 h ago), two open quarantined
    messages."""
    rows = [
        event_row("acct-eu", 1, NOW - timedelta(minutes=5)),
        event_row("acct-eu", 2, NOW - timedelta(minutes=3), claimed_by="run-1", claimed_until=time.time() + 300),
        event_row("acct-eu", 3, NOW - timedelta(minutes=1)),
        event_row("acct-eu", 4, NOW - timedelta(hours=1), state="unknown"),
        event_row("acct-eu", 5, NOW - timedelta(hours=2), state="done"),
        event_row("acct-eu", 6, NOW - timedelta(hours=2), state="done"),
        event_row("acct-jp", 7, NOW - timedelta(minutes=20)),
        event_row("acct-us", 8, NOW - timedelta(hours=3), state="done"),
    ]
    batches = [
        batch(
            NOW - timedelta(minutes=10),
            1,
            received=5,
            staged=2,
            older_or_duplicate=1,
            ignored_other_seller=1,
            quarantined=1,
        ),
        batch(NOW - timedelta(hours=3), 2, received=10, staged=8, newer=2),
        batch(NOW - timedelta(hours=30), 3, received=7, staged=7),
    ]
    with store.engine.begin() as conn:
        conn.execute(insert(order_events), rows)
        conn.execute(insert(audit_log), batches)
        conn.execute(
            insert(audit_log),
            [
                {
                    "at": NOW,
                    "actor": "tests",
                    "action": "order_created",
                    "entity_type": "amazon_order",
                    "entity_id": order_id(1),
                    "detail": {"received": 99},
                }
            ],
        )
        conn.execute(
            insert(quarantine),
            [
                message_quarantine("message-a", "not JSON"),
                message_quarantine("message-b", "not an ORDER_CHANGE notification"),
                message_quarantine("message-c", "not JSON", resolved=True),
                {**message_quarantine(order_id(9), "no shipping address"), "entity_type": "amazon_order"},
            ],
        )


def read(store):
    with store.engine.connect() as conn:
        return event_path.event_path(conn, NOW, {"state": "running"})


def test_the_event_paths_numbers_on_both_backends(state_store):
    seed_events(state_store)

    e = read(state_store)

    accounts = {a.account_id: a for a in e.accounts}
    assert set(accounts) == {"acct-eu", "acct-jp"}  # acct-us has nothing waiting nor unknown
    eu = accounts["acct-eu"]
    assert (eu.waiting, eu.in_flight, eu.unknown) == (3, 1, 1)
    assert (eu.oldest_waiting, eu.lag, eu.lag_level) == (NOW - timedelta(minutes=5), timedelta(minutes=5), "warn")
    jp = accounts["acct-jp"]
    assert (jp.waiting, jp.in_flight, jp.lag, jp.lag_level) == (1, 0, timedelta(minutes=20), "late")
    assert (e.waiting, e.unknown, e.lag, e.lag_level) == (4, 1, timedelta(minutes=20), "late")
    # the stage's counts: 5 in the last hour, 15 in 24 h (the run 30 h ago and the other audit entry do not count)
    assert e.last_hour == dict.fromkeys(event_path.OUTCOMES, 0) | {
        "received": 5,
        "staged": 2,
        "older_or_duplicate": 1,
        "ignored_other_seller": 1,
        "quarantined": 1,
    }
    assert e.day == dict.fromkeys(event_path.OUTCOMES, 0) | {
        "received": 15,
        "staged": 10,
        "newer": 2,
        "older_or_duplicate": 1,
        "ignored_other_seller": 1,
        "quarantined": 1,
    }
    assert e.last_received == NOW - timedelta(minutes=10)
    assert len(e.hours) == 24 and e.hours[-1] == NOW.replace(minute=0, second=0, microsecond=0)
    by_hour = dict(zip(e.hours, e.received_per_hour, strict=True))
    assert by_hour[(NOW - timedelta(minutes=10)).replace(minute=0, second=0, microsecond=0)] == 5
    assert by_hour[(NOW - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)] == 10
    assert sum(e.received_per_hour) == 15
    assert (e.quarantined, e.quarantine_reasons) == (2, {"not JSON": 1, "not an ORDER_CHANGE notification": 1})
    with state_store.engine.connect() as conn:
        waiting = event_path.waiting_events(conn, NOW)
        messages = event_path.quarantined_messages(conn, NOW)
    assert waiting.total == 5 and [r["amazon_order_id"] for r in waiting.rows][:2] == [order_id(4), order_id(7)]
    assert waiting.rows[0]["state"] == "unknown" and waiting.rows[0]["age"] == timedelta(hours=1)
    assert [r["message_id"] for r in messages.rows] == ["message-a", "message-b"] and messages.total == 2


def test_nothing_waiting_is_no_lag(state_store):
    e = read(state_store)
    assert (e.accounts, e.waiting, e.lag, e.lag_level, e.used) == ([], 0, timedelta(0), "ok", False)
    assert (e.last_received, e.quarantined, sum(e.received_per_hour)) == (None, 0, 0)


def test_the_event_paths_work_does_not_grow_with_the_events(state_store):
    """Five queries on SQLite and on PostgreSQL, before and after 20,000 more orders notified and 3,000 more
    runs (half within the last day)."""
    seed_events(state_store)
    before = _statements(state_store, lambda: read(state_store))
    with state_store.engine.begin() as conn:
        conn.execute(
            insert(order_events),
            [event_row("acct-us", 10_000 + i, NOW - timedelta(days=4), state="done") for i in range(20_000)],
        )
        conn.execute(
            insert(audit_log),
            [batch(NOW - timedelta(hours=2 + i % 2 * 70), 1000 + i, received=1) for i in range(3000)],
        )

    after = _statements(state_store, lambda: read(state_store))

    assert before == after == 5 + (state_store.engine.dialect.name == "sqlite")  # SQLite's BEGIN IMMEDIATE
    e = read(state_store)
    assert e.day["received"] == 15 + 1500  # half of them 2 h ago, half 3 days ago
    assert (e.waiting, e.unknown) == (4, 1)


def page(store, watcher: dict) -> str:
    return re.sub(r"\s+", " ", render_page(queries.page_data(store, NOW, schedule={}, watcher=watcher)))


def test_the_page_shows_the_event_path(make_store):
    store = make_store()
    seed_events(store)
    html = page(
        store,
        {
            "state": "running",
            "watchers": ["amazon_order_change_sqs"],
            "heartbeat": NOW - timedelta(seconds=4),
            "last_event": NOW - timedelta(seconds=40),
            "events_last_hour": 12,
        },
    )

    assert 'id="order-events"' in html and "Order events (ORDER_CHANGE)" in html
    assert '<code>amazon_order_change_sqs</code>: <span class="pill ok" id="watcher-state">running</span>' in html
    assert "(triggerer heartbeat 4 s ago)" in html and "Last batch from the queue 40 s ago, 12 in the last hour" in html
    summary = '<td>2026-11-27 14:25 UTC (10 min ago)</td><td class="num">5</td><td class="num">15</td>'
    assert summary in html
    assert '<td class="num">4</td><td><span class="pill late">20 min</span></td><td class="num">1</td>' in html
    assert "Last 24 h: 15 received, 10 staged, 2 newer change of a staged order, 1 duplicate or older, " in html
    assert "1 for another seller, 0 for a marketplace not imported" in html
    assert 'aria-label="ORDER_CHANGE notifications received per hour, last 24 hours (axis 0 to 10)"' in html
    eu = '<tr><td>acct-eu</td><td class="num">3</td><td class="num">1</td> <td>2026-11-27 14:30 UTC</td>'
    assert eu + '<td><span class="pill warn">5 min</span></td><td class="num">1</td></tr>' in html
    assert '<a href="csv/order_events" class="csv">all 5 waiting or unknown as CSV</a>' in html
    assert '<tr><td>not JSON</td><td class="num">1</td></tr>' in html
    assert '<a href="csv/order_change_messages" class="csv">all 2 as CSV</a>' in html


def test_each_watcher_state_is_said_and_an_unused_event_path_is_polling_only(make_store):
    store = make_store()
    expected = {
        "running": ("ok", "running"),
        "not_running": ("late", "not running"),
        "off": ("unknown", "off"),
        "paused": ("warn", "paused"),
        "not_parsed": ("unknown", "not deployed"),
        "unknown": ("unknown", "unknown"),
    }
    for state, (level, label) in expected.items():
        html = page(store, {"state": state})
        assert f'<span class="pill {level}" id="watcher-state">{label}</span>' in html, state
        assert "No ORDER_CHANGE notification received yet." in html
        assert "none yet" in html and '<span class="pill ok">none waiting</span>' in html
        assert 'id="order-events-accounts"' not in html and "ORDER_CHANGE notifications received per hour" not in html
    assert (
        "no queue configured (SALES_CHANNEL_ORDER_CHANGE_QUEUE_URL): the event path is off, orders are imported "
        "by polling only" in page(store, {"state": "off"})
    )
    assert "is the Airflow triggerer running?" in page(store, {"state": "not_running"})


def test_the_event_lists_export_as_csv_behind_the_pages_sign_in(make_store):
    store = make_store()
    seed_events(store)
    client = signed_in_client(store)

    waiting = client.get("/csv/order_events")
    assert waiting.status_code == 200 and waiting.headers["content-type"].startswith("text/csv")
    assert 'filename="sales-channel-order_events-' in waiting.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(waiting.text)))
    assert [r["amazon_order_id"] for r in rows] == [order_id(n) for n in (4, 7, 1, 2, 3)]  # oldest change first
    assert rows[0]["state"] == "unknown" and int(rows[0]["age"]) >= 60  # whole minutes since the change
    messages = list(csv.DictReader(io.StringIO(client.get("/csv/order_change_messages").text)))
    assert [(r["message_id"], r["reason"]) for r in messages] == [
        ("message-a", "not JSON"),
        ("message-b", "not an ORDER_CHANGE notification"),
    ]
    anonymous = TestClient(create_app(lambda: store, dag_ids=()))
    assert anonymous.get("/csv/order_events").status_code == 401
    assert anonymous.get("/csv/order_change_messages").status_code == 401


def test_the_watcher_state_comes_from_airflows_metadata(airflow_db, monkeypatch):
    """amazon_order_events parsed as the DAG processor does, with and without the queue; its watcher's trigger
    assigned by Airflow's own ``Trigger.assign_unassigned`` to a triggerer whose heartbeat is fresh, then stale."""
    from airflow.assets.manager import AssetManager
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.jobs.job import Job
    from airflow.models import DagModel
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select, update

    def parse(queue: str | None) -> None:
        if queue:
            monkeypatch.setenv(ORDER_CHANGE_QUEUE_ENV, queue)
        else:
            monkeypatch.delenv(ORDER_CHANGE_QUEUE_ENV, raising=False)
        bag = DagBag(dag_folder=str(ROOT / "dags" / f"{DAG_ORDER_EVENTS}.py"))
        assert bag.import_errors == {}
        sync_bag_to_db(bag, "dags-folder", None)

    def pause(paused: bool) -> None:
        with create_session() as session:
            session.execute(update(DagModel).where(DagModel.dag_id == DAG_ORDER_EVENTS).values(is_paused=paused))

    queue = "http://127.0.0.1:1/000000000000/page-test-order-change"
    DagBundlesManager().sync_bundles_to_db()
    assert airflow_meta.order_change_watcher(dag_id="sales_channel_never_parsed", uri="x-none://none")["state"] == (
        "not_parsed"
    )
    parse(queue)
    pause(True)
    parse(queue)  # the DAG processor keeps no watcher for a paused DAG
    assert airflow_meta.order_change_watcher()["state"] == "paused"

    pause(False)
    parse(queue)
    waiting = airflow_meta.order_change_watcher()
    assert waiting["state"] == "not_running" and waiting["watchers"] == ["amazon_order_change_sqs"]
    (trigger_id,) = waiting["trigger_ids"]

    job_id = event_id = None
    started = datetime.now(UTC)
    try:
        with create_session() as session:
            job = Job(job_type="TriggererJob")
            job.state, job.latest_heartbeat = "running", datetime.now(UTC)
            session.add(job)
            session.flush()
            job_id = job.id
            Trigger.assign_unassigned(job_id, capacity=1000, health_check_threshold=30, session=session)
            asset = session.scalar(select(AssetModel).where(AssetModel.uri == ASSET_ORDER_CHANGE))
            # a batch as the watcher's trigger submits it (``models/trigger.py`` ``submit_event``), without messages
            extra = {"from_trigger": True, "payload": {"status": "success", "message_batch": []}}
            event = AssetManager.register_asset_change(asset=asset.to_serialized(), extra=extra, session=session)
            session.flush()
            event_id = event.id
        with create_session() as session:
            assert session.get(Trigger, trigger_id).triggerer_id == job_id
        running = airflow_meta.order_change_watcher()
        assert running["state"] == "running" and running["trigger_ids"] == [trigger_id]
        assert datetime.now(UTC) - running["heartbeat"] < timedelta(seconds=30)
        assert running["events_last_hour"] >= 1 and datetime.now(UTC) - running["last_event"] < timedelta(minutes=1)
        # the triggerer's heartbeat goes stale (a killed triggerer): the trigger is still assigned, nothing runs it
        later = airflow_meta.order_change_watcher(datetime.now(UTC) + timedelta(seconds=31))
        assert later["state"] == "not_running" and later["heartbeat"] is None

        parse(None)  # no queue configured: the asset keeps no watcher
        assert airflow_meta.order_change_watcher()["state"] == "off"
    finally:
        with create_session() as session:  # the metadata database is the session's: leave no trace for others
            if job_id is not None:
                session.execute(update(Job).where(Job.id == job_id).values(state="success", end_date=datetime.now(UTC)))
            if event_id is not None:  # the event and the run it queued for amazon_order_events
                session.execute(delete(AssetEvent).where(AssetEvent.id == event_id))
                queued = AssetDagRunQueue.target_dag_id == DAG_ORDER_EVENTS
                session.execute(delete(AssetDagRunQueue).where(queued, AssetDagRunQueue.created_at >= started))
        pause(True)
