"""Refunds read from Finances 2024-06-19 and checked three ways, end to end with dag.test() against both sandboxes.

The Amazon sandbox answers Finances v0 as a removed API (tests/conftest.py), so none of this can lean on it.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.test_refund_sync import (
    DAG,
    age_amazon_refunds,
    all_memos,
    assert_success,
    commerce_order,
    credit_memo,
    feed_refunds,
    imported_orders,
    run_and_settle,
    summary_of,
)
from tests.store_queries import audit_entries, open_mismatches

pytestmark = pytest.mark.e2e


def reconcile_result(channel):
    """The ``account.reconcile`` task's return value (one account)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(
                run_id=channel.last_run.run_id, dag_ids=DAG, task_ids="account.reconcile", key="return_value"
            )
        ).first()
        return XComModel.deserialize_value(row)


def refund_transactions(channel, order_id):
    """What listTransactions answers for the order's refunds (through the public route)."""
    from amazon_commerce_sync.hooks.amazon import AmazonSpApiHook
    from amazon_commerce_sync.ratelimit import LocalLimiter

    hook = AmazonSpApiHook(limiter=LocalLimiter())
    since = channel.store.orders.get(order_id)["amazon_created_at"]
    return [
        t
        for page in hook.list_transactions(posted_after=since)
        for t in page
        if t["transactionType"] == "Refund"
        and any(r["relatedIdentifierValue"] == order_id for r in t["relatedIdentifiers"])
    ]


def test_deferred_refund_released_later_is_mirrored_once(channel):
    channel.amazon("POST", "/_sandbox/settings", json={"deferral_rate": 1.0, "deferral_seconds": 10**9})
    [order] = imported_orders(channel, 1, seed=161)
    channel.amazon_event(order["orderId"], {"type": "refund"})
    age_amazon_refunds(channel)

    assert_success(channel.run_dag(DAG))
    [tx] = refund_transactions(channel, order["orderId"])
    assert tx["transactionStatus"] == "DEFERRED"
    assert summary_of(channel)["mirrored"] == 1
    commerce = commerce_order(channel, order["orderId"])
    assert len(all_memos(channel, commerce["entity_id"])) == 1

    # Amazon releases it: the same transaction, now DEFERRED_RELEASED; nothing is refunded again
    channel.amazon("POST", "/_sandbox/settings", json={"deferral_seconds": 1})
    [released] = refund_transactions(channel, order["orderId"])
    assert released["transactionStatus"] == "DEFERRED_RELEASED"
    assert released["transactionId"] == tx["transactionId"]
    assert_success(channel.run_dag(DAG))
    summary = summary_of(channel)
    assert summary["mirrored"] == 0 and summary["known"] == 1, summary
    assert len(all_memos(channel, commerce["entity_id"])) == 1
    # mirrored direction of the three-way check: the transaction and the offline memo agree
    check = channel.store.refund_checks.get(f"mirror:{all_memos(channel, commerce['entity_id'])[0]['entity_id']}")
    assert check["status"] == "confirmed" and check["direction"] == "mirror", check
    assert open_mismatches(channel.store) == []


def test_own_refund_recognised_not_mirrored_and_confirmed_three_ways(channel):
    [order] = imported_orders(channel, 1, seed=171)
    commerce = commerce_order(channel, order["orderId"])
    memo_id = credit_memo(channel, order["orderId"], None, shipping=str(commerce["base_shipping_invoiced"]))
    run_and_settle(channel)
    assert channel.store.refund_checks.get(f"sent:{memo_id}")["status"] == "sent"  # Amazon has not posted it yet

    age_amazon_refunds(channel)  # the feed's refund shows in listTransactions
    assert_success(channel.run_dag(DAG))
    summary = summary_of(channel)
    assert summary["mirrored"] == 0 and summary["recognised_own"] == 1, summary
    assert [m["entity_id"] for m in all_memos(channel, commerce["entity_id"])] == [memo_id]
    check = channel.store.refund_checks.get(f"sent:{memo_id}")
    assert check["status"] == "confirmed", check
    assert check["memo_amounts"] == check["accepted_amounts"] == check["posted_amounts"]
    assert {"Principal", "Tax"} <= {k for code, comps in check["memo_amounts"].items() if code != "*" for k in comps}
    assert check["transaction_key"].startswith(f"amzrefund:{order['orderId']}:")
    assert open_mismatches(channel.store) == []
    today = reconcile_result(channel)["refund_check_today"]
    assert [(r["sent"], r["confirmed"], r["mismatched"]) for r in today] == [(1, 1, 0)]
    assert today[0]["currency"] == commerce["order_currency_code"]


