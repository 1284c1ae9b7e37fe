"""The state store, on SQLite and on a real PostgreSQL (both always run in CI)."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import inspect

from amazon_commerce_sync.store import OrderSync, OutboxStatus, StagedOrder, WriteStatus
from amazon_commerce_sync.store.db import current_revision, head_revision, is_migrated, make_engine, migrate
from tests.store_queries import all_cursors, audit_entries, open_mismatches, open_quarantine, reset_cursor

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def staged(order_id="111-0000001-0000001", updated=T0, status="UNSHIPPED", total="10.01", pii=None, **kw):
    return StagedOrder(
        amazon_order_id=order_id,
        account_id=kw.get("account_id", "acct"),
        marketplace_id="ATVPDKIKX0DER",
        fulfilled_by="MERCHANT",
        amazon_status=status,
        amazon_created_at=T0 - timedelta(hours=1),
        amazon_updated_at=updated,
        currency="USD",
        order_total=Decimal(total),
        buyer_cancel_requested=False,
        payload={"orderId": order_id},
        items=[{"amazon_order_item_id": f"{order_id}-1", "seller_sku": "SKU-1", "quantity_ordered": 2}],
        pii=pii,
    )


def test_migrations_reach_head_and_are_idempotent(state_db_url):
    engine = make_engine(state_db_url)
    assert current_revision(engine) is None
    assert migrate(engine) == head_revision()
    assert is_migrated(engine)
    migrate(engine)  # a second run changes nothing
    tables = set(inspect(engine).get_table_names())
    assert {
        "cursors",
        "amazon_orders",
        "order_pii",
        "order_items",
        "commerce_writes",
        "outbox",
        "feeds",
        "quarantine",
        "mismatches",
        "audit_log",
        "rate_limit_buckets",
        "leases",
    } <= tables
    engine.dispose()


def test_a_migrated_store_is_checked_without_alembic_lines(state_db_url, caplog):
    """Every task opens the store: once it is at head, no Alembic start-up lines ("Context impl ...",
    "Will assume ... DDL") reach the task log; an upgrade still says what it did."""
    import logging

    engine = make_engine(state_db_url)
    with caplog.at_level(logging.INFO):
        migrate(engine)
    assert f"upgraded from revision (empty) to {head_revision()}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert migrate(engine) == head_revision()
        assert current_revision(engine) == head_revision()
    assert "Context impl" not in caplog.text and "Will assume" not in caplog.text, caplog.text
    assert not [r for r in caplog.records if r.name.startswith("alembic")]
    engine.dispose()


def test_money_is_exact(state_store):
    state_store.orders.stage([staged(total="1234567.8901")])
    order = state_store.orders.get("111-0000001-0000001")
    assert order["order_total"] == Decimal("1234567.8901")
    assert isinstance(order["order_total"], Decimal)
    # 0.1 + 0.2 is not 0.3 in floats; the store must give exactly 0.3 back
    state_store.orders.stage([staged(total=str(Decimal("0.1") + Decimal("0.2")), updated=T0 + timedelta(1))])
    assert state_store.orders.get("111-0000001-0000001")["order_total"] == Decimal("0.3")


def test_cursor_only_moves_forward(state_store):
    assert state_store.ops.get_cursor("orders:acct:US") is None
    state_store.ops.set_cursor("orders:acct:US", T0)
    state_store.ops.set_cursor("orders:acct:US", T0 - timedelta(minutes=5))
    assert state_store.ops.get_cursor("orders:acct:US") == T0
    state_store.ops.set_cursor("orders:acct:US", T0 + timedelta(minutes=5))
    assert state_store.ops.get_cursor("orders:acct:US") == T0 + timedelta(minutes=5)
    reset_cursor(state_store, "orders:acct:US", T0 - timedelta(days=1))
    assert state_store.ops.get_cursor("orders:acct:US") == T0 - timedelta(days=1)
    assert all_cursors(state_store) == {"orders:acct:US": T0 - timedelta(days=1)}


def test_staging_is_an_upsert_by_amazon_order_id(state_store):
    assert state_store.orders.stage([staged()]) == {"new": 1, "changed": 0, "unchanged": 0}
    assert state_store.orders.stage([staged()]) == {"new": 0, "changed": 0, "unchanged": 1}
    # an older version never overwrites a newer one
    assert state_store.orders.stage([staged(updated=T0 - timedelta(1), status="PENDING")])["unchanged"] == 1
    assert state_store.orders.get("111-0000001-0000001")["amazon_status"] == "UNSHIPPED"
    assert state_store.orders.stage([staged(updated=T0 + timedelta(1), status="SHIPPED")])["changed"] == 1
    order = state_store.orders.get("111-0000001-0000001")
    assert order["amazon_status"] == "SHIPPED"
    assert order["amazon_updated_at"] == T0 + timedelta(1)
    assert [i["amazon_order_item_id"] for i in state_store.orders.items("111-0000001-0000001")] == [
        "111-0000001-0000001-1"
    ]


def test_a_second_change_within_the_same_second_is_staged_and_applied_again(state_store):
    """Amazon's lastUpdatedTime is to the second: a version of the same time with other content (shipped, then
    its package data a moment later) is newer than the staged one, and the import applies it again; the same
    content again, or an older time, changes nothing."""
    order_id = "111-0000001-0000001"
    shipped = staged(order_id, status="SHIPPED")
    assert state_store.orders.stage([shipped])["new"] == 1
    state_store.orders.set_sync(order_id, OrderSync.IMPORTED, synced_amazon_updated_at=T0, commerce_order_id=7)
    assert state_store.orders.to_process("acct") == []
    with_packages = dataclasses.replace(shipped, payload={"orderId": order_id, "packages": [{"packageId": "1"}]})
    assert state_store.orders.stage([with_packages]) == {"new": 0, "changed": 1, "unchanged": 0}
    assert state_store.orders.get(order_id)["payload"]["packages"] == [{"packageId": "1"}]
    [again] = state_store.orders.to_process("acct")
    assert again["commerce_order_id"] == 7 and again["synced_amazon_updated_at"] is None
    assert state_store.orders.stage([with_packages]) == {"new": 0, "changed": 0, "unchanged": 1}
    assert state_store.orders.stage([dataclasses.replace(shipped, amazon_updated_at=T0 - timedelta(seconds=1))]) == {
        "new": 0,
        "changed": 0,
        "unchanged": 1,
    }
    # one page naming the order twice with the same time: the later one is the version staged
    state_store.orders.stage([with_packages, shipped])
    assert "packages" not in state_store.orders.get(order_id)["payload"]


def test_orders_to_process_follows_changes(state_store):
    state_store.orders.stage([staged("111-0000001-0000001"), staged("111-0000001-0000002")])
    todo = state_store.orders.to_process("acct")
    assert [o["amazon_order_id"] for o in todo] == ["111-0000001-0000001", "111-0000001-0000002"]
    assert [o["amazon_order_id"] for o in state_store.orders.to_process("acct", after_id="111-0000001-0000001")] == [
        "111-0000001-0000002"
    ]
    state_store.orders.set_sync(
        "111-0000001-0000001",
        OrderSync.IMPORTED,
        synced_amazon_updated_at=T0,
        commerce_order_id=7,
        commerce_increment_id="000000007",
    )
    assert [o["amazon_order_id"] for o in state_store.orders.to_process("acct")] == ["111-0000001-0000002"]
    # a later change on Amazon's side puts it back in the queue, keeping the mapping
    state_store.orders.stage([staged("111-0000001-0000001", updated=T0 + timedelta(1), status="CANCELLED")])
    again = state_store.orders.to_process("acct")
    assert [o["amazon_order_id"] for o in again][0] == "111-0000001-0000001"
    assert again[0]["commerce_order_id"] == 7 and again[0]["sync_status"] == OrderSync.IMPORTED
    assert state_store.orders.by_commerce_id(7)["amazon_order_id"] == "111-0000001-0000001"
    assert state_store.orders.by_increment_id("000000007")["amazon_order_id"] == "111-0000001-0000001"
    # orders waiting for a product are retried on every run even without a change
    state_store.orders.set_sync(
        "111-0000001-0000002", OrderSync.WAITING_PRODUCT, reason="SKU-1 unknown", synced_amazon_updated_at=T0
    )
    assert "111-0000001-0000002" in [o["amazon_order_id"] for o in state_store.orders.to_process("acct")]
    # quarantined orders are not, until re-driven
    state_store.orders.set_sync("111-0000001-0000002", OrderSync.QUARANTINED, reason="bad", synced_amazon_updated_at=T0)
    assert "111-0000001-0000002" not in [o["amazon_order_id"] for o in state_store.orders.to_process("acct")]
    assert state_store.orders.to_process("other-account") == []


def test_redrive_is_per_account(state_store):
    ours, theirs = "111-0000001-0000003", "111-0000001-0000004"
    state_store.orders.stage([staged(ours), staged(theirs, account_id="other-account")])
    for order_id in (ours, theirs):
        state_store.orders.set_sync(order_id, OrderSync.QUARANTINED, reason="bad", synced_amazon_updated_at=T0)
    assert state_store.orders.redrive(account_id="acct") == [ours]
    assert state_store.orders.get(theirs)["sync_status"] == OrderSync.QUARANTINED
    assert state_store.orders.redrive([theirs], account_id="acct") == []
    assert state_store.orders.redrive([theirs]) == [theirs]


def test_pii_is_kept_apart_and_never_restored_after_erasure(state_store):
    pii = {"buyer_name": "Zoë Ørsted", "buyer_email": "zoe@example.test", "shipping_address": {"city": "Århus"}}
    state_store.orders.stage([staged(pii=pii)])
    assert state_store.orders.pii("111-0000001-0000001")["buyer_name"] == "Zoë Ørsted"
    assert "Zoë" not in str(state_store.orders.get("111-0000001-0000001"))
    # a later PENDING-style version without PII keeps the stored data
    state_store.orders.stage([staged(updated=T0 + timedelta(1), pii={})])
    assert state_store.orders.pii("111-0000001-0000001")["buyer_email"] == "zoe@example.test"


def test_intent_log_records_once(state_store):
    first = state_store.writes.record_intent("create_order:111-0000001-0000001", "create_order", "111-0000001-0000001")
    assert first["status"] == WriteStatus.INTENT
    again = state_store.writes.record_intent("create_order:111-0000001-0000001", "create_order", "111-0000001-0000001")
    assert again["id"] == first["id"]
    state_store.writes.complete("create_order:111-0000001-0000001", 42)
    done = state_store.writes.get("create_order:111-0000001-0000001")
    assert done["status"] == WriteStatus.DONE and done["commerce_entity_id"] == "42"
    assert [w["kind"] for w in state_store.writes.for_order("111-0000001-0000001")] == ["create_order"]
    state_store.writes.forget("create_order:111-0000001-0000001")
    assert state_store.writes.get("create_order:111-0000001-0000001") is None


def test_intents_of_account_are_the_unfinished_writes_of_its_orders(state_store):
    ours, done, theirs = "111-0000001-0000005", "111-0000001-0000006", "111-0000001-0000007"
    state_store.orders.stage([staged(ours), staged(done), staged(theirs, account_id="other-account")])
    for order_id in (ours, done, theirs):
        state_store.writes.record_intent(f"stock_out:{order_id}", "stock_out", order_id, {"lines": {"SKU-1": 2}})
        state_store.writes.record_intent(f"invoice:{order_id}", "invoice", order_id)
    state_store.writes.complete(f"stock_out:{done}", None)
    [row] = state_store.writes.intents_of_account("stock_out", "acct")
    assert row["amazon_order_id"] == ours and row["detail"] == {"lines": {"SKU-1": 2}}


def test_outbox_is_keyed_by_natural_key(state_store):
    assert state_store.outbox.add("shipment:10", "shipment_confirmation", "acct", "111-0000001-0000001", {"a": 1})
    assert not state_store.outbox.add("shipment:10", "shipment_confirmation", "acct", "111-0000001-0000001", {"a": 2})
    [entry] = state_store.outbox.entries(kind="shipment_confirmation", statuses=[OutboxStatus.PENDING])
    assert entry["payload"] == {"a": 1}
    assert state_store.outbox.transition(
        entry["id"], OutboxStatus.SUBMITTED, expect=OutboxStatus.PENDING, feed_id="F1", message_id=1, count_attempt=True
    )
    # compare-and-set: a second worker cannot submit it again
    assert not state_store.outbox.transition(entry["id"], OutboxStatus.SUBMITTED, expect=OutboxStatus.PENDING)
    [entry] = state_store.outbox.entries(feed_id="F1")
    assert (entry["status"], entry["message_id"], entry["attempts"]) == ("submitted", 1, 1)
    state_store.outbox.transition(
        "shipment:10", OutboxStatus.REJECTED, expect=OutboxStatus.SUBMITTED, amazon_message="order already shipped"
    )
    assert state_store.outbox.get("shipment:10")["amazon_message"] == "order already shipped"


def test_outbox_transitions_are_compare_and_set_on_known_statuses(state_store):
    state_store.outbox.add("cancel:1", "cancel:ATVPDKIKX0DER", "acct", "111-0000001-0000001", {"reason": "NoInventory"})
    # the persisted strings are the ones users' stores hold
    assert [s.value for s in OutboxStatus] == [
        "waiting",
        "pending",
        "submitting",
        "submitted",
        "sending",
        "confirmed",
        "accepted",
        "rejected",
        "skipped",
    ]
    assert {s for s in OutboxStatus if s.is_terminal} == {"accepted", "rejected", "skipped"}
    assert not state_store.outbox.transition("cancel:1", OutboxStatus.ACCEPTED, expect=OutboxStatus.SUBMITTED)
    assert state_store.outbox.transition(
        "cancel:1", OutboxStatus.REJECTED, expect=[OutboxStatus.PENDING, OutboxStatus.SUBMITTED], amazon_message="no"
    )
    # a rejected cancellation is sent again only when asked explicitly, with a new payload
    assert state_store.outbox.transition(
        "cancel:1",
        OutboxStatus.PENDING,
        expect=OutboxStatus.REJECTED,
        payload={"reason": "BuyerCanceled"},
        amazon_message=None,
    )
    entry = state_store.outbox.get("cancel:1")
    assert (entry["status"], entry["amazon_message"]) == ("pending", None)
    assert entry["payload"] == {"reason": "BuyerCanceled"}
    with pytest.raises(ValueError, match="no field"):
        state_store.outbox.transition("cancel:1", OutboxStatus.SUBMITTED, expect=OutboxStatus.PENDING, status="x")
    with pytest.raises(ValueError):
        state_store.outbox.transition("cancel:1", "sent", expect=OutboxStatus.PENDING)


def test_feeds_quarantine_mismatches_audit(state_store):
    state_store.outbox.record_feed("F1", "acct", "POST_PAYMENT_ADJUSTMENT_DATA", "doc-1")
    state_store.outbox.record_feed("F1", "acct", "POST_PAYMENT_ADJUSTMENT_DATA", "doc-1")
    assert [f["feed_id"] for f in state_store.outbox.open_feeds("POST_PAYMENT_ADJUSTMENT_DATA")] == ["F1"]
    state_store.outbox.finish_feed("F1", "DONE", {"errors": 1})
    assert state_store.outbox.open_feeds() == [] and state_store.outbox.get_feed("F1")["summary"] == {"errors": 1}

    state_store.ops.quarantine("order", "111-0000001-0000001", "grand total does not add up")
    state_store.ops.quarantine("order", "111-0000001-0000001", "grand total still does not add up")
    [q] = open_quarantine(state_store, "order")
    assert q["occurrences"] == 2 and q["reason"] == "grand total still does not add up"
    assert state_store.ops.resolve_quarantine("order", "111-0000001-0000001")
    assert not state_store.ops.resolve_quarantine("order", "111-0000001-0000001")
    assert open_quarantine(state_store) == []

    state_store.ops.report_mismatch("shipment_not_on_amazon", "111-0000001-0000001", "still UNSHIPPED")
    state_store.ops.report_mismatch("shipment_not_on_amazon", "111-0000001-0000001", "still UNSHIPPED after 2 runs")
    assert [m["detail"] for m in open_mismatches(state_store)] == ["still UNSHIPPED after 2 runs"]
    state_store.ops.resolve_mismatch("shipment_not_on_amazon", "111-0000001-0000001")
    assert open_mismatches(state_store) == []

    state_store.ops.audit("order_created", "order", "111-0000001-0000001", {"commerce_order_id": 1})
    [entry] = audit_entries(state_store, entity_id="111-0000001-0000001")
    assert entry["actor"] == "tests" and entry["detail"] == {"commerce_order_id": 1}


def test_leases_exclude_other_owners_until_expiry(state_store):
    assert state_store.ops.acquire_lease("order:1", "w1", 60)
    assert not state_store.ops.acquire_lease("order:1", "w2", 60)
    assert state_store.ops.acquire_lease("order:1", "w1", 60)  # re-entrant for the owner
    state_store.ops.release_lease("order:1", "w1")
    assert state_store.ops.acquire_lease("order:1", "w2", -1)  # already expired
    assert state_store.ops.acquire_lease("order:1", "w3", 60)


def test_concurrent_staging_and_leases_from_threads(state_store):
    """Many threads stage the same orders and race for one lease: one winner, no lost or doubled rows."""
    winners: list[str] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            state_store.orders.stage([staged(f"111-0000001-{i:07d}") for i in range(20)])
            if state_store.ops.acquire_lease("order:race", f"w{n}", 60):
                winners.append(f"w{n}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors and state_store.engine.dialect.name == "sqlite":
        pytest.fail(f"SQLite writers must wait, not fail: {errors[0]!r}")
    assert not errors
    assert len(winners) == 1
    assert sum(state_store.orders.count_by_status().values()) == 20


def test_a_unit_commits_its_calls_all_or_nothing(state_store):
    with pytest.raises(RuntimeError), state_store.unit():
        state_store.ops.set_cursor("orders:acct:US", T0)
        state_store.writes.record_intent("create_order:111-0000001-0000009", "create_order", "111-0000001-0000009")
        assert state_store.ops.get_cursor("orders:acct:US") == T0  # the unit reads what it wrote
        raise RuntimeError("a bug before the end of the unit")
    assert state_store.ops.get_cursor("orders:acct:US") is None
    assert state_store.writes.get("create_order:111-0000001-0000009") is None
    with state_store.unit():
        state_store.ops.set_cursor("orders:acct:US", T0)
        with state_store.unit():  # joins
            state_store.writes.record_intent("create_order:111-0000001-0000009", "create_order", None)
    assert state_store.ops.get_cursor("orders:acct:US") == T0
    assert state_store.writes.get("create_order:111-0000001-0000009")["status"] == WriteStatus.INTENT


@contextlib.contextmanager
def writer_holding_the_lock(state_store):
    """A thread in the middle of a write transaction (a cursor set, not committed) for the block's length."""
    holding, release = threading.Event(), threading.Event()

    def writer():
        with state_store.unit():
            state_store.ops.set_cursor("orders:acct:US", T0)
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        yield
    finally:
        release.set()
        thread.join()


