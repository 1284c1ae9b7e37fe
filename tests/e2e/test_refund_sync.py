"""amazon_refund_sync end to end with dag.test(), against both sandboxes.

Orders are generated on Amazon, imported (and invoiced) by amazon_order_import, shipped on
Amazon (Amazon refunds only shipped orders); credit memos are made through Commerce's REST API.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.store_queries import audit_entries, open_quarantine

pytestmark = pytest.mark.e2e

DAG = "amazon_refund_sync"


def assert_success(states):
    failed = {k: v for k, v in states.items() if v not in ("success", "skipped")}
    assert not failed, failed


def imported_orders(channel, count, *, seed, **kw):
    orders = channel.generated_orders(count, seed=seed, status="UNSHIPPED", fulfilled_by="MERCHANT", **kw)
    channel.load_amazon_orders(orders)
    assert_success(channel.run_dag("amazon_order_import"))
    for order in orders:
        channel.amazon_event(order["orderId"], {"type": "ship"})
    return orders


def commerce_order(channel, amazon_order_id):
    [order] = channel.commerce_orders_by_amazon_id()[amazon_order_id]
    return order


def item_ids(order):
    return {i["ext_order_item_id"]: int(i["item_id"]) for i in order["items"]}


def hook():
    from amazon_commerce_sync.hooks.commerce import CommerceHook

    return CommerceHook("commerce")


def credit_memo(channel, amazon_order_id, items=None, *, shipping="0", **kw):
    """A credit memo made in Commerce: ``items`` {amazon item id: qty} (None: every item, all of it);
    ``shipping`` in the store's base currency, as Magento reads it."""
    order = commerce_order(channel, amazon_order_id)
    ids = item_ids(order)
    if items is None:
        lines = [
            {"order_item_id": int(o["item_id"]), "qty": int(Decimal(str(o["qty_ordered"])))} for o in order["items"]
        ]
    else:
        lines = [{"order_item_id": ids[code], "qty": qty} for code, qty in items.items()]
    return hook().refund_order(int(order["entity_id"]), lines, shipping_amount=Decimal(shipping), **kw)


def all_memos(channel, commerce_order_id=None):
    memos = channel.commerce("GET", "/_sandbox/state")["creditmemos"]
    memos = memos.values() if isinstance(memos, dict) else memos
    return [m for m in memos if commerce_order_id is None or int(m["order_id"]) == int(commerce_order_id)]


def memo(channel, memo_id):
    return next(m for m in all_memos(channel) if int(m["entity_id"]) == int(memo_id))


def feed_refunds(channel, order_id=None):
    refunds = channel.amazon("GET", "/_sandbox/refunds")["refunds"]
    return [r for r in refunds if r["source"] == "feed" and (order_id is None or r["orderId"] == order_id)]


def adjustment_messages(channel):
    feeds = [
        f for f in channel.amazon("GET", "/_sandbox/feeds")["feeds"] if f["feedType"] == "POST_PAYMENT_ADJUSTMENT_DATA"
    ]
    return feeds, [m for f in feeds for m in f["messages"]]


def finish_feeds(channel):
    for feed in channel.amazon("GET", "/_sandbox/feeds")["feeds"]:
        if feed["status"] not in ("DONE", "CANCELLED", "FATAL"):
            channel.amazon("POST", f"/_sandbox/feeds/{feed['feedId']}/complete")


def age_amazon_refunds(channel, seconds=300):
    """Finances shows events posted at least 2 minutes ago: move the sandbox's refunds back in time."""
    from sandboxes.amazon.util import iso

    state = channel.amazon_app.state.sandbox
    with state.lock:
        for refund in state.refunds:
            if refund["postedAt"] > time.time() - 150:
                refund["postedAt"] -= seconds
                refund["postedDate"] = iso(refund["postedAt"])


def run_and_settle(channel):
    """One run that submits, the feed finishes on Amazon, a second run that settles."""
    assert_success(channel.run_dag(DAG))
    finish_feeds(channel)
    assert_success(channel.run_dag(DAG))
    return channel.last_run


def outbox(channel, memo_id):
    return channel.store.outbox.get(f"refund:{memo_id}")


def components(refund_item):
    return {c["type"]: Decimal(c["amount"]) for c in refund_item["components"]}


