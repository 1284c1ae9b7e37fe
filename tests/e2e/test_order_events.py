"""amazon_order_events end to end: orders change in the Amazon sandbox, which publishes ORDER_CHANGE to a real SQS
queue (moto server) through the subscription amazon_notifications_setup made; the messages are received off the
queue and reduced as the watcher's trigger does, become real asset events in Airflow's metadata database, and a
dag.test() run consuming them stages, fetches and loads the orders into the Commerce sandbox.

``dag.test()`` runs no scheduler and no triggerer: :func:`run_with_events` attaches the asset events to the run as
the scheduler does for an asset-triggered run (``DagRun.consumed_asset_events``), with the ``extra`` the triggerer
writes (``models/trigger.py submit_event``)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest

from amazon_commerce_sync.constants import ASSET_ORDER_CHANGE, ORDER_CHANGE_QUEUE_ENV
from amazon_commerce_sync.events import reduce_batch
from amazon_commerce_sync.store.order_events import MAX_NOT_FOUND, OrderEvents
from sandboxes.amazon.config import DEFAULT_SELLER_ID
from tests.e2e import test_order_events_setup as setup_tests
from tests.sandboxes.amazon.sqs_helpers import drain
from tests.store_queries import open_quarantine

pytestmark = pytest.mark.e2e

# The set-up tests' fixtures: an Amazon sandbox publishing to the local SQS, and a queue with its connection.
amazon_sandbox = setup_tests.amazon_sandbox
sqs = setup_tests.sqs
SETUP = setup_tests.SETUP

EVENTS = "amazon_order_events"
UNKNOWN_ORDER = "999-0000000-0000001"


@pytest.fixture
def subscribed(channel, sqs, monkeypatch):
    """The channel with the ORDER_CHANGE subscription made by amazon_notifications_setup, and the watcher's queue
    configured (the DAG file then defines its AssetWatcher)."""
    channel.configure(merchant_id=DEFAULT_SELLER_ID)
    monkeypatch.setenv(ORDER_CHANGE_QUEUE_ENV, sqs.queue_url)
    assert channel.run_dag(SETUP) == {"subscribe": "success"}
    return channel


def receive(sqs, count: int, timeout: float = 15.0) -> list[dict]:
    """``count`` messages off the queue as ``ReceiveMessage`` answers them, deleted as the trigger deletes them."""
    messages: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(messages) < count and time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=sqs.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            messages.append(message)
            sqs.delete_message(QueueUrl=sqs.queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert len(messages) == count, [m["Body"][:80] for m in messages]
    return messages


def run_with_events(channel, *batches: list[dict], later: tuple[list[dict], ...] = ()) -> dict[str, str]:
    """Run amazon_order_events once, consuming one asset event per batch (the trigger's reduced payload).

    With ``later`` batches the run is made as the scheduler makes an asset-triggered one (``run_type``,
    ``run_after`` = now), and each later batch is an asset event recorded after its ``run_after``: not the run's
    own (Airflow 3.3.2 gives a run the events up to its ``run_after``)."""
    from airflow.assets.manager import AssetManager
    from airflow.models import dagrun
    from airflow.models.asset import AssetModel
    from airflow.utils import timezone
    from airflow.utils.types import DagRunType
    from sqlalchemy import select

    create = dagrun.get_or_create_dagrun

    def with_events(*args, **kwargs):
        run = create(*args, **kwargs)
        session = kwargs["session"]
        asset = session.scalar(select(AssetModel).where(AssetModel.uri == ASSET_ORDER_CHANGE)).to_serialized()

        def register(batch):
            extra = {"from_trigger": True, "payload": {"status": "success", "message_batch": reduce_batch(batch)}}
            return AssetManager.register_asset_change(asset=asset, extra=extra, session=session)

        for batch in batches:
            run.consumed_asset_events.append(register(batch))
        if later:
            run.run_type, run.run_after = DagRunType.ASSET_TRIGGERED, timezone.utcnow()
            for batch in later:
                register(batch)
        session.commit()
        return run

    with mock.patch.object(dagrun, "get_or_create_dagrun", with_events):
        return channel.run_dag(EVENTS)


def result(channel, task_id: str) -> dict:
    ti = next(t for t in channel.last_run.get_task_instances() if t.task_id == task_id)
    return ti.xcom_pull(task_ids=task_id, map_indexes=ti.map_index)


def new_orders(channel, count: int, seed: int) -> list[str]:
    """Merchant-fulfilled unshipped orders created now in the Amazon sandbox (each publishes one ORDER_CHANGE)."""
    orders = channel.generated_orders(count, seed=seed, age=timedelta(0), status="UNSHIPPED", fulfilled_by="MERCHANT")
    changed = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for order in orders:  # the generator dates orders in the past; these change now, as their notification says
        order["lastUpdatedTime"] = changed
    return channel.load_amazon_orders(orders)


def events_of(channel) -> dict[str, dict]:
    from sqlalchemy import select

    from amazon_commerce_sync.store.schema import order_events

    with channel.store.engine.connect() as conn:
        return {r.amazon_order_id: dict(r._mapping) for r in conn.execute(select(order_events))}


def test_notifications_bring_the_orders_into_commerce_once(subscribed, sqs):
    channel = subscribed
    ids = new_orders(channel, 3, seed=41)
    messages = receive(sqs, 3)

    assert run_with_events(channel, messages) == {
        "stage": "success",
        "accounts": "success",
        "account.fetch_load[0]": "success",
        "anything_changed": "success",
        "announce": "success",  # the Commerce-orders asset: the shipment sync runs on it
        "decision_requests": "success",  # no buyer asked to cancel: no decision run to open
        "request_decision": "skipped",
    }
    assert result(channel, "stage") == {"received": 3, "staged": 3}
    fetched = result(channel, "account.fetch_load")
    assert (fetched.get("fetched"), fetched["load"].get("created")) == (3, 3), fetched
    in_commerce = channel.commerce_orders_by_amazon_id()
    assert all(len(in_commerce.get(order_id, [])) == 1 for order_id in ids), in_commerce.keys()
    assert {k: v["state"] for k, v in events_of(channel).items()} == dict.fromkeys(ids, "done")

    # What Airflow stored of the notifications: ids and times, no buyer data (ORDER_CHANGE carries a postal code).
    # The run's own events: the metadata database is the session's, shared with the other tests' runs.
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.get(DagRun, channel.last_run.id)
        stored = [e.extra for e in run.consumed_asset_events if e.asset.uri == ASSET_ORDER_CHANGE]
    text = json.dumps(stored)
    assert "PostalCode" not in text and "Summary" not in text and "Body" not in text
    assert sorted(m["amazonOrderId"] for e in stored for m in e["payload"]["message_batch"]) == sorted(ids)

    # SQS delivers at least once: the same messages again stage nothing and write nothing to Commerce.
    assert run_with_events(channel, messages)["account.fetch_load[0]"] == "success"
    assert result(channel, "stage") == {"received": 3, "older_or_duplicate": 3}
    assert result(channel, "account.fetch_load")["load"].get("created", 0) == 0
    assert channel.commerce_orders_by_amazon_id() == in_commerce


def test_faults_each_get_their_outcome_and_never_stop_the_run(subscribed, sqs):
    """Duplicate, out of order, another seller, malformed, unknown order: staged once / ignored / quarantined /
    left to the sweep, and the good order still reaches Commerce."""
    channel = subscribed
    channel.amazon("POST", "/_sandbox/notifications/faults", json={"duplicate_rate": 1.0, "other_seller_rate": 1.0})
    (order_id,) = new_orders(channel, 1, seed=42)
    first = receive(sqs, 3)  # the notification twice, and one about another seller's order
    channel.amazon("POST", "/_sandbox/notifications/faults", json={"malformed_rate": 1.0})
    (other_id,) = new_orders(channel, 1, seed=43)
    malformed = receive(sqs, 1)
    channel.amazon("POST", "/_sandbox/notifications/faults", json={})
    # A valid ORDER_CHANGE for our seller about an order Amazon does not know (SQS keeps what it is sent).
    ours = next(m for m in first if DEFAULT_SELLER_ID in m["Body"])
    unknown = {**ours, "MessageId": "unknown-order", "Body": ours["Body"].replace(order_id, UNKNOWN_ORDER)}

    states = run_with_events(channel, first, malformed + [unknown])
    assert {k: v for k, v in states.items() if v != "skipped"} == {
        "stage": "success",
        "accounts": "success",
        "account.fetch_load[0]": "success",
        "anything_changed": "success",
        "announce": "success",
        "decision_requests": "success",
    }
    assert result(channel, "stage") == {
        "received": 5,
        "staged": 2,
        "older_or_duplicate": 1,
        "ignored_other_seller": 1,
        "quarantined": 1,
    }
    fetched = result(channel, "account.fetch_load")
    assert (fetched["fetched"], fetched["not_found"], fetched["load"]["created"]) == (1, 1, 1)
    assert len(channel.commerce_orders_by_amazon_id()[order_id]) == 1
    assert other_id not in channel.commerce_orders_by_amazon_id()  # its only notification was malformed
    quarantined = open_quarantine(channel.store, "order_change_message")
    assert [q["entity_id"] for q in quarantined] == [malformed[0]["MessageId"]]
    assert quarantined[0]["reason"] in ("not JSON", "not an ORDER_CHANGE notification")

    # The unknown order is asked for again on later runs, then left to the polling sweep.
    for _ in range(MAX_NOT_FOUND - 1):
        assert run_with_events(channel)["account.fetch_load[0]"] == "success"
    assert events_of(channel)[UNKNOWN_ORDER]["state"] == "unknown"
    assert result(channel, "account.fetch_load")["unknown"] == 1


def test_an_older_notification_never_overwrites_a_newer_one(subscribed, sqs):
    channel = subscribed
    (order_id,) = new_orders(channel, 1, seed=44)
    created = receive(sqs, 1)
    channel.amazon(
        "POST", f"/_sandbox/orders/{order_id}/events", json={"type": "request_cancellation", "reason": "BuyerCanceled"}
    )
    requested = receive(sqs, 1)
    assert "BuyerRequestedChange" in requested[0]["Body"]

    run_with_events(channel, requested)  # the later change arrives first
    newer = events_of(channel)[order_id]
    assert run_with_events(channel, created)["stage"] == "success"
    assert result(channel, "stage") == {"received": 1, "older_or_duplicate": 1}
    row = events_of(channel)[order_id]
    assert (row["change_time"], row["notification_id"]) == (newer["change_time"], newer["notification_id"])
    assert row["change_type"] == "BuyerRequestedChange"


def test_a_buyer_request_notified_opens_its_decision_run_and_announces_the_orders(subscribed, sqs):
    """What follows the import's loads follows the event path's too: the order the buyer asked to cancel is held and
    its amazon_buyer_cancel_decision run opened by the same run (not by the next polling sweep), and orders it
    created or changed emit the Commerce-orders asset the shipment sync runs on."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from amazon_commerce_sync.constants import ASSET_COMMERCE_ORDERS, DAG_CANCEL_DECISION, cancel_decision_run_id

    channel = subscribed
    (order_id,) = new_orders(channel, 1, seed=45)
    states = run_with_events(channel, receive(sqs, 1))
    assert (states["announce"], states["request_decision"]) == ("success", "skipped"), states
    channel.amazon(
        "POST", f"/_sandbox/orders/{order_id}/events", json={"type": "request_cancellation", "reason": "BuyerCanceled"}
    )
    states = run_with_events(channel, receive(sqs, 1))
    assert states["announce"] == "success" and states["request_decision[0]"] == "success", states
    [commerce] = channel.commerce_orders_by_amazon_id()[order_id]
    assert commerce["state"] == "holded"
    account = json.loads(channel.settings_path.read_text())["accounts"][0]["account_id"]
    with create_session() as session:
        decisions = session.scalars(
            select(DagRun.run_id).where(
                DagRun.dag_id == DAG_CANCEL_DECISION, DagRun.run_id == cancel_decision_run_id(account, order_id)
            )
        ).all()
        announced = session.scalars(
            select(AssetModel.uri)
            .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
            .where(AssetEvent.source_run_id == channel.last_run.run_id, AssetEvent.source_task_id == "announce")
        ).all()
    assert len(decisions) == 1
    assert announced == [ASSET_COMMERCE_ORDERS]


def test_staged_ids_of_a_failed_or_killed_run_are_loaded_by_the_next_run(subscribed, sqs):
    channel = subscribed
    ids = new_orders(channel, 2, seed=45)
    messages = receive(sqs, 2)
    channel.amazon_faults(error_rate=1.0, error_statuses=[503], operations=["getOrder"])
    states = run_with_events(channel, messages)
    assert (states["stage"], states["account.fetch_load[0]"]) == ("success", "failed")
    assert {v["state"] for v in events_of(channel).values()} == {"new"}  # staged: nothing lost
    assert not set(ids) & set(channel.commerce_orders_by_amazon_id())
    channel.amazon_faults()

    # A worker killed while it held the ids: its lease runs out, then any run (the timetable's) takes them.
    events = OrderEvents(channel.store.engine, "tests")
    assert len(events.claim("us-main", "killed-worker", limit=10, lease_seconds=1)) == 2
    time.sleep(1.1)
    assert run_with_events(channel)["account.fetch_load[0]"] == "success"
    in_commerce = channel.commerce_orders_by_amazon_id()
    assert all(len(in_commerce.get(order_id, [])) == 1 for order_id in ids)
    assert {v["state"] for v in events_of(channel).values()} == {"done"}


def test_an_order_amazon_still_shows_older_waits_for_the_next_run(subscribed, sqs):
    """getOrder answering the version before the notified change (Amazon's replicas lag): not staged, not lost."""
    channel = subscribed
    (order_id,) = new_orders(channel, 1, seed=46)
    (message,) = receive(sqs, 1)
    body = json.loads(message["Body"])
    later = datetime.now(UTC) + timedelta(minutes=5)
    body["Payload"]["OrderChangeNotification"]["OrderChangeTrigger"]["TimeOfOrderChange"] = later.strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )
    assert run_with_events(channel, [{**message, "Body": json.dumps(body)}])["account.fetch_load[0]"] == "success"
    assert result(channel, "account.fetch_load")["deferred"] == 1
    assert events_of(channel)[order_id]["state"] == "new"
    assert order_id not in channel.commerce_orders_by_amazon_id()