def test_page_decision_and_bucket_reads_do_not_wait_for_a_writer(state_store):
    """The Sales Channel page, the decision DAG's look-up and a rate bucket's tokens read outside the aggregates;
    they too are snapshots that wait for no writer (on SQLite a plain connection would begin with the write lock
    and wait for the writer to commit)."""
    from amazon_commerce_sync.pipelines.cancel_decision import pending_requests
    from amazon_commerce_sync.ratelimit import SqlLimiter
    from amazon_commerce_sync.ui import queries

    with writer_holding_the_lock(state_store):
        started = time.monotonic()
        page = queries.page_data(state_store, T0, schedule={}, watcher={})
        assert page.channels == [] and page.quarantined.rows == []
        assert queries.full_list(state_store, "quarantined", T0).rows == []
        assert pending_requests(state_store, ["acct"]) == []
        assert SqlLimiter(state_store.engine).tokens("sp-api|seller|getOrder", 0.5, 30) == 30.0
        assert time.monotonic() - started < 5  # a read waiting for the writer would take its 10 s


def test_reads_do_not_wait_for_a_writer_and_writers_queue(state_store):
    """A read is a snapshot that waits for no writer (on SQLite too: not ``BEGIN IMMEDIATE``); concurrent writers
    from many threads all get through (on SQLite they queue on the engine's lock, not in SQLite's busy handler)."""
    state_store.writes.record_intent("invoice:111-0000001-0000001", "invoice", "111-0000001-0000001")
    with writer_holding_the_lock(state_store):
        started = time.monotonic()
        assert state_store.writes.get("invoice:111-0000001-0000001")["status"] == WriteStatus.INTENT
        assert state_store.ops.get_cursor("orders:acct:US") is None  # not committed yet
        assert time.monotonic() - started < 5  # a read waiting for the writer would take its 10 s
    assert state_store.ops.get_cursor("orders:acct:US") == T0

    def record(n: int) -> None:
        for i in range(20):
            key = f"create_order:111-{n:07d}-{i:07d}"
            state_store.writes.record_intent(key, "create_order", None)
            state_store.writes.complete(key, i)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(state_store.writes.is_done(f"create_order:111-{n:07d}-{i:07d}") for n in range(8) for i in range(20))