def summary_of(channel):
    """The summary task's return value (the run's counts)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=channel.last_run.run_id, dag_ids=DAG, task_ids="summary", key="return_value")
        ).first()
        return XComModel.deserialize_value(row)


def test_full_and_partial_refunds_with_shipping_and_tax_one_feed(channel):
    full, partial = imported_orders(channel, 2, seed=101)
    full_memo = credit_memo(
        channel, full["orderId"], None, shipping=str(commerce_order(channel, full["orderId"])["base_shipping_amount"])
    )
    first_item = partial["orderItems"][0]["orderItemId"]
    partial_memo = credit_memo(channel, partial["orderId"], {first_item: 1})

    run_and_settle(channel)

    feeds, messages = adjustment_messages(channel)
    assert len(feeds) == 1 and len(messages) == 2  # both adjustments in ONE feed
    for memo_id in (full_memo, partial_memo):
        assert outbox(channel, memo_id)["status"] == "accepted"

    # full refund: everything the buyer paid, per item, adds up to the credit memo to the cent
    [refund] = feed_refunds(channel, full["orderId"])
    assert sum(sum(components(i).values()) for i in refund["items"]) == Decimal(
        str(memo(channel, full_memo)["grand_total"])
    )
    assert Decimal(full["proceeds"]["grandTotal"]["amount"]) == Decimal(str(memo(channel, full_memo)["grand_total"]))
    kinds = {k for i in refund["items"] for k in components(i)}
    assert {"Principal", "Tax", "Shipping", "ShippingTax"} <= kinds
    assert all(i["merchantAdjustmentItemId"].startswith(f"cm{full_memo}-") for i in refund["items"])
    assert all(i["adjustmentReason"] == "CustomerReturn" for i in refund["items"])

    # partial refund: one item, Principal + Tax only
    [refund] = feed_refunds(channel, partial["orderId"])
    [item] = refund["items"]
    assert item["orderItemId"] == first_item
    partial_doc = memo(channel, partial_memo)
    assert set(components(item)) == {"Principal", "Tax"}
    assert sum(components(item).values()) == Decimal(str(partial_doc["grand_total"]))

    # the refunds come back through Finances: recognised as ours, never mirrored to Commerce; matched on
    # order, item and amounts (real Amazon has no MerchantAdjustmentItemId there: drop the sandbox's echo)
    state = channel.amazon_app.state.sandbox
    with state.lock:
        for refund in state.refunds:
            for line in refund["items"]:
                line.pop("merchantAdjustmentItemId", None)
    age_amazon_refunds(channel)
    memos_before = len(all_memos(channel))
    assert_success(channel.run_dag(DAG))
    assert len(all_memos(channel)) == memos_before
    summary = summary_of(channel)
    assert summary["recognised_own"] == 2 and summary["mirrored"] == 0, summary
    # nothing was sent twice
    _, messages = adjustment_messages(channel)
    assert len(messages) == 2 and len(feed_refunds(channel)) == 2


def test_amazon_side_refund_is_mirrored_once_and_not_sent_back(channel):
    [order] = imported_orders(channel, 1, seed=111)
    item = order["orderItems"][0]
    channel.amazon_event(
        order["orderId"],
        {
            "type": "refund",
            "items": [
                {
                    "orderItemId": item["orderItemId"],
                    "components": [{"type": "Principal", "amount": "5.00"}, {"type": "Tax", "amount": "0.50"}],
                }
            ],
        },
    )
    channel.amazon_event(order["orderId"], {"type": "refund"})  # then everything that is left
    age_amazon_refunds(channel)

    assert_success(channel.run_dag(DAG))
    commerce = commerce_order(channel, order["orderId"])
    memos = all_memos(channel, commerce["entity_id"])
    assert len(memos) == 2
    totals = sorted(Decimal(str(m["grand_total"])) for m in memos)
    amazon_refunds = channel.amazon("GET", "/_sandbox/refunds")["refunds"]
    expected = sorted(sum(Decimal(c["amount"]) for i in r["items"] for c in i["components"]) for r in amazon_refunds)
    assert totals == expected
    assert sum(totals) == Decimal(order["proceeds"]["grandTotal"]["amount"])
    comments = [c["comment"] for c in hook().get_order_comments(int(commerce["entity_id"]))]
    assert sum("Amazon refund of" in c for c in comments) == 2
    assert summary_of(channel)["mirrored"] == 2

    # a rerun mirrors nothing again, and the mirrored memos are never sent to Amazon
    assert_success(channel.run_dag(DAG))
    assert_success(channel.run_dag(DAG))
    memos_after = all_memos(channel, commerce["entity_id"])
    assert len(memos_after) == 2
    assert adjustment_messages(channel)[1] == []
    assert sum("Amazon refund of" in c["comment"] for c in hook().get_order_comments(int(commerce["entity_id"]))) == 2


def test_over_refund_caught_before_sending_and_feed_rejecting_one_message(channel):
    c, b, a = imported_orders(channel, 3, seed=121)  # c has several items
    # c: Amazon refunds all but 1.00 of an item's price; it is mirrored to Commerce as an amount (no quantity)
    c_item = c["orderItems"][0]["orderItemId"]
    principal = sum(
        Decimal(b_["subtotal"]["amount"])
        for b_ in c["orderItems"][0]["proceeds"]["breakdowns"]
        if b_["type"] in ("ITEM", "DISCOUNT")
    )
    channel.amazon_event(
        c["orderId"],
        {
            "type": "refund",
            "items": [{"orderItemId": c_item, "components": [{"type": "Principal", "amount": str(principal - 1)}]}],
        },
    )
    age_amazon_refunds(channel)
    assert_success(channel.run_dag(DAG))
    assert summary_of(channel)["mirrored"] == 1
    # a: refunded in full on Amazon (not yet visible in Finances), then in Commerce: Amazon rejects the message
    channel.amazon_event(a["orderId"], {"type": "refund"})
    memo_a = credit_memo(channel, a["orderId"], None)
    memo_b = credit_memo(channel, b["orderId"], None)
    # c: the whole item refunded in Commerce, but most of it is already refunded on Amazon -> caught before sending
    memo_c = credit_memo(channel, c["orderId"], {c_item: 1})
    run_and_settle(channel)

    rejected = outbox(channel, memo_a)
    assert rejected["status"] == "rejected" and "exceeds the refundable amount" in rejected["amazon_message"]
    assert outbox(channel, memo_b)["status"] == "accepted"
    over = outbox(channel, memo_c)
    assert over["status"] == "rejected" and over["amazon_message"].startswith("not sent:")
    assert "left to refund on Amazon" in over["amazon_message"]
    quarantined = {q["entity_id"]: q["reason"] for q in open_quarantine(channel.store, "creditmemo")}
    assert set(quarantined) == {str(memo_a), str(memo_c)}
    feeds, messages = adjustment_messages(channel)
    assert len(feeds) == 1 and len(messages) == 2  # a and b in one feed; c never left
    assert [r["orderId"] for r in feed_refunds(channel)] == [b["orderId"]]


def test_unknown_item_is_not_sent(channel):
    [order] = imported_orders(channel, 1, seed=131)
    # the state store lost one item's mapping -> unknown item
    first = order["orderItems"][0]["orderItemId"]
    channel.store.orders.map_items({first: ("X", None)})
    memo_id = credit_memo(channel, order["orderId"], {first: 1})
    assert_success(channel.run_dag(DAG))
    entry = outbox(channel, memo_id)
    assert entry["status"] == "rejected" and "not an item of the Amazon order" in entry["amazon_message"]
    assert adjustment_messages(channel)[1] == []
    [q] = open_quarantine(channel.store, "creditmemo")
    assert q["entity_id"] == str(memo_id)  # (other currencies: see the unit tests of plan_adjustment)


def test_feed_faults_send_each_adjustment_once(channel):
    orders = imported_orders(channel, 3, seed=141)
    memos = [credit_memo(channel, o["orderId"], None) for o in orders]
    feed_calls = ["createFeedDocument", "createFeed", "getFeed", "getFeeds", "getFeedDocument"]
    channel.amazon_faults(error_rate=0.4, error_statuses=[500, 503], drop_rate=0.2, seed=3, operations=feed_calls)
    for _ in range(6):
        channel.run_dag(DAG)
        finish_feeds(channel)
        if all(outbox(channel, m)["status"] == "accepted" for m in memos):
            break
    stats = channel.amazon("GET", "/_sandbox/stats")["operations"]
    assert sum(stats.get(op, {}).get("faults", 0) for op in feed_calls) > 0
    channel.amazon_faults()
    run_and_settle(channel)
    assert all(outbox(channel, m)["status"] == "accepted" for m in memos)
    _, messages = adjustment_messages(channel)
    refunds = feed_refunds(channel)
    assert len(refunds) == 3 and sorted(r["orderId"] for r in refunds) == sorted(o["orderId"] for o in orders)
    # every adjustment applied once on Amazon, even if a feed had to be re-sent after a lost answer
    assert len({(r["orderId"]) for r in refunds}) == len(refunds)


PLAIN = {"preset": "compat", "gift": 0.0}  # no gift options
GIFT_WRAPPED = {"preset": "compat", "gift": 1.0, "gift_wrap_charge": 1.0}  # every item gift-wrapped for a charge


@pytest.mark.parametrize("realism", [PLAIN, GIFT_WRAPPED], ids=["plain", "paid_gift_wrap"])
def test_commit_then_fail_on_commerce_refund_mirrors_once(channel, realism):
    [order] = imported_orders(channel, 1, seed=151, realism=realism)
    wrapped = any(b["type"] == "GIFT_WRAP" for i in order["orderItems"] for b in i["proceeds"]["breakdowns"])
    assert wrapped == (realism is GIFT_WRAPPED)
    channel.amazon_event(order["orderId"], {"type": "refund"})
    age_amazon_refunds(channel)
    channel.commerce_faults(fail_next=[{"route": "POST /V1/order/*/refund", "kind": "commit_then_fail", "count": 1}])
    channel.run_dag(DAG)  # recovers in the same run (or fails and recovers in the next)
    assert not channel.commerce("GET", "/_sandbox/faults").get("fail_next")  # the fault was used
    assert summary_of(channel).get("recovered_after_lost_answer") == 1
    channel.commerce_faults()
    assert_success(channel.run_dag(DAG))
    commerce = commerce_order(channel, order["orderId"])
    memos = all_memos(channel, commerce["entity_id"])
    assert len(memos) == 1
    amazon_total = Decimal(order["proceeds"]["grandTotal"]["amount"])
    # A paid gift wrap is part of the order's shipping & handling, invoiced with it (order_programs): the buyer's
    # whole payment is refunded, gift wrap included.
    assert Decimal(str(commerce["total_paid"])) == amazon_total
    assert Decimal(str(memos[0]["grand_total"])) == amazon_total
    assert channel.commerce("GET", "/_sandbox/stats")["calls"]["POST /V1/order/{order_id}/refund"] == 1
    [write] = [w for w in channel.store.writes.for_order(order["orderId"]) if w["kind"] == "refund_mirror"]
    assert write["status"] == "done" and int(write["commerce_entity_id"]) == int(memos[0]["entity_id"])
    assert adjustment_messages(channel)[1] == []  # the mirrored memo is not sent back to Amazon

    # a worker killed after Commerce created the memo but before the state store heard of it
    from amazon_commerce_sync.store import WriteStatus

    for entry in channel.store.writes.for_order(order["orderId"]):
        if entry["kind"] in ("refund_mirror", "refund_event"):
            channel.store.writes.complete(entry["natural_key"], None, status=WriteStatus.INTENT, detail=entry["detail"])
    assert_success(channel.run_dag(DAG))
    assert len(all_memos(channel, commerce["entity_id"])) == 1
    assert channel.commerce("GET", "/_sandbox/stats")["calls"]["POST /V1/order/{order_id}/refund"] == 1
    [write] = [w for w in channel.store.writes.for_order(order["orderId"]) if w["kind"] == "refund_mirror"]
    assert write["status"] == "done" and int(write["commerce_entity_id"]) == int(memos[0]["entity_id"])
    assert adjustment_messages(channel)[1] == []


@pytest.mark.parametrize("seen_first", ["amazon_rejection", "amazon_refund"])
def test_merchant_and_amazon_refunding_the_same_items_settle_as_one_refund(channel, seen_first):
    """The merchant refunds an order in Commerce while Amazon refunds it itself (a return), for the same items and
    amounts (found by the soak): Amazon refuses the adjustment and Commerce has nothing left for a mirror. The memo
    stands for Amazon's refund, whichever side is seen first: one refund each side, nothing left in the quarantine."""
    [order] = imported_orders(channel, 1, seed=131)
    commerce = commerce_order(channel, order["orderId"])
    channel.amazon_event(order["orderId"], {"type": "refund"})  # everything, shipping included
    memo_id = credit_memo(channel, order["orderId"], None, shipping=str(commerce["base_shipping_invoiced"]))
    if seen_first == "amazon_rejection":  # the adjustment is refused before Amazon's refund shows in Finances
        run_and_settle(channel)
        assert outbox(channel, memo_id)["status"] == "rejected"
        assert {q["entity_id"] for q in open_quarantine(channel.store, "creditmemo")} == {str(memo_id)}
        age_amazon_refunds(channel)
        assert_success(channel.run_dag(DAG))
    else:  # Amazon's refund is read first: Commerce refuses its mirror (the memo took everything), then the memo
        age_amazon_refunds(channel)  # is found to be that refund when it is queued, and never sent
        assert_success(channel.run_dag(DAG))
        assert adjustment_messages(channel)[1] == []

    entry = outbox(channel, memo_id)
    assert entry["status"] == "accepted" and "Amazon refunded this itself" in entry["amazon_message"], entry
    assert open_quarantine(channel.store, "creditmemo") == [] and open_quarantine(channel.store, "amazon_refund") == []
    assert [m["entity_id"] for m in all_memos(channel, commerce["entity_id"])] == [memo_id]
    refunds = channel.amazon("GET", "/_sandbox/refunds")["refunds"]
    assert [r["source"] for r in refunds] == ["amazon"] and feed_refunds(channel) == []
    assert len(audit_entries(channel.store, action="refund_settled_by_amazon")) == 1
    for _ in range(2):  # reruns change nothing
        assert_success(channel.run_dag(DAG))
    assert len(all_memos(channel, commerce["entity_id"])) == 1
    assert len(audit_entries(channel.store, action="refund_settled_by_amazon")) == 1


