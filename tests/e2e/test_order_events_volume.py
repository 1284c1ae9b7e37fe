"""amazon_order_events under volume (issue 16, "Adaptive volume"): a burst of more changed orders than getOrder can
fetch before the next searchOrders token is read with searchOrders pages beside getOrder; a small burst, and
anything changed within searchOrders' last 2 minutes, with getOrder alone; an order Amazon keeps showing older than
its notification is staged as shown after ``MAX_DEFERRALS`` deferrals. Real sandboxes (Amazon at speed 100 with
``rate_scale`` 100, so both operations' buckets are Amazon's scaled alike), moto SQS, dag.test()."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from amazon_commerce_sync import fetch_loads
from amazon_commerce_sync.pipelines import order_events
from tests.e2e import test_order_events as events_tests

pytestmark = pytest.mark.e2e

amazon_sandbox = events_tests.amazon_sandbox
sqs = events_tests.sqs
subscribed = events_tests.subscribed
receive, run_with_events, result, events_of = (
    events_tests.receive,
    events_tests.run_with_events,
    events_tests.result,
    events_tests.events_of,
)
GETORDER_BURST = 30  # Amazon's getOrder burst (hooks/operations.py); the client keeps one token back


def changed_orders(channel, count: int, seed: int, age: timedelta) -> tuple[list[str], datetime]:
    """Merchant-fulfilled unshipped orders last updated ``age`` ago (each publishes one ORDER_CHANGE)."""
    when = (datetime.now(UTC) - age).replace(microsecond=0)
    orders = channel.generated_orders(count, seed=seed, age=age, status="UNSHIPPED", fulfilled_by="MERCHANT")
    for order in orders:
        order["lastUpdatedTime"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return channel.load_amazon_orders(orders), when


def changed_at(messages: list[dict], when: datetime) -> list[dict]:
    """The messages with ``TimeOfOrderChange`` = ``when``: the sandbox dates a loaded order's notification at the
    load, these say the change happened when the order's ``lastUpdatedTime`` says (ids still waiting to be fetched
    ``age`` later, as in a backlog)."""
    out = []
    for message in messages:
        body = json.loads(message["Body"])
        trigger = body["Payload"]["OrderChangeNotification"]["OrderChangeTrigger"]
        trigger["TimeOfOrderChange"] = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        out.append({**message, "Body": json.dumps(body)})
    return out


def amazon_stats(channel) -> dict[str, dict[str, int]]:
    return channel.amazon("GET", "/_sandbox/stats")["operations"]


@pytest.fixture
def get_order_ids(channel, monkeypatch) -> list[str]:
    """The order ids the Amazon sandbox answered getOrder for (a recorder around its own look-up)."""
    state = channel.amazon_app.state.sandbox
    asked: list[str] = []
    look_up = state.order_record

    def recording(order_id, seller_id=None):
        asked.append(order_id)
        return look_up(order_id, seller_id)

    monkeypatch.setattr(state, "order_record", recording)
    return asked


def assert_each_in_commerce_once(channel, ids: list[str]) -> None:
    in_commerce = channel.commerce_orders_by_amazon_id()
    assert {order_id: len(in_commerce.get(order_id, [])) for order_id in ids} == dict.fromkeys(ids, 1)


def test_a_burst_is_fetched_by_search_pages_and_getorder_together(subscribed, sqs, get_order_ids):
    channel = subscribed
    count = 3 * GETORDER_BURST
    ids, when = changed_orders(channel, count, seed=51, age=timedelta(minutes=5))
    messages = changed_at(receive(sqs, count, timeout=60), when)

    states = run_with_events(channel, messages)
    assert states["account.fetch_load[0]"] == "success", states
    fetched = result(channel, "account.fetch_load")
    assert fetched["searched_pages"] >= 1 and fetched["covered_by_search"] >= 1, fetched
    assert fetched["fetched"] >= 1, fetched  # getOrder worked beside the pages
    assert fetched["fetched"] + fetched["covered_by_search"] == count, fetched
    assert "search_failed" not in fetched, fetched
    assert fetched["load"]["created"] == count
    assert_each_in_commerce_once(channel, ids)
    assert {v["state"] for v in events_of(channel).values()} == {"done"}

    stats = amazon_stats(channel)
    assert stats["searchOrders"]["requests"] == fetched["searched_pages"]
    assert stats["getOrder"]["requests"] == fetched["fetched"] == len(get_order_ids)
    assert not set(get_order_ids) - set(ids)
    assert (stats["searchOrders"]["throttled"], stats["getOrder"]["throttled"]) == (0, 0)


def test_a_burst_reaches_commerce_while_it_is_fetched(subscribed, sqs, monkeypatch):
    """The run loads every LOAD_EVERY staged orders from its getOrder loop (not only after the whole backlog);
    the loads' counts add up in the task's result and each order is created once."""
    channel = subscribed
    monkeypatch.setattr(fetch_loads, "LOAD_EVERY", 20)
    count = 3 * GETORDER_BURST
    ids, when = changed_orders(channel, count, seed=57, age=timedelta(minutes=5))
    messages = changed_at(receive(sqs, count, timeout=60), when)

    assert run_with_events(channel, messages)["account.fetch_load[0]"] == "success"
    fetched = result(channel, "account.fetch_load")
    assert fetched["loads_during_fetch"] >= 1, fetched  # a page of 86 (search) or batches of getOrder
    assert "loaded_during_fetch" not in fetched
    assert fetched["load"]["created"] == count, fetched
    assert_each_in_commerce_once(channel, ids)


def test_a_small_burst_uses_getorder_alone(subscribed, sqs):
    channel = subscribed
    ids, when = changed_orders(channel, 5, seed=52, age=timedelta(minutes=5))
    messages = changed_at(receive(sqs, 5), when)

    assert run_with_events(channel, messages)["account.fetch_load[0]"] == "success"
    fetched = result(channel, "account.fetch_load")
    assert (fetched["fetched"], fetched["searched_pages"], fetched["covered_by_search"]) == (5, 0, 0), fetched
    assert "searchOrders" not in amazon_stats(channel)
    assert_each_in_commerce_once(channel, ids)


def test_orders_changed_within_the_last_two_minutes_are_fetched_by_getorder(subscribed, sqs, get_order_ids):
    """searchOrders cannot show the last 2 minutes (lastUpdatedBefore, the Orders model): those ids go to getOrder even
    when the run searches for the older ones."""
    channel = subscribed
    older, when = changed_orders(channel, 2 * GETORDER_BURST, seed=53, age=timedelta(minutes=5))
    messages = changed_at(receive(sqs, len(older), timeout=60), when)
    recent = events_tests.new_orders(channel, 3, seed=54)  # changed now, notified now
    messages += receive(sqs, 3)

    assert run_with_events(channel, messages)["account.fetch_load[0]"] == "success"
    fetched = result(channel, "account.fetch_load")
    assert fetched["searched_pages"] >= 1 and "search_failed" not in fetched, fetched
    assert fetched["fetched"] + fetched["covered_by_search"] == len(older) + 3, fetched
    assert set(recent) <= set(get_order_ids)
    assert len(get_order_ids) == fetched["fetched"]  # so none of them was also covered by a page
    assert_each_in_commerce_once(channel, older + recent)


def test_an_order_amazon_keeps_showing_older_is_staged_as_shown_after_the_deferral_limit(subscribed, sqs, monkeypatch):
    channel = subscribed
    monkeypatch.setattr(order_events, "STALE_RETRY_SECONDS", 0)  # ask again at the next run, not a minute later
    (order_id,) = events_tests.new_orders(channel, 1, seed=55)
    later = datetime.now(UTC) + timedelta(minutes=5)  # a change Amazon never shows
    (message,) = changed_at(receive(sqs, 1), later)

    assert run_with_events(channel, [message])["account.fetch_load[0]"] == "success"
    for tries in range(1, order_events.MAX_DEFERRALS + 1):
        if tries > 1:
            assert run_with_events(channel)["account.fetch_load[0]"] == "success"
        assert result(channel, "account.fetch_load")["deferred"] == 1
        assert events_of(channel)[order_id]["deferrals"] == tries
    assert order_id not in channel.commerce_orders_by_amazon_id()

    assert run_with_events(channel)["account.fetch_load[0]"] == "success"
    fetched = result(channel, "account.fetch_load")
    assert (fetched["stale_given_up"], fetched.get("deferred", 0)) == (1, 0), fetched
    assert events_of(channel)[order_id]["state"] == "stale"
    assert_each_in_commerce_once(channel, [order_id])  # as Amazon shows it; the sweep brings the later change
    assert run_with_events(channel)["account.fetch_load[0]"] == "success"
    assert result(channel, "account.fetch_load").get("fetched", 0) == 0  # left to the sweep: not asked again


def test_failing_search_pages_leave_every_id_to_getorder(subscribed, sqs):
    """The pages are a shortcut: searchOrders failing (503 after the retries) is counted, getOrder fetches all."""
    channel = subscribed
    count = GETORDER_BURST + 10
    ids, when = changed_orders(channel, count, seed=56, age=timedelta(minutes=5))
    messages = changed_at(receive(sqs, count, timeout=60), when)
    channel.amazon_faults(error_rate=1.0, error_statuses=[503], operations=["searchOrders"])

    assert run_with_events(channel, messages)["account.fetch_load[0]"] == "success"
    fetched = result(channel, "account.fetch_load")
    assert (fetched["search_failed"], fetched["searched_pages"], fetched["fetched"]) == (1, 0, count), fetched
    assert amazon_stats(channel)["searchOrders"]["faults"] >= 1
    assert_each_in_commerce_once(channel, ids)


def test_ids_passing_the_two_minute_line_during_a_run_are_searched_from_then_on(channel):
    """A fresh burst cannot be searched (searchOrders shows nothing of the last 2 minutes); once getOrder has
    worked long enough for its ids to pass that line, the next decision reads them with searchOrders pages. Called
    as the task and the benchmark call it (``order_events.fetch_orders``), getOrder slowed by the sandbox."""
    from amazon_commerce_sync.resources import open_resources
    from amazon_commerce_sync.store.order_events import OrderEvents

    count, lead = 100, timedelta(seconds=8)
    ids, when = changed_orders(channel, count, seed=57, age=order_events.SEARCH_MIN_AGE - lead)
    ctx = open_resources("tests")
    account = ctx.settings.accounts[0]
    staged_ids = [
        {
            "account_id": account.account_id,
            "amazon_order_id": order_id,
            "change_time": when,
            "notification_id": f"n-{order_id}",
            "change_type": "OrderStatusChange",
        }
        for order_id in ids
    ]
    OrderEvents(ctx.store.engine, "tests").stage(staged_ids)
    channel.amazon_faults(latency_ms=150, operations=["getOrder"])  # 100 getOrder: 15 s, past the 2-minute line
    staged: list[dict] = []

    fetched = order_events.fetch_orders(
        ctx, account, owner="tests", included_data=("BUYER", "RECIPIENT"), stage_page=staged.extend
    )
    assert datetime.now(UTC) - when > order_events.SEARCH_MIN_AGE
    assert fetched["searched_pages"] >= 1 and fetched["covered_by_search"] >= 1, fetched
    assert fetched["fetched"] >= order_events.SHARED_CLAIM_BATCH, fetched  # getOrder alone at first
    assert fetched["fetched"] + fetched["covered_by_search"] == count, fetched
    assert {o["orderId"] for o in staged} == set(ids)
    ctx.store.engine.dispose()