def test_the_watchers_trigger_receives_reduces_and_deletes(subscribed, sqs):
    """OrderChangeTrigger.run() against the real queue: one TriggerEvent with the reduced batch, the messages
    deleted. Needs aiobotocore (the Amazon provider's async SQS client, the [aiobotocore] extra)."""
    import asyncio

    pytest.importorskip("aiobotocore")
    from amazon_commerce_sync.events import KEPT, OrderChangeTrigger

    ids = new_orders(subscribed, 2, seed=47)
    drain(subscribed.amazon_app.state.sandbox)  # both sent before the trigger's first receive
    trigger = OrderChangeTrigger(sqs.queue_url, max_messages=10, num_batches=2, wait_time_seconds=1, waiter_delay=1)

    async def first_event():
        return await asyncio.wait_for(anext(trigger.run()), timeout=60)

    event = asyncio.run(first_event())
    batch = event.payload["message_batch"]
    assert event.payload["status"] == "success"
    assert sorted(m["amazonOrderId"] for m in batch) == sorted(ids)
    assert all(set(m) == set(KEPT) and m["sellerId"] == DEFAULT_SELLER_ID for m in batch)
    assert sqs.receive_message(QueueUrl=sqs.queue_url, WaitTimeSeconds=1).get("Messages", []) == []
    classpath, kwargs = trigger.serialize()
    assert classpath == "amazon_commerce_sync.events.OrderChangeTrigger"
    assert OrderChangeTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_the_watchers_trigger_outlives_a_missing_queue_and_never_logs_a_body(sqs, capfd):
    """The queue unavailable (here: not created yet, SQS's NonExistentQueue): the trigger logs the failure by its
    kind only and receives again (it never raises, which would stop the watcher); once the queue exists, the
    message arrives as an event. The message body never reaches the log."""
    import asyncio
    import uuid

    pytest.importorskip("aiobotocore")
    from amazon_commerce_sync.events import OrderChangeTrigger

    name = f"order-change-late-{uuid.uuid4().hex[:8]}"
    missing_url = sqs.queue_url.rsplit("/", 1)[0] + "/" + name
    trigger = OrderChangeTrigger(missing_url, max_messages=10, wait_time_seconds=1, waiter_delay=1)
    body = "not json, with a postal code 98101-4321"

    async def scenario():
        first = asyncio.ensure_future(anext(trigger.run()))
        await asyncio.sleep(2.5)  # a few failed receives: the queue does not exist
        assert not first.done()
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        assert url == missing_url
        sqs.send_message(QueueUrl=url, MessageBody=body)
        return await asyncio.wait_for(first, timeout=60)

    event = asyncio.run(scenario())
    [message] = event.payload["message_batch"]
    assert message["quarantine"] and "98101" not in json.dumps(message)
    logged = "".join(capfd.readouterr())  # Airflow's structlog writes to the process's streams
    failures = [line for line in logged.splitlines() if "ORDER_CHANGE queue failed" in line]
    assert failures and all("NonExistentQueue" in line for line in failures), logged
    assert "98101" not in logged


def test_an_event_recorded_after_the_run_was_queued_is_staged_by_that_run(subscribed, sqs):
    """Airflow 3.3.2 gives an asset-triggered run the events up to its ``run_after`` and deletes the queue entry on
    creating it: an event recorded in between makes no run of its own and would wait for a later event's run. The
    run's stage also takes the events recorded after its ``run_after`` (its task's inlet), so the order arrives now."""
    channel = subscribed
    first, late = new_orders(channel, 1, seed=51), new_orders(channel, 1, seed=52)
    messages = receive(sqs, 2)
    by_order = {json.loads(m["Body"])["Payload"]["OrderChangeNotification"]["AmazonOrderId"]: m for m in messages}

    states = run_with_events(channel, [by_order[first[0]]], later=([by_order[late[0]]],))
    assert states["account.fetch_load[0]"] == "success"
    assert result(channel, "stage") == {"received": 2, "staged": 2}
    in_commerce = channel.commerce_orders_by_amazon_id()
    assert len(in_commerce.get(first[0], [])) == 1 and len(in_commerce.get(late[0], [])) == 1
