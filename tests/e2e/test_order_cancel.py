"""amazon_order_cancel end to end with dag.test() and run parameters, against both sandboxes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest

pytestmark = pytest.mark.e2e

DAG = "amazon_order_cancel"


@pytest.fixture(autouse=True)
def fast_poke(monkeypatch):
    monkeypatch.setenv("SALES_CHANNEL_FEED_POKE_SECONDS", "1")


def imported_orders(channel, count, *, seed, status="UNSHIPPED", also=(), **kw):
    """Merchant orders loaded into the Amazon sandbox and imported into Commerce (with ``also``, in one import)."""
    orders = channel.generated_orders(count, seed=seed, status=status, fulfilled_by="MERCHANT", **kw)
    channel.load_amazon_orders(orders + list(also))
    states = channel.run_dag("amazon_order_import")
    assert all(s in ("success", "skipped") for s in states.values()), states
    by_id = channel.commerce_orders_by_amazon_id()
    assert all(len(by_id.get(o["orderId"], [])) == 1 for o in [*orders, *also])
    return [o["orderId"] for o in orders]


def cancel(channel, ids=None, reason="BuyerCanceled", **params):
    conf = {"reason": reason, **params}
    if ids is not None:
        conf["amazon_order_ids"] = ids
    return channel.run_dag(DAG, conf=conf)


def xcom(channel, task_id, key="return_value"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    run = channel.last_run
    with create_session() as session:
        query = XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key=key)
        row = session.scalars(query).first()
        return XComModel.deserialize_value(row) if row is not None else None


def outcomes(channel) -> dict[str, tuple[str, str]]:
    summary = xcom(channel, "summary") or xcom(channel, "summary", key="summary")
    return {o["requested"]: (o["outcome"], o["detail"]) for o in summary["orders"]}


def amazon_feeds(channel):
    return channel.amazon("GET", "/_sandbox/feeds")["feeds"]


def feed_messages(channel) -> list[str]:
    """The Amazon order id of every cancellation message Amazon received, across all feeds."""
    out = []
    for feed in amazon_feeds(channel):
        assert feed["feedType"] == "POST_ORDER_ACKNOWLEDGEMENT_DATA"
        for message in feed["messages"]:
            out.append(message["body"]["AmazonOrderID"])
    return out


def commerce_order(channel, amazon_id):
    [order] = channel.commerce_orders_by_amazon_id()[amazon_id]
    return order


def comments(channel, order):
    return [h.get("comment") or "" for h in order.get("status_histories") or []]


def assert_cancelled_both_sides(channel, amazon_id, *, reason="BuyerCanceled", state="closed"):
    order = channel.amazon_order(amazon_id)
    assert order["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    assert {i["cancellation"]["cancellationExecution"]["cancelReason"] for i in order["orderItems"]} == {reason}
    commerce = commerce_order(channel, amazon_id)
    assert commerce["state"] == state
    texts = [c for c in comments(channel, commerce) if "amazon_order_cancel" in c]
    assert len(texts) == 1 and f"Reason: {reason}." in texts[0] and "Amazon feed:" in texts[0]
    return commerce


def _finish_feeds_after_a_reschedule(channel):
    """Keep Amazon processing the feed until ``wait_for_feeds`` has given its slot back once, then finish it.

    (Amazon's processing time, not the machine's speed, decides whether the sensor has to wait.)
    """
    from datetime import UTC, datetime

    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    started = datetime.now(UTC)
    query = (
        select(func.count())
        .select_from(TaskReschedule)
        .join(TaskInstance, TaskInstance.id == TaskReschedule.ti_id)
        .where(TaskInstance.dag_id == DAG, TaskInstance.task_id == "wait_for_feeds")
        .where(TaskReschedule.start_date >= started)
    )
    channel.amazon("POST", "/_sandbox/settings", json={"feed_stage_seconds": 100000})  # only /complete finishes it

    def rescheduled() -> bool:
        with create_session() as session:
            return bool(session.scalar(query))

    return _finish_feeds_when(channel, rescheduled, what="wait_for_feeds rescheduled")


def test_one_unshipped_order_is_cancelled_on_both_sides(channel, debug_logs, caplog, capfd):
    [order_id] = imported_orders(channel, 1, seed=101)
    thread, errors = _finish_feeds_after_a_reschedule(channel)
    debug_logs()
    states = cancel(channel, [order_id], note="Out of stock at the warehouse")
    thread.join(10)
    assert not errors, errors
    assert set(states.values()) == {"success"}, states
    commerce = assert_cancelled_both_sides(channel, order_id)
    assert any("Note: Out of stock at the warehouse." in c for c in comments(channel, commerce))
    # invoiced on import: refunded offline in full
    assert Decimal(str(commerce["total_refunded"])) == Decimal(str(commerce["grand_total"]))
    assert feed_messages(channel) == [order_id]
    [feed] = amazon_feeds(channel)
    assert feed["marketplaceIds"] == [channel.amazon_order(order_id)["salesChannel"]["marketplaceId"]]
    outcome, detail = outcomes(channel)[order_id]
    assert outcome == "cancelled"
    # the summary names the Commerce order by the number the merchant knows (increment id), not its entity id
    assert f"(order #{commerce['increment_id']})" in detail and f"order {commerce['entity_id']})" not in detail
    output = caplog.text + "".join(capfd.readouterr())
    assert "cancellation: 1 order: 1 cancelled on both sides" in output
    assert channel.store.orders.get(order_id)["sync_status"] == "canceled"
    assert reschedules(channel, "wait_for_feeds") >= 1  # the wait gave its worker slot back between pokes


def test_invoiced_cad_order_on_a_usd_store_is_refunded_offline_in_full(channel):
    """Magento reads the credit memo's shipping_amount in the base currency: the cancel sends the base shipping
    left, so every amount comes back in both currencies (USD store, USD→CAD 1.35)."""
    [order_id] = imported_orders(channel, 1, seed=141, marketplace_ids=["A2EUQ1WTGCTBG2"])
    before = commerce_order(channel, order_id)
    assert (before["order_currency_code"], before["base_currency_code"]) == ("CAD", "USD")
    assert Decimal(str(before["base_to_order_rate"])) == Decimal("1.35")
    assert (
        Decimal(str(before["shipping_invoiced"])) > 0
        and before["base_shipping_invoiced"] != before["shipping_invoiced"]
    )
    states = cancel(channel, [order_id])
    assert set(states.values()) == {"success"}, states
    commerce = assert_cancelled_both_sides(channel, order_id)
    assert outcomes(channel)[order_id][0] == "cancelled"
    [memo] = channel.commerce_app.state.sandbox.creditmemos.values()
    money = {k: Decimal(str(commerce[k])) for k in commerce if k.endswith(("_paid", "_refunded", "shipping_amount"))}
    for prefix in ("", "base_"):
        assert (
            money[f"{prefix}total_refunded"]
            == money[f"{prefix}total_paid"]
            == Decimal(str(memo[f"{prefix}grand_total"]))
        )
        assert money[f"{prefix}shipping_refunded"] == money[f"{prefix}shipping_amount"]
        assert Decimal(str(memo[f"{prefix}shipping_amount"])) == money[f"{prefix}shipping_amount"]


def reschedules(channel, task_id) -> int:
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    run = channel.last_run
    [ti] = [t for t in run.get_task_instances() if t.task_id == task_id]
    with create_session() as session:
        return session.scalar(select(func.count()).select_from(TaskReschedule).where(TaskReschedule.ti_id == ti.id))


def test_several_unshipped_orders_go_in_one_feed_and_stock_comes_back(channel):
    channel.configure(invoice_on_import=False, marketplace_ids=["ATVPDKIKX0DER"])
    orders = channel.generated_orders(
        3, seed=111, status="UNSHIPPED", fulfilled_by="MERCHANT", marketplace_ids=["ATVPDKIKX0DER"]
    )
    channel.load_amazon_orders(orders)
    assert set(channel.run_dag("amazon_order_import").values()) <= {"success", "skipped"}
    ids = [o["orderId"] for o in orders]
    stock = channel.commerce_app.state.sandbox.source_items
    assert any(Decimal(str(s["quantity"])) < 1000 for s in stock.values())

    states = cancel(channel, ids, reason="NoInventory")
    assert set(states.values()) == {"success"}, states
    for order_id in ids:
        assert_cancelled_both_sides(channel, order_id, reason="NoInventory", state="canceled")
    [feed] = amazon_feeds(channel)
    assert sorted(m["body"]["AmazonOrderID"] for m in feed["messages"]) == sorted(ids)
    assert all(Decimal(str(s["quantity"])) == 1000 for s in stock.values())  # every unit back in stock
    assert {k: v[0] for k, v in outcomes(channel).items()} == dict.fromkeys(ids, "cancelled")


def test_mixed_orders_each_get_their_outcome_and_the_run_fails_naming_them(channel):
    shipped_order = channel.generated_orders(1, seed=122, status="SHIPPED", fulfilled_by="MERCHANT")
    unshipped, cancelled_on_amazon, partly = imported_orders(channel, 3, seed=121, also=shipped_order)
    shipped = shipped_order[0]["orderId"]
    item = channel.amazon_order(partly)["orderItems"][0]
    package = {
        "carrier": "UPS",
        "trackingNumber": "1Z1",
        "items": [{"orderItemId": item["orderItemId"], "quantity": 1}],
    }
    channel.amazon_event(partly, {"type": "ship", "packages": [package]})
    channel.amazon_event(cancelled_on_amazon, {"type": "cancel", "by": "AMAZON"})
    pending = channel.generated_orders(1, seed=124, status="PENDING", fulfilled_by="MERCHANT")
    channel.load_amazon_orders(pending)
    unknown = "111-2222222-3333333"
    requested = [unshipped, cancelled_on_amazon, shipped, partly, pending[0]["orderId"], unknown]

    states = cancel(channel, requested)
    assert states["request"] == states["wait_for_feeds"] == states["confirm"] == "success"
    assert states["summary"] == "failed"
    result = outcomes(channel)
    assert result[unshipped][0] == "cancelled"
    assert result[cancelled_on_amazon][0] == "already_cancelled"
    assert result[shipped] == ("shipped", "SHIPPED on Amazon: cannot be cancelled; issue a refund instead")
    expected_partly = channel.amazon_order(partly)["fulfillment"]["fulfillmentStatus"]
    assert result[partly] == ("shipped", f"{expected_partly} on Amazon: cannot be cancelled; issue a refund instead")
    assert result[pending[0]["orderId"]][0] == "not_cancellable"
    assert result[unknown][0] == "not_found"
    # only the unshipped order was sent, and both sides agree
    assert feed_messages(channel) == [unshipped]
    assert_cancelled_both_sides(channel, unshipped)
    assert commerce_order(channel, cancelled_on_amazon)["state"] == "closed"  # the import's job, done once here
    assert commerce_order(channel, shipped)["state"] == "complete"
    assert channel.amazon_order(partly)["fulfillment"]["fulfillmentStatus"] != "CANCELLED"


def test_orders_of_another_account_or_commerce_numbers(channel):
    us_order = channel.generated_orders(
        1, seed=131, status="UNSHIPPED", fulfilled_by="MERCHANT", marketplace_ids=["ATVPDKIKX0DER"]
    )
    [ca_id] = imported_orders(channel, 1, seed=132, also=us_order, marketplace_ids=["A2EUQ1WTGCTBG2"])
    us = us_order[0]["orderId"]
    channel.configure(marketplace_ids=["ATVPDKIKX0DER"])  # the account no longer sells in Canada
    number = commerce_order(channel, us)["increment_id"]
    states = channel.run_dag(DAG, conf={"commerce_order_numbers": [number, "999999999"], "reason": "GeneralAdjustment"})
    assert states["summary"] == "failed"
    result = outcomes(channel)
    assert result[number][0] == "cancelled"
    assert result["999999999"] == ("not_found", "no Amazon order is mapped to Commerce order number 999999999")
    assert_cancelled_both_sides(channel, us, reason="GeneralAdjustment")

    states = cancel(channel, [ca_id])
    assert states["summary"] == "failed"
    outcome, detail = outcomes(channel)[ca_id]
    assert outcome == "other_account" and "A2EUQ1WTGCTBG2" in detail
    assert channel.amazon_order(ca_id)["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    assert feed_messages(channel) == [us]


def test_dry_run_submits_nothing(channel):
    ids = imported_orders(channel, 2, seed=141)
    states = cancel(channel, ids, dry_run=True)
    assert set(states.values()) == {"success"}, states
    assert amazon_feeds(channel) == []
    assert channel.store.outbox.entries() == []
    assert {k: v[0] for k, v in outcomes(channel).items()} == dict.fromkeys(ids, "would_cancel")
    for order_id in ids:
        assert channel.amazon_order(order_id)["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
        assert commerce_order(channel, order_id)["state"] == "processing"


def _finish_feeds_when(channel, ready, action=None, *, what: str):
    """In a thread: as soon as ``ready()``, run ``action(first feed)``, then finish the feeds Amazon has."""
    errors: list[BaseException] = []

    def watch():
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if ready():
                    found = amazon_feeds(channel)
                    if action is not None:
                        action(found[0])
                    for feed in found:
                        channel.amazon("POST", f"/_sandbox/feeds/{feed['feedId']}/complete")
                    return
                time.sleep(0.05)
            raise AssertionError(f"never happened: {what}")
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, errors


def _on_first_feed(channel, action):
    """Run ``action(feed)`` in a thread as soon as the sandbox has received a feed, then finish that feed."""
    return _finish_feeds_when(channel, lambda: bool(amazon_feeds(channel)), action, what="a feed was submitted")


def test_report_rejecting_one_order(channel):
    kept, shipped_meanwhile = imported_orders(channel, 2, seed=151)
    channel.amazon("POST", "/_sandbox/settings", json={"feed_stage_seconds": 100000})  # only /complete finishes it
    thread, errors = _on_first_feed(channel, lambda feed: channel.amazon_event(shipped_meanwhile, {"type": "ship"}))
    states = cancel(channel, [kept, shipped_meanwhile])
    thread.join(10)
    assert not errors, errors
    assert states["confirm"] == "success" and states["summary"] == "failed"
    result = outcomes(channel)
    assert result[kept][0] == "cancelled"
    outcome, detail = result[shipped_meanwhile]
    assert outcome == "rejected" and "rejected the cancellation" in detail and "cannot be cancelled" in detail
    assert_cancelled_both_sides(channel, kept)
    commerce = commerce_order(channel, shipped_meanwhile)
    assert commerce["state"] == "processing" and not any(
        "amazon_order_cancel" in c for c in comments(channel, commerce)
    )
    assert channel.store.outbox.get(f"cancel:{shipped_meanwhile}")["status"] == "rejected"


def test_second_trigger_for_an_order_in_flight_submits_nothing(channel):
    [order_id] = imported_orders(channel, 1, seed=161)
    channel.amazon("POST", "/_sandbox/settings", json={"feed_stage_seconds": 100000})
    second: dict = {}

    def trigger_again(feed):
        # What the second run's first task does while the first run's feed is in flight. It runs in a process of
        # its own, as a second run's task would: a thread of this process would share Airflow's task-runner
        # channel with the in-process dag.test() task, which removes it when that task ends.
        code = (
            "import json, sys\n"
            "from amazon_commerce_sync.cancel_request import parse_request\n"
            "from amazon_commerce_sync.pipelines import order_cancel\n"
            "from amazon_commerce_sync.resources import open_resources\n"
            "ctx = open_resources('test/second-trigger')\n"
            "request = parse_request({'amazon_order_ids': [sys.argv[1]], 'reason': 'BuyerCanceled'})\n"
            "result = order_cancel.request_cancellations(ctx, ctx.settings.accounts[0], request)\n"
            "print(json.dumps(result, default=str))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, order_id], capture_output=True, text=True, timeout=120, env=dict(os.environ)
        )
        assert done.returncode == 0, done.stderr[-2000:]
        second.update(json.loads(done.stdout.strip().splitlines()[-1]))

    thread, errors = _on_first_feed(channel, trigger_again)
    states = cancel(channel, [order_id])
    thread.join(10)
    assert not errors, errors
    assert set(states.values()) == {"success"}, states
    [record] = second["orders"]
    assert record["outcome"] == "requested" and "already in flight" in record["detail"]
    assert second["feed_ids"] == [amazon_feeds(channel)[0]["feedId"]]  # it follows the first run's feed

    # a later trigger finds it cancelled: a success with nothing sent
    states = cancel(channel, [order_id])
    assert set(states.values()) == {"success"}, states
    assert outcomes(channel)[order_id][0] == "already_cancelled"
    assert feed_messages(channel) == [order_id]
    assert_cancelled_both_sides(channel, order_id)
    assert len(channel.commerce_app.state.sandbox.creditmemos) == 1


def _until_success(channel, ids, attempts=8, **params):
    for _ in range(attempts):
        states = cancel(channel, ids, **params)
        if set(states.values()) == {"success"}:
            return states
    raise AssertionError(f"the run never succeeded: {states}")


def test_amazon_5xx_and_commerce_commit_then_fail_still_cancel_once(channel):
    channel.configure(concurrency=1)
    ids = imported_orders(channel, 3, seed=171)
    channel.amazon_faults(error_rate=0.35, seed=5)
    channel.commerce_faults(
        fail_next=[
            {"route": "POST /V1/order/*/refund", "kind": "commit_then_fail", "count": 2},
            {"route": "POST /V1/orders/*/comments", "kind": "commit_then_fail", "count": 2},
        ]
    )
    states = cancel(channel, ids)
    if set(states.values()) != {"success"}:
        _until_success(channel, ids)
    channel.amazon_faults()
    stats = channel.amazon("GET", "/_sandbox/stats")["operations"]
    assert sum(v.get("faults", 0) for v in stats.values()) > 0  # the faults did happen
    assert sorted(feed_messages(channel)) == sorted(ids)
    for order_id in ids:
        assert_cancelled_both_sides(channel, order_id)
    memos = channel.commerce_app.state.sandbox.creditmemos
    assert sorted(m["order_id"] for m in memos.values()) == sorted(
        int(commerce_order(channel, i)["entity_id"]) for i in ids
    )


def test_commerce_cancel_commit_then_fail_and_amazon_throttling(channel):
    channel.configure(invoice_on_import=False)
    ids = imported_orders(channel, 2, seed=181)
    channel.commerce_faults(fail_next=[{"route": "POST /V1/orders/*/cancel", "kind": "commit_then_fail", "count": 2}])
    # Amazon's getOrder bucket is empty: the first run's reads are throttled (429) past the retry budget
    channel.amazon("POST", "/_sandbox/settings", json={"speed": 0.01})
    token = channel.amazon(
        "POST",
        "/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "sandbox-refresh-token",
            "client_id": "sandbox-client-id",
            "client_secret": "sandbox-client-secret",
        },
    )["access_token"]
    import requests

    for _ in range(40):
        requests.get(
            f"{channel.amazon_url}/orders/2026-01-01/orders/{ids[0]}", headers={"x-amz-access-token": token}, timeout=10
        )
    states = cancel(channel, ids)
    assert states["summary"] == "failed"
    for outcome, detail in outcomes(channel).values():
        assert outcome == "error" and "could not read the order" in detail and "QuotaExceeded" in detail, detail
    assert channel.amazon("GET", "/_sandbox/stats")["operations"]["getOrder"]["throttled"] > 0
    assert amazon_feeds(channel) == []
    channel.amazon("POST", "/_sandbox/settings", json={"speed": 100})
    _until_success(channel, ids)
    assert sorted(feed_messages(channel)) == sorted(ids)
    for order_id in ids:
        assert_cancelled_both_sides(channel, order_id, state="canceled")


def test_invalid_parameters_are_rejected_and_nothing_is_sent(channel, capfd):
    from airflow.sdk.exceptions import ParamValidationError

    [order_id] = imported_orders(channel, 1, seed=191)
    # what the form's schema catches never becomes a run
    for bad in (
        {"amazon_order_ids": ["123-45"]},
        {"amazon_order_ids": []},
        {"reason": "Bored"},
        {"amazon_order_ids": [order_id] * 2},
        {"note": "x" * 501},
    ):
        with pytest.raises(ParamValidationError):
            channel.run_dag(DAG, conf={"amazon_order_ids": [order_id], "reason": "BuyerCanceled", **bad})
    # what it cannot express, the task rejects with a message; the summary fails too
    for bad, message in (
        ({"amazon_order_ids": None}, "give the orders to cancel"),
        ({"account_id": "eu-other"}, "no account 'eu-other'"),
    ):
        states = channel.run_dag(DAG, conf={"amazon_order_ids": [order_id], "reason": "BuyerCanceled", **bad})
        assert states["request"] == "failed" and states["summary"] == "failed", states
        assert states["confirm"] == "upstream_failed"
        captured = capfd.readouterr()
        assert message in captured.out + captured.err  # the task's log names the problem
    assert amazon_feeds(channel) == [] and channel.store.outbox.entries() == []
    assert channel.amazon_order(order_id)["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