def test_amazon_refund_of_a_cad_order_with_shipping_is_mirrored_in_the_base_currency(channel):
    """A CAD order on the USD store (USD→CAD 1.35): Magento reads the memo's shipping_amount in USD, so the mirror
    sends the base shipping left and the memo takes every amount in both currencies; its answer lost, the memo is
    found again by its base amounts and items, never made twice."""
    [order] = imported_orders(channel, 1, seed=161, marketplace_ids=["A2EUQ1WTGCTBG2"])
    commerce = commerce_order(channel, order["orderId"])
    assert (commerce["order_currency_code"], commerce["base_currency_code"]) == ("CAD", "USD")
    assert Decimal(str(commerce["shipping_amount"])) > 0
    channel.amazon_event(order["orderId"], {"type": "refund"})  # everything, shipping included
    age_amazon_refunds(channel)
    channel.commerce_faults(fail_next=[{"route": "POST /V1/order/*/refund", "kind": "commit_then_fail", "count": 1}])
    channel.run_dag(DAG)  # recovers in the same run
    assert not channel.commerce("GET", "/_sandbox/faults").get("fail_next")  # the fault was used
    assert summary_of(channel).get("recovered_after_lost_answer") == 1
    channel.commerce_faults()
    assert_success(channel.run_dag(DAG))
    [doc] = all_memos(channel, commerce["entity_id"])
    assert channel.commerce("GET", "/_sandbox/stats")["calls"]["POST /V1/order/{order_id}/refund"] == 1
    after = commerce_order(channel, order["orderId"])
    assert after["state"] == "closed"
    for prefix in ("", "base_"):
        assert Decimal(str(doc[f"{prefix}shipping_amount"])) == Decimal(str(commerce[f"{prefix}shipping_amount"]))
        assert Decimal(str(doc[f"{prefix}grand_total"])) == Decimal(str(after[f"{prefix}total_paid"]))
    assert Decimal(str(doc["grand_total"])) == Decimal(order["proceeds"]["grandTotal"]["amount"])
    [write] = [w for w in channel.store.writes.for_order(order["orderId"]) if w["kind"] == "refund_mirror"]
    assert write["status"] == "done" and int(write["commerce_entity_id"]) == int(doc["entity_id"])
    assert write["detail"]["sent"]["base_shipping_amount"] == str(Decimal(str(commerce["base_shipping_amount"])))