def test_amazon_posting_a_different_amount_opens_a_three_way_mismatch(channel):
    [order] = imported_orders(channel, 1, seed=181)
    item = order["orderItems"][0]["orderItemId"]
    memo_id = credit_memo(channel, order["orderId"], {item: 1})
    run_and_settle(channel)
    [refund] = feed_refunds(channel, order["orderId"])
    state = channel.amazon_app.state.sandbox
    with state.lock:  # Amazon posts the refund with 1.00 less Principal than the adjustment it accepted
        [principal] = [c for c in state.refunds[-1]["items"][0]["components"] if c["type"] == "Principal"]
        accepted = Decimal(principal["amount"])
        principal["amount"] = str(accepted - 1)
    age_amazon_refunds(channel)
    assert_success(channel.run_dag(DAG))

    summary = summary_of(channel)
    assert summary["mirrored"] == 0 and summary.get("checks_mismatched") == 1, summary  # ours, not a second refund
    commerce = commerce_order(channel, order["orderId"])
    assert [m["entity_id"] for m in all_memos(channel, commerce["entity_id"])] == [memo_id]
    [mismatch] = open_mismatches(channel.store)
    assert mismatch["kind"] == f"refund_amount:{memo_id}" and mismatch["amazon_order_id"] == order["orderId"]
    assert f"Principal (item {item})" in mismatch["detail"]
    assert f"memo {accepted}, accepted {accepted}, posted {accepted - 1}" in mismatch["detail"], mismatch["detail"]
    assert channel.store.refund_checks.get(f"sent:{memo_id}")["status"] == "mismatched"
    assert len(audit_entries(channel.store, action="refund_amounts_mismatched")) == 1
    today = reconcile_result(channel)["refund_check_today"]
    assert [(r["sent"], r["confirmed"], r["mismatched"]) for r in today] == [(1, 0, 1)]

    assert_success(channel.run_dag(DAG))  # a rerun reports nothing twice and mirrors nothing
    assert len(open_mismatches(channel.store)) == 1
    assert len(audit_entries(channel.store, action="refund_amounts_mismatched")) == 1
    assert len(all_memos(channel, commerce["entity_id"])) == 1


def test_refunds_handled_through_finances_v0_are_not_mirrored_again(channel):
    """An installation that read refunds from Finances v0 moves to listTransactions: the refunds of its overlap
    window come back under their transaction key and are recognised as the v0 events already handled."""
    from sqlalchemy import update

    from amazon_commerce_sync.store.schema import commerce_writes

    [order] = imported_orders(channel, 1, seed=191)
    channel.amazon_event(order["orderId"], {"type": "refund"})
    age_amazon_refunds(channel)
    assert_success(channel.run_dag(DAG))
    assert summary_of(channel)["mirrored"] == 1
    # what the v0 release recorded: the same refund under its v0 event key (order, PostedDate, digest)
    [event] = [w for w in channel.store.writes.for_order(order["orderId"]) if w["kind"] == "refund_event"]
    v0_key = f"amzrefund:{order['orderId']}:2026-11-30T10:00:00Z:0123456789abcdef"
    rows = channel.store.writes.for_order(order["orderId"])
    with channel.store.engine.begin() as conn:  # the event, its credit memo and its comment, all under v0 keys
        for row in rows:
            if event["natural_key"] in row["natural_key"]:
                renamed = row["natural_key"].replace(event["natural_key"], v0_key)
                w = commerce_writes.c
                conn.execute(update(commerce_writes).where(w.id == row["id"]).values(natural_key=renamed))
    commerce = commerce_order(channel, order["orderId"])
    memos = all_memos(channel, commerce["entity_id"])

    assert_success(channel.run_dag(DAG))
    summary = summary_of(channel)
    assert summary["mirrored"] == 0 and summary["known"] == 1, summary
    assert all_memos(channel, commerce["entity_id"]) == memos
    assert channel.store.writes.get(event["natural_key"])["detail"]["legacy"] == v0_key
    assert_success(channel.run_dag(DAG))  # and it stays known
    assert summary_of(channel)["known"] == 1 and all_memos(channel, commerce["entity_id"]) == memos
